"""Scale of the daemon: 1,000 targets against a local server, ~2,000 checks in a few minutes.

Runs the real `watcher run` process on 1,000 targets scheduled `every 60s` (first runs spread
over the 60 s start-up window) against pages served on loopback, for `--seconds`, then
reads the database. Prints checks per second, scheduler lag (how late each second check
started against the one planned a whole interval after the first, p50/p99), the daemon's
peak RSS, and the database size.

    .venv/bin/python bench/scheduler_scale.py [--targets 1000] [--seconds 150]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

INTERVAL = 60


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        n = self.path.strip("/")
        body = (f"<main><h1>Policy {n}</h1>" + "".join(
            f"<p>Clause {i} of policy {n}: we keep data for {i} days.</p>" for i in range(40))
            + "</main>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def config_text(port: int, targets: int) -> str:
    head = f"""[settings]
schedule = "every {INTERVAL}s"
[settings.daemon]
startup_window = {INTERVAL}
jitter = 0
host_delay = 0
max_concurrent = 8
heartbeat_interval = 5
"""
    return head + "".join(
        f'[[targets]]\nid = "t{n}"\nservice = "S{n}"\ndocument = "Privacy Policy"\n'
        f'url = "http://127.0.0.1:{port}/{n}"\nfetcher = "http"\n' for n in range(targets))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=150)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "targets.toml"
        config.write_text(config_text(server.server_address[1], args.targets))
        db = Path(tmp) / "watcher.db"
        daemon = subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(config),
                                   "--db", str(db), "run"], stderr=subprocess.DEVNULL)
        time.sleep(args.seconds)
        rss = peak_rss_mib(daemon.pid)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
        size = sum(p.stat().st_size for p in Path(tmp).glob("watcher.db*"))
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT target_id, at FROM checks ORDER BY id").fetchall()
            statuses = dict(conn.execute("SELECT status, count(*) FROM checks GROUP BY status"))
    server.shutdown()
    times: dict[str, list[datetime]] = {}
    for target, at in rows:
        times.setdefault(target, []).append(datetime.fromisoformat(at.replace("Z", "+00:00")))
    lags = sorted((t[1] - t[0]).total_seconds() - INTERVAL for t in times.values() if len(t) > 1)
    span = (max(max(t) for t in times.values()) - min(min(t) for t in times.values())) \
        .total_seconds()
    print(f"targets: {args.targets}, run: {args.seconds:.0f} s, schedule: every {INTERVAL}s")
    print(f"checks: {len(rows)} ({statuses}) in {span:.0f} s = {len(rows) / span:.1f} checks/s")
    if lags:
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(f"scheduler lag (second check vs planned): p50 {statistics.median(lags):.2f} s, "
              f"p99 {p99:.2f} s over {len(lags)} targets")
    print(f"daemon peak RSS: {rss:.0f} MiB")
    print(f"database size: {size / 1024 / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
