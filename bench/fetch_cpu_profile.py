"""Where one browser fetch's CPU time goes, per process, and what launching adds to it.

Fetches, one at a time with our `BrowserFetcher` (one browser, a fresh context per fetch):
an almost empty page (what a fresh context costs by itself), then the ~400 KB static and
script-rendered pages of `fetch_throughput.py`. Then the same pages with a browser launched
and closed for each fetch. CPU time is sampled from /proc every 10 ms for every descendant
of this process (Playwright's Node driver, each Chromium process by its `--type`) plus this
process itself (Python and the loopback server, minus the sampler's own thread); the total
is the whole machine's busy time (/proc/stat), so run it on an otherwise idle machine, and
what the samples miss (processes that exit within 10 ms of a sample) is shown as such.

What it shows: once the CPUs are saturated, pages per second are set by CPU per page, so
the most any fetcher that keeps a fresh context per page can gain over launching per fetch
is (launch CPU per page) / (fresh-context CPU per page), printed last.

Usage: .venv/bin/python bench/fetch_cpu_profile.py [--pages N] [--browser PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.async_api import async_playwright  # noqa: E402

from bench.fetch_throughput import (  # noqa: E402
    IDLE_CAP,
    bare_page,
    busy_seconds,
    descendants,
    scripted_page,
    serve,
    static_page,
)
from watcher.browser import LAUNCH_ARGS, BrowserFetcher, find_browser  # noqa: E402
from watcher.config import BrowserSettings  # noqa: E402
from watcher.fetch import FetchRequest  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
EMPTY = b"<html><body><main>Section 0</main></body></html>"


def process_kind(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") \
            .replace("\0", " ").split()  # Chromium rewrites its children's titles
    except OSError:
        return ""
    if not argv:  # exited, not yet reaped
        return ""
    if "node" in Path(argv[0]).name:
        return "Playwright driver (node)"
    kind = next((arg.split("=", 1)[1] for arg in argv if arg.startswith("--type=")), "")
    if kind == "utility":
        sub = next((a.split("=", 1)[1] for a in argv if a.startswith("--utility-sub-type=")), "")
        return f"Chromium utility ({sub.split('.')[0]})"
    return f"Chromium {kind or 'browser'}"


class CpuSampler:
    """CPU ticks of this process's descendants, by kind; sampled so exited ones still count."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[str, int]] = {}
        self._start: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.own_cpu = 0.0

    def _run(self) -> None:
        started, kinds, scanned = time.thread_time(), {}, 0.0
        while not self._stop.is_set():
            if time.monotonic() - scanned > 0.05:  # a zygote's fork takes its --type later
                scanned = time.monotonic()
                kinds = {pid: process_kind(pid) or kinds.get(pid, "")
                         for pid in descendants(os.getpid())}
            for pid, kind in kinds.items():
                ticks = _ticks(pid)
                if ticks is not None and kind:
                    self._last[pid] = (kind, ticks)
            self._stop.wait(0.01)
        self.own_cpu = time.thread_time() - started

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        time.sleep(0.2)
        self._start = {pid: ticks for pid, (_, ticks) in self._last.items()}
        self._times = os.times()
        self._machine = busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        end = os.times()
        self.machine = busy_seconds() - self._machine
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()
        self.python = end.user + end.system - self._times.user - self._times.system

    def seconds_by_kind(self) -> Counter[str]:
        spent: Counter[str] = Counter()
        for pid, (kind, ticks) in self._last.items():
            spent[kind] += (ticks - self._start.get(pid, 0)) / TICK
        spent["Python + loopback server"] = self.python - self.own_cpu
        spent["not attributed (exited between samples)"] = max(
            0.0, self.machine - self.own_cpu - sum(spent.values()))
        return spent


def _ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


async def profile_ours(executable: str, urls: list[str]) -> Counter[str]:
    fetcher = BrowserFetcher(BrowserSettings(executable_path=executable,
                                             network_idle_cap=IDLE_CAP, close_after_idle=0))
    await fetcher.fetch(FetchRequest(url=urls[0]))
    with CpuSampler() as cpu:
        for url in urls:
            fetched = await fetcher.fetch(FetchRequest(url=url))
            assert fetched.ok, fetched.error
    await fetcher.aclose()
    return cpu.seconds_by_kind()


async def profile_launch_per_fetch(executable: str, urls: list[str]) -> Counter[str]:
    async with async_playwright() as playwright:
        with CpuSampler() as cpu:
            for url in urls:
                browser = await playwright.chromium.launch(executable_path=executable,
                                                           args=list(LAUNCH_ARGS))
                assert await bare_page(browser, url)
                await browser.close()
    return cpu.seconds_by_kind()


def show(title: str, spent: Counter[str], pages: int) -> float:
    total = sum(spent.values()) / pages * 1000
    print(f"{title}: {total:.0f} ms CPU per page")
    for kind, seconds in spent.most_common():
        if seconds > 0:
            print(f"    {kind:<42}{seconds / pages * 1000:5.0f}")
    return total


async def main(pages: int, executable: str) -> None:
    server = serve({"/empty": EMPTY, **{f"/static/{n}": static_page(n) for n in range(pages)},
                    **{f"/app/{n}": scripted_page(n) for n in range(pages)}})
    base = f"http://127.0.0.1:{server.server_address[1]}"
    heavy = [url for n in range(pages) for url in (f"{base}/app/{n}", f"{base}/static/{n}")]
    print(f"browser {executable}; {len(heavy)} fetches each, one at a time\n")
    show("ours, an almost empty page", await profile_ours(executable, [f"{base}/empty"] *
                                                           len(heavy)), len(heavy))
    ours = show("ours, the ~400 KB pages", await profile_ours(executable, heavy), len(heavy))
    launch = show("launch per fetch, the same pages",
                  await profile_launch_per_fetch(executable, heavy), len(heavy))
    print(f"\nwith the CPUs saturated, ours / launch per fetch can be at most "
          f"{launch / ours:.2f} on these pages")
    server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--browser", help="Chromium to drive (default: as the watcher finds it)")
    options = parser.parse_args()
    browser = options.browser or find_browser(BrowserSettings(), None)
    asyncio.run(main(options.pages, browser))
