"""What one /metrics scrape costs as the check history grows.

Fills a fresh database with N checks spread over 30 targets (through `Store.add_check`, as
the pipeline records them), then times `Store.counters()` (what /metrics reads) against the
baseline it replaced in the same run: counting the whole `checks` table by target and status.

Usage: .venv/bin/python bench/metrics_scale.py [--checks 10000,100000,300000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from watcher.store import Store  # noqa: E402

TARGETS = 30
BASELINE = ("SELECT target_id, status, count(*) FROM checks GROUP BY target_id, status "
            "ORDER BY target_id, status")


def fill(store: Store, start: int, stop: int) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with store.transaction():
        for n in range(start, stop):
            status = "failed" if n % 25 == 0 else "unchanged"
            store.add_check(f"t{n % TARGETS}", moment + timedelta(seconds=n), status, None, 200,
                            "http", 100, None, None)


def median_ms(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "w.db") as store:
        with store.transaction():
            for n in range(TARGETS):
                store.upsert_target(f"t{n}", "Example", f"Doc {n}", "https://example.com")
        print(f"{'checks':>9}  {'counters()':>11}  {'full count (baseline)':>22}  ratio")
        done = 0
        for size in sizes:
            fill(store, done, size)
            done = size
            ours = median_ms(store.counters)
            base = median_ms(lambda: store.db.execute(BASELINE).fetchall())
            print(f"{size:>9,}  {ours:>9.2f}ms  {base:>20.2f}ms  {base / ours:5.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", default="10000,100000,300000")
    options = parser.parse_args()
    main([int(n) for n in options.checks.split(",")])
