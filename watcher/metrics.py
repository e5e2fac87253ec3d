"""`/healthz` and Prometheus `/metrics` for the daemon, on an opt-in (loopback) port.

This module owns the two endpoints and their text. The figures come from the database
(`Store.counters`), so they count every check since the database was created, survive
restarts, and agree with `watcher list` and `watcher outbox`. `/healthz` answers 200 while
the scheduler's heartbeat is fresh and 503 otherwise; the server runs on the daemon's own
event loop, so a stuck loop does not answer at all, which a probe also reads as unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from watcher.store import Counters, Store

__all__ = ["MetricsServer", "render_metrics"]

READ_LIMIT = 8192


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics(counters: Counters, heartbeat: datetime | None) -> str:
    """The Prometheus text exposition of `counters` and the last heartbeat."""
    lines = ["# HELP watcher_checks_total Checks recorded, by target and outcome.",
             "# TYPE watcher_checks_total counter"]
    lines += [f'watcher_checks_total{{target="{_label(target)}",status="{status}"}} {count}'
              for target, status, count in counters.checks]
    lines += ["# HELP watcher_versions_total Versions recorded (the first one and every change).",
              "# TYPE watcher_versions_total counter"]
    lines += [f'watcher_versions_total{{target="{_label(target)}"}} {count}'
              for target, count in counters.versions]
    lines += ["# HELP watcher_notifications Outbox messages by status (pending: the backlog).",
              "# TYPE watcher_notifications gauge"]
    statuses = dict.fromkeys(("pending", "sent", "failed"), 0) | dict(counters.notifications)
    lines += [f'watcher_notifications{{status="{status}"}} {count}'
              for status, count in statuses.items()]
    lines += ["# HELP watcher_targets_broken Targets failing long enough to need attention.",
              "# TYPE watcher_targets_broken gauge", f"watcher_targets_broken {counters.broken}"]
    if heartbeat is not None:
        lines += ["# HELP watcher_heartbeat_timestamp_seconds Last scheduler heartbeat.",
                  "# TYPE watcher_heartbeat_timestamp_seconds gauge",
                  f"watcher_heartbeat_timestamp_seconds {heartbeat.timestamp():.3f}"]
    return "\n".join(lines) + "\n"


class MetricsServer:
    """A minimal HTTP/1.0 server for two read-only GET endpoints."""

    def __init__(self, store: Store, max_age: float):
        self.store = store
        self.max_age = max_age
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path = (request.split(b"\r\n", 1)[0].decode("latin-1").split(" ") + [""])[:2]
            status, body, kind = self._answer(method, path)
            writer.write(f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                         + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, method: str, path: str) -> tuple[str, bytes, str]:
        text = "text/plain; charset=utf-8"
        if method != "GET":
            return "405 Method Not Allowed", b"only GET\n", text
        path = path.split("?", 1)[0]
        state = self.store.daemon_state()
        heartbeat = state[1] if state else None
        if path == "/healthz":
            age = (datetime.now(UTC) - heartbeat).total_seconds() if heartbeat else None
            if age is not None and age <= self.max_age:
                return "200 OK", f"ok: last tick {age:.1f}s ago\n".encode(), text
            return "503 Service Unavailable", b"unhealthy: no recent scheduler tick\n", text
        if path == "/metrics":
            return ("200 OK", render_metrics(self.store.counters(), heartbeat).encode(),
                    "text/plain; version=0.0.4; charset=utf-8")
        return "404 Not Found", b"not found: try /healthz or /metrics\n", text
