"""The browser fetcher: pages rendered by a real Chromium, driven by Playwright (async API).

This module owns the browser's life: finding or connecting to one, one long-lived Chromium
per process, a fresh context per fetch, a bounded number of open pages, per-target waits, a
hard timeout per fetch, request blocking, relaunching after a crash or a hang, closing it
when the daemon has been idle a while, and replacing it after many pages. A target's headers
go to the page's own hosts only (its Cookie header as cookies of the target's host), never to
third parties; `max_bytes` caps the rendered page and a downloaded document as the HTTP
fetcher caps a response; a full-page screenshot is cut at SCREENSHOT_MAX pixels each way.
Like every fetcher it never raises for a page problem: the error becomes `Fetched.error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import (
    Browser,
    BrowserContext,
    Frame,
    Page,
    Playwright,
    Request,
    Route,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from watcher.config import BrowserSettings
from watcher.fetch import FetchRequest, accept_language, decode_html, too_large_reason
from watcher.models import Fetched

__all__ = ["BrowserFetcher", "BrowserNotFound", "LAUNCH_ARGS", "find_browser", "PageOptions"]

DEBIAN_BROWSERS = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium")
PATH_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome",
              "google-chrome-stable", "chrome")
LAUNCH_ARGS = ("--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-gpu", "--disable-quic",
               "--disable-dev-shm-usage", "--mute-audio", "--in-process-gpu",
               "--renderer-process-limit=2",
               "--disable-features=SpareRendererForSitePerProcess,Translate,"
               "OptimizationHints,MediaRouter,site-per-process")
BLOCKED_TYPES = frozenset({"image", "media", "font"})
DEFAULT_PORTS = {"http": 80, "https": 443}
SCREENSHOT_MAX = 16_384
"""Pixels: a full-page screenshot keeps at most this much of the page's height (and width),
Chromium's largest texture; a taller page would need gigabytes of memory to capture."""
SCREENSHOT_CLIP = {"x": 0, "y": 0, "width": SCREENSHOT_MAX, "height": SCREENSHOT_MAX}
CLOSE_GRACE = 5.0
OPEN_LIMIT = 10.0
QUIET_PERIOD = 0.1
LATE_EVENT = 0.03
SHORT_TIMER_MS = 1000
TIMER_BUDGET = 20
TIMER_WATCH = f"""(() => {{
  const pending = new Set(), schedule = window.setTimeout;
  let budget = {TIMER_BUDGET};
  window.setTimeout = function (callback, ms, ...args) {{
    if (typeof callback !== "function" || Number(ms) > {SHORT_TIMER_MS} || budget <= 0)
      return schedule.call(window, callback, ms, ...args);
    budget -= 1;
    const id = schedule.call(window, function () {{
      pending.delete(id);
      return callback.apply(this, args);
    }}, ms);
    pending.add(id);
    return id;
  }};
  const forget = (clear) => function (id) {{ pending.delete(id); return clear.call(window, id); }};
  window.clearTimeout = forget(window.clearTimeout);
  window.clearInterval = forget(window.clearInterval);
  Object.defineProperty(window, "__watcherPendingTimers", {{value: () => pending.size}});
}})()"""
IDLE_PROBE = ("() => new Promise(done => requestIdleCallback(done, {timeout: 250}))"
              ".then(() => window.__watcherPendingTimers ? window.__watcherPendingTimers() : 0)")


class BrowserNotFound(Exception):
    """No Chromium to launch: the message names every place looked at."""


class _Unresponsive(Exception):
    """The browser did not open a context in time: it hangs and must be relaunched."""


@dataclass(frozen=True)
class PageOptions:
    """The per-target waits and extras a FetchRequest carries in `extra`."""

    wait_for: str | None = None
    delay: float = 0.0
    screenshot: bool = False

    @classmethod
    def of(cls, request: FetchRequest) -> PageOptions:
        extra = dict(request.extra)
        return cls(wait_for=extra.get("wait_for") or None, delay=float(extra.get("delay", 0)),
                   screenshot=extra.get("screenshot") == "1")


