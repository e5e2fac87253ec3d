"""Fetch throughput and memory: the HTTP and browser fetchers against Playwright baselines.

Serves N static and N script-rendered pages (~400 KB each) on loopback and fetches them at
concurrency 1, 2 and 4 with:

- `http`: our HTTP fetcher (static pages: it cannot run scripts);
- `ours`: our browser fetcher, on all 2N pages;
- `bare`: a bare Playwright loop on one browser, a fresh context per page, the same request
  blocking, waiting for `load` then Playwright's own `networkidle`;
- `launch per fetch`: the bare loop, launching and closing a browser for every page;
- `floor`: the bare loop without any wait after `load` (it would miss content loaded later);
  not a baseline, it shows what the page itself costs.

Last, the idle footprint: what a daemon keeps in memory between checks with the browser
open, after `close_after_idle` has closed it, and what the first fetch after that costs.

The CPU time per page is the whole machine's (Python, Playwright's Node driver, every Chromium
process, and the loopback server in this process), so run it on an otherwise idle machine.

Speed and memory are measured in separate passes, so that sampling /proc does not slow the
timed runs; every timed configuration runs `--rounds` times, interleaved, and the median is
printed. Memory is the peak PSS summed over this process's descendants while one contender
runs alone: Playwright's Node driver and Chromium, then Chromium alone (RSS would count
Chromium's shared pages many times).

Usage: .venv/bin/python bench/fetch_throughput.py [--pages N] [--rounds R] [--browser PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.async_api import Browser, Playwright, async_playwright  # noqa: E402

from watcher.browser import BLOCKED_TYPES, LAUNCH_ARGS, BrowserFetcher, find_browser  # noqa: E402
from watcher.config import BrowserSettings  # noqa: E402
from watcher.fetch import FetchRequest, HttpFetcher  # noqa: E402

PARAGRAPH = ("Personal data is processed only for the purposes listed in this section, "
             "kept no longer than necessary and shared with sub-processors under contract. ")
IDLE_CAP = 3.0
CONCURRENCY = (1, 2, 4)

Fetch = Callable[[str], Awaitable[bool]]


def static_page(n: int) -> bytes:
    body = "".join(f"<h2>Section {n}.{i}</h2><p>{PARAGRAPH * 3}</p>" for i in range(800))
    return f"<html><body><main>{body}</main></body></html>".encode()


def scripted_page(n: int) -> bytes:
    text = PARAGRAPH * 3
    return (f"<html><body><main id='app'></main><script>const rows = [];"
            f"for (let i = 0; i < 800; i++) rows.push('<h2>Section {n}.' + i + '</h2><p>' + "
            f"{text!r} + '</p>');"
            f"document.getElementById('app').innerHTML = rows.join('');</script>"
            f"<!-- {'x' * 380_000} --></body></html>").encode()


def serve(pages: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text()
                                               .rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out = []
    for pid in parents:
        up = pid
        while up in parents and up not in (root, 0, 1):
            up = parents[up]
        if up == root and pid != root:
            out.append(pid)
    return out


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def is_chromium(pid: int) -> bool:
    try:
        return "chrom" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return False


class PeakPss:
    """Samples PSS of this process's descendants every 100 ms; keeps the peaks.

    `peak`: every descendant (Playwright's Node driver and Chromium); `browser`: Chromium only.
    """

    def __init__(self) -> None:
        self.peak = 0.0
        self.browser = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = descendants(os.getpid())
            self.peak = max(self.peak, pss_mib(pids))
            self.browser = max(self.browser, pss_mib([p for p in pids if is_chromium(p)]))
            self._stop.wait(0.1)

    def __enter__(self) -> PeakPss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def run_all(urls: list[str], concurrency: int, fetch: Fetch) -> float:
    """Pages per second fetching every URL with `concurrency` at once; fails on an error."""
    limit = asyncio.Semaphore(concurrency)

    async def one(url: str) -> None:
        async with limit:
            if not await fetch(url):
                raise RuntimeError(f"fetch failed: {url}")

    started = time.monotonic()
    await asyncio.gather(*(one(url) for url in urls))
    return len(urls) / (time.monotonic() - started)


async def block(route) -> None:  # the same blocking as watcher.browser, first-party pages
    if route.request.resource_type in BLOCKED_TYPES:
        await route.abort("blockedbyclient")
    else:
        await route.continue_()


async def bare_page(browser: Browser, url: str, settle: bool = True) -> bool:
    context = await browser.new_context(service_workers="block")
    try:
        await context.route("**/*", block)
        page = await context.new_page()
        response = await page.goto(url, wait_until="load")
        if settle:
            await page.wait_for_load_state("networkidle", timeout=IDLE_CAP * 1000)
        return response is not None and response.ok and "Section" in await page.content()
    finally:
        await context.close()


class Contenders:
    """Every way of fetching a page at one concurrency; browsers start on first use."""

    def __init__(self, playwright: Playwright | None, executable: str, concurrency: int):
        self.playwright = playwright
        self.executable = executable
        self.concurrency = concurrency
        self._ours: BrowserFetcher | None = None
        self._browser: Browser | None = None

    async def aclose(self) -> None:
        if self._ours is not None:
            await self._ours.aclose()
        if self._browser is not None:
            await self._browser.close()

    async def launch(self) -> Browser:
        return await self.playwright.chromium.launch(executable_path=self.executable,
                                                     args=list(LAUNCH_ARGS))

    async def ours(self, url: str) -> bool:
        if self._ours is None:
            self._ours = BrowserFetcher(BrowserSettings(
                executable_path=self.executable, max_pages=self.concurrency,
                network_idle_cap=IDLE_CAP))
        fetched = await self._ours.fetch(FetchRequest(url=url))
        return fetched.ok and "Section" in fetched.text

    async def bare(self, url: str, settle: bool = True) -> bool:
        if self._browser is None:
            self._browser = await self.launch()
        return await bare_page(self._browser, url, settle)

    async def floor(self, url: str) -> bool:
        return await self.bare(url, settle=False)

    async def launch_per_fetch(self, url: str) -> bool:
        browser = await self.launch()
        try:
            return await bare_page(browser, url)
        finally:
            await browser.close()

    def fetches(self) -> dict[str, Fetch]:
        return {"ours": self.ours, "bare": self.bare, "floor": self.floor,
                "launch per fetch": self.launch_per_fetch}


async def http_rates(urls: list[str], rounds: int) -> dict[int, float]:
    http = HttpFetcher()

    async def fetch(url: str) -> bool:
        return (await http.fetch(FetchRequest(url=url))).ok

    await run_all(urls, 1, fetch)
    rates = {c: statistics.median([await run_all(urls, c, fetch) for _ in range(rounds)])
             for c in CONCURRENCY}
    await http.aclose()
    return rates


async def browser_rates(playwright: Playwright, executable: str, urls: list[str],
                        rounds: int) -> tuple[dict[tuple[str, int], float],
                                              dict[tuple[str, int], float]]:
    """Pages per second of every contender, rounds interleaved, median of the rounds; and the
    machine's CPU time per page (every process: Python, Node, Chromium), median too."""
    rates: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}
    for concurrency in CONCURRENCY:
        contenders = Contenders(playwright, executable, concurrency)
        fetches = contenders.fetches()
        await fetches["ours"](urls[0])
        await fetches["bare"](urls[0])
        for _ in range(rounds):
            for name, fetch in fetches.items():
                busy = busy_seconds()
                rate = await run_all(urls, concurrency, fetch)
                cpu.setdefault((name, concurrency), []).append(
                    (busy_seconds() - busy) / len(urls) * 1000)
                rates.setdefault((name, concurrency), []).append(rate)
        await contenders.aclose()
    return ({key: statistics.median(values) for key, values in rates.items()},
            {key: statistics.median(values) for key, values in cpu.items()})


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (/proc/stat, all CPUs)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


