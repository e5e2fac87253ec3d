"""Browser memory over many fetches: does one long-lived Chromium grow, and by how much?

Fetches a static and a script-rendered ~400 KB page, two at a time, N times over with one
`BrowserFetcher` (`relaunch_after_pages` off), and prints the PSS of Chromium's browser
process and of the whole Chromium tree every 100 pages.

Usage: .venv/bin/python bench/browser_growth.py [--pages N] [--browser PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.fetch_throughput as pages_bench  # noqa: E402
from watcher.browser import BrowserFetcher, find_browser  # noqa: E402
from watcher.config import BrowserSettings  # noqa: E402
from watcher.fetch import FetchRequest  # noqa: E402


def chromium_pss() -> tuple[float, float]:
    """(the browser process, every Chromium process) in MiB PSS."""
    pids = [pid for pid in pages_bench.descendants(os.getpid()) if pages_bench.is_chromium(pid)]
    main = [pid for pid in pids if b"--type=" not in _cmdline(pid)]
    return pages_bench.pss_mib(main), pages_bench.pss_mib(pids)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


async def main(pages: int, executable: str) -> None:
    server = pages_bench.serve({"/static": pages_bench.static_page(0),
                                "/app": pages_bench.scripted_page(0)})
    base = f"http://127.0.0.1:{server.server_address[1]}"
    fetcher = BrowserFetcher(BrowserSettings(executable_path=executable, max_pages=2,
                                             relaunch_after_pages=0))
    print(f"{'pages':>6}{'browser process MiB':>22}{'Chromium tree MiB':>20}")
    for done in range(0, pages + 1, 2):
        if done % 100 == 0:
            await asyncio.sleep(1)
            main_pss, tree = chromium_pss()
            print(f"{done:>6}{main_pss:>22.0f}{tree:>20.0f}", flush=True)
        fetched = await asyncio.gather(fetcher.fetch(FetchRequest(url=f"{base}/static")),
                                       fetcher.fetch(FetchRequest(url=f"{base}/app")))
        if not all(f.ok for f in fetched):
            raise RuntimeError([f.error for f in fetched])
    await fetcher.aclose()
    server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--browser", help="Chromium to drive (default: as the watcher finds it)")
    options = parser.parse_args()
    asyncio.run(main(options.pages, options.browser or find_browser(BrowserSettings(), None)))
