"""Mail stand-ins shared by the alert and daemon tests: a real SMTP inbox (aiosmtpd) and a
server that accepts connections and never answers (a stalled SMTP relay)."""

from __future__ import annotations

import email
import socket
import threading
from email import policy


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mail_route(name: str, port: int, default: bool = False) -> str:
    return (f"[notify.{name}]\nurls = [\"mailto://127.0.0.1:{port}?from=watcher@example.com"
            f"&to=dpo@example.com\"]\n" + ("default = true\n" if default else ""))