async def peak_memory(playwright: Playwright | None, executable: str, urls: list[str],
                      name: str) -> dict[tuple[str, int], PeakPss]:
    """Peak PSS of one contender alone (no other browser alive) at each concurrency."""
    peaks: dict[tuple[str, int], PeakPss] = {}
    for concurrency in CONCURRENCY:
        contenders = Contenders(playwright, executable, concurrency)
        fetch = contenders.fetches()[name]
        await fetch(urls[0])
        with PeakPss() as memory:
            await run_all(urls, concurrency, fetch)
        await contenders.aclose()
        peaks[(name, concurrency)] = memory
    return peaks


async def idle_footprint(executable: str, url: str) -> None:
    idle = 2.0
    fetcher = BrowserFetcher(BrowserSettings(executable_path=executable, close_after_idle=idle,
                                             network_idle_cap=IDLE_CAP))
    await fetcher.fetch(FetchRequest(url=url))
    await asyncio.sleep(idle / 2)
    kept = pss_mib(descendants(os.getpid()))
    await asyncio.sleep(idle)
    closed = pss_mib(descendants(os.getpid()))
    started = time.monotonic()
    await fetcher.fetch(FetchRequest(url=url))
    cold = time.monotonic() - started
    started = time.monotonic()
    await fetcher.fetch(FetchRequest(url=url))
    warm = time.monotonic() - started
    await fetcher.aclose()
    print(f"idle between checks: {kept:.0f} MiB PSS with the browser open, {closed:.0f} MiB "
          f"after close_after_idle; next fetch {cold:.2f} s (relaunch) vs {warm:.2f} s")


