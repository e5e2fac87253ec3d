"""Stand-ins shared by the alert and daemon tests: a real SMTP inbox (aiosmtpd), a server that
accepts connections and never answers (a stalled SMTP relay), and a slow webhook receiver."""

from __future__ import annotations

import email
import socket
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class Stall:
    """A loopback port that accepts connections and never says a word."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(5)
        self.accepted = []
        threading.Thread(target=lambda: self.accepted.append(self.socket.accept()),
                         daemon=True).start()

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    def close(self) -> None:
        self.socket.close()


class SlowWebhook:
    """A loopback webhook receiver that keeps each request it gets and answers it only when
    the test calls `release()` (or after `hold` seconds): a slow service, with no race on
    when a sender gets its answer."""

    def __init__(self, hold: float = 8.0):
        self.requests: list[tuple[str, bytes]] = []
        self.released = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                hook.requests.append((self.path, self.rfile.read(length)))
                hook.released.wait(hold)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        """A json:// URL to `path` whose sender waits up to 30 s for the answer."""
        return f"json://127.0.0.1:{self.server.server_address[1]}{path}?rto=30"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mail_route(name: str, port: int, default: bool = False) -> str:
    return (f"[notify.{name}]\nurls = [\"mailto://127.0.0.1:{port}?from=watcher@example.com"
            f"&to=dpo@example.com\"]\n" + ("default = true\n" if default else ""))