def find_browser(settings: BrowserSettings, playwright_path: str | None) -> str:
    """settings.browser.executable_path, else a Chromium/Chrome on PATH, else Playwright's.

    Debian's `chromium-headless-shell` (the headless build Playwright itself uses) comes
    first: it launches in a third of the time of the full `chromium` and needs about half
    the memory (BENCHMARKS.md).
    """
    if settings.executable_path:
        if Path(settings.executable_path).is_file():
            return settings.executable_path
        raise BrowserNotFound(f"settings.browser.executable_path {settings.executable_path!r} "
                              "does not exist; fix the path or remove it")
    for debian in DEBIAN_BROWSERS:
        if Path(debian).is_file():
            return debian
    for name in PATH_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if playwright_path and Path(playwright_path).is_file():
        return playwright_path
    raise BrowserNotFound(
        "no browser found for the browser fetcher: (1) settings.browser.executable_path is not "
        f"set, (2) no {'/'.join(PATH_NAMES)} on PATH nor {' / '.join(DEBIAN_BROWSERS)}, (3) "
        "Playwright's own Chromium is not installed. Install one (Debian: apt-get install "
        "chromium-headless-shell, or chromium), or set "
        "settings.browser.ws_endpoint / cdp_url to use a remote browser")


class BrowserFetcher:
    """One long-lived Chromium (launched or remote) shared by every fetch of the process."""

    name = "browser"

    def __init__(self, settings: BrowserSettings | None = None):
        self.settings = settings or BrowserSettings()
        self._pages = asyncio.Semaphore(max(1, self.settings.max_pages))
        self._lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self.launches = 0
        self._calls = 0  # fetches under way, waiting for a page or not: at 0 idle time starts
        self._leases = 0  # pages open on the current browser
        self._served = 0  # pages opened on the current browser since it started
        self._drained = asyncio.Event()  # set when the last open page is done
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_close: asyncio.Task | None = None

    async def aclose(self) -> None:
        self._cancel_idle_timer()
        if self._idle_close is not None:
            await self._idle_close
        await self._drop_browser()
        await self._stop_driver()

    async def _lease(self) -> Browser:
        """The shared browser for one page: (re)started when it is gone, and replaced once it
        has served `relaunch_after_pages` pages and the pages open on it are done."""
        async with self._lock:
            limit = self.settings.relaunch_after_pages
            if limit and self._served >= limit and self._browser is not None:
                while self._leases:
                    self._drained.clear()
                    await self._drained.wait()
                await self._drop_browser()
            if self._browser is None or not self._browser.is_connected():
                await self._drop_browser()
                self._browser = await self._launch()
                self.launches += 1
                self._served = 0
            self._leases += 1
            self._served += 1
            return self._browser

    async def _launch(self) -> Browser:
        """Starts the browser, and Playwright's driver first when it is not running; a driver
        that died (killed, out of memory) is replaced rather than used again."""
        for attempt in (1, 2):
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            try:
                return await self._start(self._playwright)
            except PlaywrightError:
                if attempt == 2:
                    raise
                await self._stop_driver()
        raise AssertionError("unreachable")

    async def _start(self, playwright: Playwright) -> Browser:
        chromium = playwright.chromium
        if self.settings.ws_endpoint:
            return await chromium.connect(self.settings.ws_endpoint,
                                          timeout=self.settings.timeout * 1000)
        if self.settings.cdp_url:
            return await chromium.connect_over_cdp(self.settings.cdp_url,
                                                   timeout=self.settings.timeout * 1000)
        executable = find_browser(self.settings, _playwright_chromium(playwright))
        return await chromium.launch(executable_path=executable, headless=True,
                                     args=list(LAUNCH_ARGS), timeout=self.settings.timeout * 1000)

    async def _drop_browser(self) -> None:
        """Closes the browser; one that does not answer is killed with Playwright's driver."""
        browser, self._browser = self._browser, None
        if browser is None:
            return
        try:
            await asyncio.wait_for(browser.close(), CLOSE_GRACE)
        except TimeoutError:
            await self._stop_driver()
        except PlaywrightError:
            pass

    async def _stop_driver(self) -> None:
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(PlaywrightError, TimeoutError):
                await asyncio.wait_for(playwright.stop(), CLOSE_GRACE)

    async def fetch(self, request: FetchRequest) -> Fetched:
        started = time.monotonic()
        self._calls += 1
        self._cancel_idle_timer()
        try:
            async with self._pages:
                result = await self._fetch_with_retry(request)
        finally:
            self._calls -= 1
            if not self._calls:
                self._start_idle_timer()
        elapsed = int((time.monotonic() - started) * 1000)
        return Fetched(**{**result.__dict__, "duration_ms": elapsed, "fetcher": self.name})

    def _start_idle_timer(self) -> None:
        idle = self.settings.close_after_idle
        if idle > 0 and self._playwright is not None:
            self._idle_timer = asyncio.get_running_loop().call_later(idle, self._idle_reached)

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_reached(self) -> None:
        self._idle_timer = None
        self._idle_close = asyncio.get_running_loop().create_task(self._close_if_idle())

    async def _close_if_idle(self) -> None:
        """Frees the browser and Playwright's driver between checks (~270 MiB PSS)."""
        async with self._lock:
            if not self._calls:
                await self._drop_browser()
                await self._stop_driver()

    async def _fetch_with_retry(self, request: FetchRequest) -> Fetched:
        """A crashed or hung browser is relaunched and the fetch tried once more."""
        for attempt in (1, 2):
            try:
                browser = await self._lease()
            except BrowserNotFound as error:
                return Fetched(url=request.url, error=str(error))
            except PlaywrightError as error:
                return Fetched(url=request.url, error=f"browser did not start: {_first(error)}")
            try:
                return await self._fetch_in(browser, request)
            except _Unresponsive:
                await self._drop_browser()
                if attempt == 2:
                    return Fetched(url=request.url, error="the browser hangs: it did not open a "
                                                          f"page within {self._open_limit:g}s")
            except PlaywrightError as error:
                crashed = not browser.is_connected() or "closed" in str(error).lower()
                if not crashed or attempt == 2:
                    return Fetched(url=request.url, error=f"browser error: {_first(error)}")
                await self._drop_browser()
            finally:
                self._leases -= 1
                if not self._leases:
                    self._drained.set()
        raise AssertionError("unreachable")

    @property
    def _open_limit(self) -> float:
        return min(OPEN_LIMIT, self.settings.timeout)

    async def _fetch_in(self, browser: Browser, request: FetchRequest) -> Fetched:
        """The page within a hard limit: load, settle and delay, plus CLOSE_GRACE to read it;
        a stage with a timeout of its own pushes the limit back (`_extend`)."""
        try:
            context = await asyncio.wait_for(browser.new_context(**_context_options(request)),
                                             self._open_limit)
        except TimeoutError as error:
            raise _Unresponsive from error
        started = asyncio.get_running_loop().time()
        stages = request.timeout + self.settings.network_idle_cap + PageOptions.of(request).delay
        try:
            async with asyncio.timeout_at(started + stages + CLOSE_GRACE) as limit:
                return await self._load(context, request, limit)
        except TimeoutError:
            granted = (limit.when() or started) - started
            return Fetched(url=request.url, error=f"the page loaded but could not be read "
                                                  f"within {granted:.0f}s (a script keeps it "
                                                  "busy)")
        finally:
            await self._close_context(context)

    async def _close_context(self, context: BrowserContext) -> None:
        try:
            await asyncio.wait_for(context.close(), CLOSE_GRACE)
        except TimeoutError:
            await self._drop_browser()
        except PlaywrightError:
            pass

    async def _load(self, context: BrowserContext, request: FetchRequest,
                    limit: asyncio.Timeout) -> Fetched:
        router = _Router(request, self.settings)
        await context.route("**/*", router.handle)
        await context.add_init_script(script=TIMER_WATCH)
        if cookies := _cookies(request):
            await context.add_cookies(cookies)
        page = await context.new_page()
        router.watch(page)
        traffic = _Traffic(page)
        timeout_ms = request.timeout * 1000
        page.set_default_timeout(timeout_ms)
        try:
            response = await page.goto(request.url, wait_until="load", timeout=timeout_ms)
        except PlaywrightTimeout:
            return Fetched(url=request.url, error=f"timed out after {request.timeout:g}s "
                                                  "(the page never finished loading)")
        except PlaywrightError as error:
            if "Download is starting" in str(error):
                _extend(limit, request.timeout)
                return await _download(context, request)
            raise
        if response is None:
            return Fetched(url=request.url, error="the browser got no response")
        status = response.status
        if status >= 400:
            return Fetched(url=request.url, final_url=page.url, status=status,
                           error=f"HTTP {status} {response.status_text}".strip())
        if _mime(response.headers) == "application/pdf":
            _extend(limit, request.timeout)
            return await _download(context, request)
        return await self._render(page, traffic, request, status, limit)

    async def _render(self, page: Page, traffic: _Traffic, request: FetchRequest, status: int,
                      limit: asyncio.Timeout) -> Fetched:
        """The loaded page once its waits are done: its HTML, and its screenshot if asked."""
        options = PageOptions.of(request)
        idle_cap = self.settings.network_idle_cap
        if options.wait_for:
            _extend(limit, request.timeout + idle_cap + options.delay)
        waited = await _wait(page, traffic, options, idle_cap)
        if waited is not None:
            return Fetched(url=request.url, final_url=page.url, status=status, error=waited)
        html = await _html(page)
        content = html.encode("utf-8")
        if len(content) > request.max_bytes:
            return _too_large(request, page.url, status, len(content))
        shot = b""
        if options.screenshot:
            _extend(limit, request.timeout)
            shot = await page.screenshot(full_page=True, type="png", clip=SCREENSHOT_CLIP)
        return Fetched(url=request.url, final_url=page.url, status=status, content=content,
                       content_type="text/html", text=html, screenshot=shot)