def report(http: dict[int, float], rates: dict[tuple[str, int], float],
           cpu: dict[tuple[str, int], float], peaks: dict[tuple[str, int], PeakPss]) -> None:
    print(f"{'fetcher':<22}{'conc':>5}{'pages/s':>10}{'CPU ms/page':>13}"
          f"{'peak PSS MiB (all / Chromium)':>32}")
    for concurrency, rate in http.items():
        print(f"{'http (static)':<22}{concurrency:>5}{rate:>10.2f}{'-':>13}{'-':>32}")
    for name in ("ours", "bare", "floor", "launch per fetch"):
        for concurrency in CONCURRENCY:
            key = (name, concurrency)
            memory = peaks.get(key)
            figure = f"{memory.peak:.0f} / {memory.browser:.0f}" if memory else "-"
            print(f"{name:<22}{concurrency:>5}{rates[key]:>10.2f}{cpu[key]:>13.0f}{figure:>32}")
    print()
    for concurrency in CONCURRENCY:
        ours = rates[("ours", concurrency)]
        print(f"c={concurrency}: ours / bare {ours / rates[('bare', concurrency)]:.2f} "
              f"(target >= 0.85), ours / launch per fetch "
              f"{ours / rates[('launch per fetch', concurrency)]:.2f} (target >= 3), "
              f"ours / floor {ours / rates[('floor', concurrency)]:.2f}; once the CPUs are "
              f"saturated ours / launch per fetch tends to CPU per page launch / ours "
              f"{cpu[('launch per fetch', concurrency)] / cpu[('ours', concurrency)]:.2f}")
    print(f"Chromium peak PSS at c=2: ours {peaks[('ours', 2)].browser:.0f} MiB "
          "(target <= 450)")


async def main(pages: int, rounds: int, executable: str) -> None:
    server = serve({**{f"/static/{n}": static_page(n) for n in range(pages)},
                    **{f"/app/{n}": scripted_page(n) for n in range(pages)}})
    base = f"http://127.0.0.1:{server.server_address[1]}"
    static = [f"{base}/static/{n}" for n in range(pages)]
    both = [url for n in range(pages) for url in (f"{base}/app/{n}", f"{base}/static/{n}")]
    print(f"{pages} static pages (~{len(static_page(0)) // 1024} KB) and {pages} "
          f"script-rendered pages (~{len(scripted_page(0)) // 1024} KB), {rounds} rounds "
          f"(median); browser {executable}; {os.cpu_count()} CPUs")
    http = await http_rates(static, rounds)
    peaks = await peak_memory(None, executable, both, "ours")
    async with async_playwright() as playwright:
        peaks |= await peak_memory(playwright, executable, both, "bare")
        rates, cpu = await browser_rates(playwright, executable, both, rounds)
    report(http, rates, cpu, peaks)
    await idle_footprint(executable, both[0])
    server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--browser", help="Chromium to drive (default: as the watcher finds it)")
    options = parser.parse_args()
    browser = options.browser or find_browser(BrowserSettings(), None)
    asyncio.run(main(options.pages, options.rounds, browser))
