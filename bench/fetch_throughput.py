"""Fetch throughput and memory: HTTP and browser fetchers vs two Playwright baselines.

Serves N static and N script-rendered pages (~400 KB each) on loopback, fetches them at
concurrency 1, 2 and 4, and prints pages per second and the peak PSS summed over this
process's descendants (the Playwright driver and every Chromium process; RSS would count
Chromium's shared pages many times). Baselines measured in the same run: a bare Playwright
loop (one browser, a fresh context per page, the same request blocking and waits) and a
browser launched per fetch. Usage: .venv/bin/python bench/fetch_throughput.py [--pages N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.async_api import async_playwright  # noqa: E402

from watcher.browser import BLOCKED_TYPES, LAUNCH_ARGS, BrowserFetcher, find_browser  # noqa: E402
from watcher.config import BrowserSettings  # noqa: E402
from watcher.fetch import FetchRequest, HttpFetcher  # noqa: E402

PARAGRAPH = ("Personal data is processed only for the purposes listed in this section, "
             "kept no longer than necessary and shared with sub-processors under contract. ")
IDLE_CAP = 3.0


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


async def run_all(urls: list[str], concurrency: int,
                  fetch: Callable[[str], Awaitable[bool]]) -> float:
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


async def bare_page(browser, url: str) -> bool:
    context = await browser.new_context(service_workers="block")
    try:
        await context.route("**/*", block)
        page = await context.new_page()
        response = await page.goto(url, wait_until="load")
        await page.wait_for_load_state("networkidle", timeout=IDLE_CAP * 1000)
        return response is not None and response.ok and "Section" in await page.content()
    finally:
        await context.close()


async def main(pages: int) -> None:
    server = serve({**{f"/static/{n}": static_page(n) for n in range(pages)},
                    **{f"/app/{n}": scripted_page(n) for n in range(pages)}})
    base = f"http://127.0.0.1:{server.server_address[1]}"
    static = [f"{base}/static/{n}" for n in range(pages)]
    scripted = [f"{base}/app/{n}" for n in range(pages)]
    executable = find_browser(BrowserSettings(), None)
    print(f"{pages} pages of ~{len(static_page(0)) // 1024} KB (static) / "
          f"~{len(scripted_page(0)) // 1024} KB (script-rendered); browser {executable}")
    print("peak PSS MiB: all descendants (Node driver + Chromium) / Chromium processes only")
    print(f"{'fetcher':<28}{'conc':>5}{'pages/s':>10}{'peak PSS MiB':>16}")

    http = HttpFetcher()
    for concurrency in (1, 2, 4):
        async def by_http(url: str) -> bool:
            return (await http.fetch(FetchRequest(url=url))).ok
        rate = await run_all(static, concurrency, by_http)
        print(f"{'http (static)':<28}{concurrency:>5}{rate:>10.2f}{'-':>16}")
    await http.aclose()

    ours: dict[int, float] = {}
    for concurrency in (1, 2, 4):
        fetcher = BrowserFetcher(BrowserSettings(max_pages=concurrency,
                                                 network_idle_cap=IDLE_CAP))
        await fetcher.fetch(FetchRequest(url=scripted[0]))

        async def by_browser(url: str, fetcher=fetcher) -> bool:
            fetched = await fetcher.fetch(FetchRequest(url=url))
            return fetched.ok and "Section" in fetched.text
        with PeakPss() as memory:
            ours[concurrency] = await run_all(scripted, concurrency, by_browser)
        await fetcher.aclose()
        print(f"{'browser fetcher (scripted)':<28}{concurrency:>5}{ours[concurrency]:>10.2f}"
              f"{memory.peak:>10.0f} / {memory.browser:.0f}")

    bare: dict[int, float] = {}
    async with async_playwright() as playwright:
        for concurrency in (1, 2, 4):
            browser = await playwright.chromium.launch(executable_path=executable,
                                                       args=list(LAUNCH_ARGS))
            await bare_page(browser, scripted[0])
            with PeakPss() as memory:
                bare[concurrency] = await run_all(scripted, concurrency,
                                                  lambda url, b=browser: bare_page(b, url))
            await browser.close()
            print(f"{'bare Playwright loop':<28}{concurrency:>5}{bare[concurrency]:>10.2f}"
                  f"{memory.peak:>10.0f} / {memory.browser:.0f}")

        async def launch_per_fetch(url: str) -> bool:
            browser = await playwright.chromium.launch(executable_path=executable,
                                                       args=list(LAUNCH_ARGS))
            try:
                return await bare_page(browser, url)
            finally:
                await browser.close()
        per_launch = await run_all(scripted, 1, launch_per_fetch)
        print(f"{'launch per fetch':<28}{1:>5}{per_launch:>10.2f}{'-':>16}")

    print()
    for concurrency in (1, 2, 4):
        print(f"ours / bare Playwright at concurrency {concurrency}: "
              f"{ours[concurrency] / bare[concurrency]:.2f} (target >= 0.85)")
    print(f"ours / launch-per-fetch at concurrency 1: {ours[1] / per_launch:.2f} (target >= 3)")
    server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    asyncio.run(main(parser.parse_args().pages))