def _extend(limit: asyncio.Timeout, seconds: float) -> None:
    """Pushes the hard limit back so a stage given `seconds` of its own times out first."""
    when = asyncio.get_running_loop().time() + seconds + CLOSE_GRACE
    if when > (limit.when() or 0.0):
        limit.reschedule(when)


def _context_options(request: FetchRequest) -> dict[str, object]:
    return {"user_agent": request.user_agent or None, "service_workers": "block",
            "locale": request.language, "java_script_enabled": True,
            "extra_http_headers": {"Accept-Language": accept_language(request.language)}}


def _own_headers(request: FetchRequest) -> dict[str, str]:
    """The target's headers for its own hosts, lowercased as Playwright gives a request's;
    the browser ignores a Cookie header there (`_cookies` turns it into cookies)."""
    return {name.lower(): value for name, value in request.headers if name.lower() != "cookie"}


def _cookies(request: FetchRequest) -> list[dict[str, str | bool]]:
    """The target's Cookie header as cookies of the target's host, which the browser sends to
    that host alone; a part without `=` is a cookie without a name, as browsers read it."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    domain = f"[{host}]" if ":" in host else host
    cookies: list[dict[str, str | bool]] = []
    for name, value in request.headers:
        if name.lower() != "cookie":
            continue
        for pair in filter(None, (part.strip() for part in value.split(";"))):
            key, val = pair.split("=", 1) if "=" in pair else ("", pair)
            cookies.append({"name": key.strip(), "value": val.strip(), "domain": domain,
                            "path": "/", "secure": parts.scheme == "https", "httpOnly": True})
    return cookies


class _Traffic:
    """Tells when a page has settled: no request in flight, an idle main thread, and no
    short timer about to run.

    Playwright's `networkidle` waits for 500 ms without requests. Asking the page itself for
    an idle callback covers what a quiet period alone can miss (a long-running script that
    will send its request when it is done) and lets the quiet period be shorter. TIMER_WATCH
    counts the page's pending `setTimeout`s of at most SHORT_TIMER_MS, so content built or a
    redirect made by such a timer is awaited too; only a document's first TIMER_BUDGET such
    timers count, and intervals not at all, so a page that polls or ticks still settles.
    """

    def __init__(self, page: Page):
        self.page = page
        self.inflight = 0
        self.changed = time.monotonic()
        self._moved = asyncio.Event()
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, _request: object) -> None:
        self.inflight += 1
        self._touch()

    def _ended(self, _request: object) -> None:
        self.inflight = max(0, self.inflight - 1)
        self._touch()

    def _touch(self) -> None:
        self.changed = time.monotonic()
        self._moved.set()

    async def settled(self, quiet: float, cap: float) -> None:
        """Returns once the page has settled, or after `cap` seconds.

        Settled: nothing in flight, the main thread idle (scripts done; a page that is never
        idle gets 250 ms) with no short timer pending, then no request during the rest of
        the quiet period and for at least LATE_EVENT after the idle answer (a request sent
        by the last script may reach us just after it).
        """
        deadline = time.monotonic() + cap
        while (left := deadline - time.monotonic()) > 0:
            if self.inflight:
                await self._next_change(left)
                continue
            mark = self.changed
            if not await self._page_idle(left) or self.changed != mark:
                continue
            calm_for = time.monotonic() - self.changed
            if not await self._next_change(min(left, max(quiet - calm_for, LATE_EVENT))):
                return

    async def _next_change(self, timeout: float) -> bool:
        """Whether the page's traffic changed within `timeout` seconds."""
        self._moved.clear()
        try:
            await asyncio.wait_for(self._moved.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _page_idle(self, timeout: float) -> bool:
        """Whether the main thread is idle with no short timer pending; when it is not, or
        the document is being replaced (a redirect), returns after waiting a little."""
        try:
            timers = await asyncio.wait_for(self.page.evaluate(IDLE_PROBE), timeout)
        except PlaywrightError:
            timers = 1
        except TimeoutError:
            return False
        if timers:
            await self._next_change(min(timeout, QUIET_PERIOD))
            return False
        return True


async def _wait(page: Page, traffic: _Traffic, options: PageOptions,
                idle_cap: float) -> str | None:
    """Per-target waits; an error message when the awaited selector never appears."""
    if options.wait_for:
        try:
            await page.wait_for_selector(options.wait_for, state="attached")
        except PlaywrightTimeout:
            return f"wait_for selector {options.wait_for!r} did not appear on the page"
    if idle_cap > 0:
        await traffic.settled(QUIET_PERIOD, idle_cap)
    if options.delay:
        await asyncio.sleep(options.delay)
    return None


async def _html(page: Page) -> str:
    """The rendered document; outerHTML skips content()'s extra script world (~20 ms)."""
    with contextlib.suppress(PlaywrightError):
        html = await page.evaluate("() => document.documentElement.outerHTML")
        if isinstance(html, str):
            return html
    return await page.content()


async def _download(context: BrowserContext, request: FetchRequest) -> Fetched:
    """A document the browser would show in a viewer or download (a PDF, or a page served
    as an attachment): read its bytes, and its text unless it is a PDF."""
    response = await context.request.get(request.url, headers=_own_headers(request),
                                         timeout=request.timeout * 1000)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > request.max_bytes:
        return _too_large(request, response.url, response.status, int(declared))
    body = await response.body()
    if len(body) > request.max_bytes:
        return _too_large(request, response.url, response.status, len(body))
    mime = _mime(response.headers)
    error = f"HTTP {response.status} {response.status_text}".strip() \
        if response.status >= 400 else None
    is_pdf = mime == "application/pdf" or body.startswith(b"%PDF-")
    text = "" if is_pdf else decode_html(body, _charset(response.headers), response.url)
    return Fetched(url=request.url, final_url=response.url, status=response.status,
                   content=body, content_type=mime, text=text, error=error)


def _charset(headers: dict[str, str]) -> str | None:
    found = re.search(r"charset=[\"']?([\w.:-]+)", headers.get("content-type", ""), re.I)
    return found.group(1) if found else None


def _too_large(request: FetchRequest, final_url: str, status: int, size: int) -> Fetched:
    return Fetched(url=request.url, final_url=final_url, status=status,
                   error=too_large_reason(request.max_bytes, size))


class _Router:
    """Blocks what a page does not need; third-party requests cannot hang the page.

    First-party: the target's host and the host of every navigation of the page's main frame
    (where the document lands after redirects; not a popup's), compared as `_host` normalizes
    them. They alone get the target's headers; Playwright keeps such headers on a redirect
    without asking the router.
    """

    def __init__(self, request: FetchRequest, settings: BrowserSettings):
        self.hosts = {_host(request.url)}
        self.headers = _own_headers(request)
        self.settings = settings
        self.main_frame: Frame | None = None

    def watch(self, page: Page) -> None:
        """Follows the page's navigations: Playwright routes no redirect, but reports it."""
        self.main_frame = page.main_frame
        page.on("request", self.notice)

    def notice(self, request: Request) -> None:
        """Takes the host of a navigation of the page's main frame (a redirect's too)."""
        if request.is_navigation_request() and self.main_frame is not None \
                and _frame(request) is self.main_frame:
            self.hosts.add(_host(request.url))

    async def handle(self, route: Route) -> None:
        request = route.request
        try:
            if request.resource_type in BLOCKED_TYPES:
                await route.abort("blockedbyclient")
            elif not request.url.startswith("http"):
                await route.continue_()
            elif self._first_party(request):
                await self._continue(route)
            elif self.settings.block_third_party:
                await route.abort("blockedbyclient")
            else:
                await self._third_party(route)
        except PlaywrightError:
            pass

    def _first_party(self, request: Request) -> bool:
        self.notice(request)
        return _host(request.url) in self.hosts

    async def _continue(self, route: Route) -> None:
        if self.headers:
            await route.continue_(headers={**route.request.headers, **self.headers})
        else:
            await route.continue_()

    async def _third_party(self, route: Route) -> None:
        try:
            response = await route.fetch(timeout=self.settings.third_party_timeout * 1000)
        except PlaywrightError:
            await route.abort("timedout")
            return
        await route.fulfill(response=response)


def _host(url: str) -> str:
    """A URL's host and port as Chromium writes them: lowercase, the default port filled in."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.isascii():
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        port = None
    return f"{host}:{port}"


def _frame(request: Request) -> Frame | None:
    """The request's frame; None for a frame not created yet (a new iframe's first document)."""
    try:
        return request.frame
    except PlaywrightError:
        return None


def _mime(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _playwright_chromium(playwright: Playwright) -> str | None:
    try:
        return playwright.chromium.executable_path
    except PlaywrightError:
        return None


def _first(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
