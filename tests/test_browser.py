"""The browser fetcher against a local site with a real Chromium (one browser per module)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Silent, require_browser, target_toml
from watcher.browser import BrowserFetcher
from watcher.check import run_checks
from watcher.config import BrowserSettings, parse_config
from watcher.fetch import FetchRequest, HttpFetcher
from watcher.models import Fetched
from watcher.store import Store

pytestmark = pytest.mark.browser

SETTINGS = """[settings]
concurrency = 4
[settings.browser]
timeout = 4
network_idle_cap = 1
third_party_timeout = 1
max_pages = 4
"""


@pytest.fixture(scope="module")
def runner():
    require_browser()
    with asyncio.Runner() as loop:
        fetchers = {"http": HttpFetcher(),
                    "browser": BrowserFetcher(BrowserSettings(max_pages=4, third_party_timeout=1,
                                                              network_idle_cap=1))}
        yield loop, fetchers
        loop.run(fetchers["browser"].aclose())
        loop.run(fetchers["http"].aclose())


def check(runner, tmp_path: Path, toml: str) -> tuple[list, Store]:
    loop, fetchers = runner
    config = parse_config(SETTINGS + toml, tmp_path / "targets.toml")
    store = Store(tmp_path / "watcher.db")
    return loop.run(run_checks(config, store, config.targets, fetchers)), store


def fetch_once(url: str, settings: BrowserSettings, **fields: object) -> Fetched:
    """One fetch by a browser fetcher of its own, closed afterwards; `fields` of the
    FetchRequest (timeout 5 s unless given)."""
    async def fetch() -> Fetched:
        fetcher = BrowserFetcher(settings)
        try:
            return await fetcher.fetch(FetchRequest(url=url, **{"timeout": 5, **fields}))
        finally:
            await fetcher.aclose()
    return asyncio.run(fetch())


def texts(store: Store, target_id: str) -> list[str]:
    return [clause.text for clause in store.version(target_id).clauses]


BUILD = ("document.getElementById('terms').innerHTML = "
         "'<h2>Retention</h2><p>We keep logs for {days} days.</p>';")


def scripted(days: int, after_ms: int | None = None) -> str:
    """A page whose content exists only once its script ran (at load, or ms later)."""
    build = BUILD.format(days=days)
    run = f"setTimeout(() => {{ {build} }}, {after_ms});" if after_ms is not None else build
    return f'<html><body><main id="terms"></main><script>{run}</script></body></html>'


def test_content_built_by_script_after_load(runner, tmp_path, site):
    url = site.set("/terms", scripted(30))
    results, store = check(runner, tmp_path, target_toml("t", url, fetcher="browser",
                                                         select="#terms"))
    assert results[0].status == "new", results[0].reason
    assert texts(store, "t") == ["Retention", "We keep logs for 30 days."]


def test_content_built_after_a_delay_with_wait_for_and_with_delay(runner, tmp_path, site):
    late = site.set("/late", scripted(60, after_ms=1500))
    later = site.set("/later", scripted(90, after_ms=600))
    results, store = check(runner, tmp_path,
                           target_toml("waits", late, fetcher="browser", wait_for="#terms p")
                           + target_toml("sleeps", later, fetcher="browser", delay=1.2))
    assert [r.status for r in results] == ["new", "new"], [r.reason for r in results]
    assert "We keep logs for 60 days." in texts(store, "waits")
    assert "We keep logs for 90 days." in texts(store, "sleeps")


def test_content_built_by_a_short_timer_is_awaited_without_any_wait_setting(
        runner, tmp_path, site):
    url = site.set("/terms", scripted(45, after_ms=400))
    results, store = check(runner, tmp_path, target_toml("t", url, fetcher="browser",
                                                         select="#terms"))
    assert results[0].status == "new", results[0].reason
    assert texts(store, "t") == ["Retention", "We keep logs for 45 days."]


def test_page_that_polls_forever_still_settles_long_before_the_cap(site):
    require_browser()
    pollers = ("function tick() { document.title = Date.now(); setTimeout(tick, 50); } tick();"
               "(async () => { for (;;) await new Promise(r => setTimeout(r, 30)); })();"
               "setInterval(() => {}, 20);")
    url = site.set("/busy", f"<html><body><main><p>Steady text.</p></main>"
                            f"<script>{pollers}</script></body></html>")
    fetched = fetch_once(url, BrowserSettings(network_idle_cap=20))
    assert fetched.ok, fetched.error
    assert "Steady text." in fetched.text
    assert fetched.duration_ms < 5000, f"waited {fetched.duration_ms} ms on a polling page"


def test_third_party_script_that_never_answers_does_not_hang_the_page(runner, tmp_path, site):
    silent = Silent()
    try:
        page = (f'<html><head><script src="{silent.base}/tracker.js"></script></head>'
                '<body><main><h2>Terms</h2><p>Be nice.</p></main></body></html>')
        url = site.set("/with-tracker", page)
        started = time.monotonic()
        results, store = check(runner, tmp_path, target_toml("t", url, fetcher="browser"))
        assert results[0].status == "new", results[0].reason
        assert time.monotonic() - started < 4
        assert texts(store, "t") == ["Terms", "Be nice."]
    finally:
        silent.close()


def test_blocking_third_party_hosts(tmp_path, site):
    require_browser()
    silent = Silent()
    page = (f'<html><head><script src="{silent.base}/app.js"></script></head>'
            '<body><main><p>Static part.</p></main></body></html>')
    url = site.set("/p", page)
    try:
        fetched = fetch_once(url, BrowserSettings(block_third_party=True, network_idle_cap=0))
    finally:
        silent.close()
    assert fetched.ok, fetched.error
    assert fetched.duration_ms < 3000
    assert "Static part." in fetched.text


def test_page_that_never_finishes_loading_fails_and_the_next_target_is_checked(
        runner, tmp_path, site):
    slow = site.set("/slow", "<html><body><p>late</p></body></html>", delay=20)
    fine = site.set("/fine", "<main><p>Fine.</p></main>")
    busy = site.set("/busy", "<main><p>Busy.</p></main><script>"
                             "onload = () => setTimeout(() => { for (;;) {} }, 10)</script>")
    results, store = check(runner, tmp_path, target_toml("slow", slow, fetcher="browser")
                           + target_toml("fine", fine, fetcher="browser")
                           + target_toml("busy", busy, fetcher="browser"))
    assert results[0].status == "failed"
    assert "timed out after 4s" in results[0].reason
    assert results[1].status == "new"
    assert results[2].status == "failed"
    assert "could not be read" in results[2].reason and "a script keeps it busy" in \
        results[2].reason
    assert store.version("slow") is None and store.version("busy") is None


def _descendant_pids(names: tuple[str, ...] = ("chrom",)) -> list[int]:
    """Processes descending from this test process whose name contains one of `names`."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]),
                                            (entry / "comm").read_text().strip())
            except (OSError, IndexError, ValueError):
                continue
    mine, found = os.getpid(), []
    for pid, (_, comm) in parents.items():
        ancestor = pid
        while ancestor in parents and ancestor != mine:
            ancestor = parents[ancestor][0]
        if ancestor == mine and any(name in comm for name in names):
            found.append(pid)
    return found


def test_browser_killed_between_two_checks(runner, tmp_path, site):
    url = site.set("/terms", scripted(30))
    toml = target_toml("t", url, fetcher="browser", select="#terms")
    first, _ = check(runner, tmp_path, toml)
    assert first[0].status == "new"
    pids = _descendant_pids()
    assert pids, "no Chromium process found"
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    site.set("/terms", scripted(45))
    second, store = check(runner, tmp_path, toml)
    assert second[0].status == "changed", second[0].reason
    assert "We keep logs for 45 days." in texts(store, "t")


@contextlib.contextmanager
def own_browser(tmp_path: Path, url: str, timeout: float):
    """A browser fetcher of the test's own (the test harms it), and a check of target `t`."""
    with asyncio.Runner() as loop:
        fetcher = BrowserFetcher(BrowserSettings(timeout=timeout, network_idle_cap=1))
        fetchers = {"http": HttpFetcher(), "browser": fetcher}
        config = parse_config(target_toml("t", url, fetcher="browser", select="#terms"),
                              tmp_path / "targets.toml")
        store = Store(tmp_path / "watcher.db")

        def check_t():
            return loop.run(run_checks(config, store, config.targets, fetchers))[0]

        try:
            yield fetcher, check_t, store
        finally:
            loop.run(fetcher.aclose())
            loop.run(fetchers["http"].aclose())


def test_playwright_driver_killed_between_two_checks(tmp_path, site):
    """Playwright's Node driver dying (out of memory, a stray signal) is a crash too."""
    require_browser()
    url = site.set("/terms", scripted(30))
    others = set(_descendant_pids(("node",)))
    with own_browser(tmp_path, url, timeout=5) as (_, check_t, store):
        assert check_t().status == "new"
        drivers = set(_descendant_pids(("node",))) - others
        assert drivers, "no Playwright driver found"
        harm_then_expect_the_change(drivers, signal.SIGKILL, site, check_t, store)


def harm_then_expect_the_change(pids: set[int], sig: int, site, check_t, store: Store) -> None:
    """Signal `pids`, change the page: the next check must still record the new text."""
    for pid in pids:
        os.kill(pid, sig)
    site.set("/terms", scripted(45))
    second = check_t()
    assert second.status == "changed", second.reason
    assert "We keep logs for 45 days." in texts(store, "t")


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie (killed, not yet reaped) counts as gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_hung_browser_is_replaced_and_the_next_check_succeeds(tmp_path, site):
    require_browser()
    url = site.set("/terms", scripted(30))
    others = set(_descendant_pids())
    hung: set[int] = set()
    with own_browser(tmp_path, url, timeout=3) as (fetcher, check_t, store):
        try:
            assert check_t().status == "new"
            hung = set(_descendant_pids()) - others
            assert hung, "no Chromium process found"
            harm_then_expect_the_change(hung, signal.SIGSTOP, site, check_t, store)
            assert fetcher.launches == 2
            assert not [pid for pid in hung if _alive(pid)], "the hung browser was left running"
        finally:
            for pid in hung:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_four_targets_fetched_concurrently(runner, tmp_path, site):
    toml = ""
    for n in range(4):
        url = site.set(f"/doc{n}", f"<main><h2>Doc {n}</h2><p>Clause {n}.</p></main>", delay=1.5)
        toml += target_toml(f"doc{n}", url, fetcher="browser")
    started = time.monotonic()
    results, store = check(runner, tmp_path, toml)
    elapsed = time.monotonic() - started
    assert [r.status for r in results] == ["new"] * 4, [r.reason for r in results]
    assert [texts(store, f"doc{n}") for n in range(4)] == [[f"Doc {n}", f"Clause {n}."]
                                                          for n in range(4)]
    assert elapsed < 5.5, f"4 pages with 1.5 s server delay took {elapsed:.1f}s: not concurrent"


def test_screenshot_is_kept_with_the_version(project, site):
    require_browser()
    url = site.set("/terms", "<main><h2>Terms</h2><p>Be nice.</p></main>")
    project.write_config(target_toml("t", url, fetcher="browser", screenshot=True))
    assert project.json("check")[0]["status"] == "new"
    out = project.root / "shot.png"
    result = project.run("show", "t", "--screenshot", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_wrong_executable_path_is_a_clear_failed_check(project, site):
    url = site.set("/terms", "<main><p>x</p></main>")
    project.write_config('[settings.browser]\nexecutable_path = "/nowhere/chrome"\n'
                         + target_toml("t", url, fetcher="browser"))
    result = project.run("check", "--json")
    assert result.exit_code == 1
    assert "/nowhere/chrome" in result.output and "executable_path" in result.output


def test_remote_browser_over_cdp(project, site, tmp_path):
    require_browser()
    from watcher.browser import find_browser
    remote = subprocess.Popen(
        [find_browser(BrowserSettings(), None), "--headless=new", "--no-sandbox",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "about:blank"],
        stderr=subprocess.PIPE, text=True)
    try:
        endpoint = ""
        while not endpoint:
            line = remote.stderr.readline()
            assert line, "the remote browser exited before listening"
            if "DevTools listening on" in line:
                endpoint = line.split("on ", 1)[1].strip()
        url = site.set("/terms", scripted(30))
        project.write_config(f'[settings.browser]\ncdp_url = "{endpoint}"\n'
                             + target_toml("t", url, fetcher="browser", select="#terms"))
        assert project.json("check")[0]["status"] == "new"
        assert project.run("show", "t").output == "## Retention\n\nWe keep logs for 30 days.\n"
        # The watcher only disconnected: the shared browser still serves the next check.
        assert remote.poll() is None
        site.set("/terms", scripted(90))
        assert project.json("check")[0]["status"] == "changed"
    finally:
        remote.kill()
        remote.wait()


def test_content_loaded_by_a_request_after_load_is_awaited(runner, tmp_path, site):
    site.set("/api/terms", '{"days": 14}', content_type="application/json", delay=0.5)
    page = ("<html><body><main id='terms'></main><script>window.addEventListener('load', () =>"
            " fetch('/api/terms').then(r => r.json()).then(d => { document.getElementById("
            "'terms').innerHTML = '<p>We keep logs for ' + d.days + ' days.</p>'; }));"
            "</script></body></html>")
    url = site.set("/xhr", page)
    results, store = check(runner, tmp_path, target_toml("t", url, fetcher="browser",
                                                         select="#terms"))
    assert results[0].status == "new", results[0].reason
    assert texts(store, "t") == ["We keep logs for 14 days."]


def test_request_sent_after_a_long_script_is_awaited(runner, tmp_path, site):
    """A script busy for longer than any quiet period, then fetching: the page is not done."""
    site.set("/api/terms", '{"days": 21}', content_type="application/json", delay=0.2)
    page = ("<html><body><main id='terms'></main><script>window.addEventListener('load', () =>"
            " setTimeout(() => { const until = Date.now() + 600; while (Date.now() < until) {}"
            " fetch('/api/terms').then(r => r.json()).then(d => { document.getElementById("
            "'terms').innerHTML = '<p>We keep logs for ' + d.days + ' days.</p>'; }); }));"
            "</script></body></html>")
    url = site.set("/busy", page)
    results, store = check(runner, tmp_path, target_toml("t", url, fetcher="browser",
                                                         select="#terms"))
    assert results[0].status == "new", results[0].reason
    assert texts(store, "t") == ["We keep logs for 21 days."]


BROWSER_AND_DRIVER = ("chrom", "node")


def test_idle_browser_is_closed_and_the_next_fetch_relaunches_it(site):
    """Between checks hours apart, neither Chromium nor Playwright's driver stays in memory."""
    require_browser()
    url = site.set("/terms", scripted(30))
    others = set(_descendant_pids(BROWSER_AND_DRIVER))

    async def scenario() -> tuple[list[str], list[int], int, int]:
        fetcher = BrowserFetcher(BrowserSettings(close_after_idle=1, network_idle_cap=1))
        try:
            texts = [(await fetcher.fetch(FetchRequest(url=url))).text]
            await asyncio.sleep(0.3)
            texts.append((await fetcher.fetch(FetchRequest(url=url))).text)
            launches_while_busy = fetcher.launches
            started = set(_descendant_pids(BROWSER_AND_DRIVER)) - others
            deadline = time.monotonic() + 10
            while [pid for pid in started if _alive(pid)] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            left = [pid for pid in started if _alive(pid)]
            site.set("/terms", scripted(45))
            texts.append((await fetcher.fetch(FetchRequest(url=url))).text)
            return texts, left, launches_while_busy, fetcher.launches
        finally:
            await fetcher.aclose()

    texts, left, launches_while_busy, launches = asyncio.run(scenario())
    assert launches_while_busy == 1, "the browser was closed between two close fetches"
    assert not left, "the idle browser or its driver is still running"
    assert launches == 2
    assert ["30 days" in texts[0], "30 days" in texts[1], "45 days" in texts[2]] == [True] * 3


def test_browser_is_replaced_after_its_share_of_pages(site):
    require_browser()
    url = site.set("/terms", scripted(30))

    async def scenario() -> tuple[int, int, list[bool]]:
        fetcher = BrowserFetcher(BrowserSettings(relaunch_after_pages=2, max_pages=2,
                                                 network_idle_cap=1))
        try:
            for _ in range(5):
                assert "30 days" in (await fetcher.fetch(FetchRequest(url=url))).text
            sequential = fetcher.launches
            together = await asyncio.gather(*(fetcher.fetch(FetchRequest(url=url))
                                              for _ in range(6)))
            return sequential, fetcher.launches, ["30 days" in f.text for f in together]
        finally:
            await fetcher.aclose()

    sequential, launches, found = asyncio.run(scenario())
    assert sequential == 3
    assert launches > sequential
    assert found == [True] * 6, "a page open on the old browser was cut off"


def test_script_from_another_host_builds_the_page(runner, tmp_path, site):
    # "localhost" is another host than the page's "127.0.0.1": the script is third-party,
    # fetched on the page's behalf like a CDN's would be.
    site.set("/cdn/app.js", BUILD.format(days=45), content_type="text/javascript")
    cdn = site.url("/cdn/app.js").replace("127.0.0.1", "localhost")
    url = site.set("/terms", f'<html><body><main id="terms"></main><script src="{cdn}">'
                             '</script></body></html>')
    results, store = check(runner, tmp_path, target_toml("t", url, fetcher="browser",
                                                         select="#terms"))
    assert results[0].status == "new", results[0].reason
    assert texts(store, "t") == ["Retention", "We keep logs for 45 days."]


def test_error_status_in_the_browser_is_a_failed_check(runner, tmp_path, site):
    url = site.set("/terms", scripted(30))
    toml = target_toml("t", url, fetcher="browser", select="#terms")
    check(runner, tmp_path, toml)
    for status in (500, 404, 403):
        site.set("/terms", f"<html><body><main id='terms'><p>Error {status}</p></main>"
                           "</body></html>", status=status)
        results, store = check(runner, tmp_path, toml)
        assert results[0].status == "failed"
        assert f"HTTP {status}" in results[0].reason
    assert store.version("t").number == 1
    assert texts(store, "t") == ["Retention", "We keep logs for 30 days."]


@pytest.mark.parametrize("redirect", [
    "<script>location.replace('/terms')</script>",
    "<script>setTimeout(() => { location.href = '/terms'; }, 60)</script>",
    "<script>setTimeout(() => { location.href = '/terms'; }, 700)</script>",
    '<meta http-equiv="refresh" content="0; url=/terms">',
])
def test_page_that_redirects_itself_is_read_where_it_lands(runner, tmp_path, site, redirect):
    site.set("/terms", scripted(30))
    start = site.set("/start", f"<html><head>{redirect}</head><body><main id='terms'>"
                               "<p>Redirecting…</p></main></body></html>")
    results, store = check(runner, tmp_path, target_toml("t", start, fetcher="browser",
                                                         select="#terms"))
    assert results[0].status == "new", results[0].reason
    assert texts(store, "t") == ["Retention", "We keep logs for 30 days."]


def sent_headers(site, path: str) -> dict[str, str]:
    return {name.lower(): value for name, value in site.request_headers[path].items()}


def test_target_headers_go_to_its_own_host_only(site):
    """The page's host gets the target's cookie and API key (for a PDF too); a script from
    another host, and a popup the page opens on it, get neither."""
    require_browser()
    site.set("/own.js", BUILD.format(days=45), content_type="text/javascript")
    site.set("/cdn/tracker.js", "window.tracked = true;", content_type="text/javascript")
    site.set("/cdn/popup", "<p>Offer!</p>")
    cdn = site.base.replace("127.0.0.1", "localhost") + "/cdn"
    url = site.set("/terms", '<html><body><main id="terms"></main>'
                             f'<script src="/own.js"></script><script src="{cdn}/tracker.js">'
                             f'</script><script>window.open().location = "{cdn}/popup"</script>'
                             '</body></html>')
    pdf = site.set("/terms.pdf", b"%PDF-1.4\n%%EOF\n", content_type="application/pdf")
    secrets = (("Cookie", "session=SECRET123"), ("X-Api-Key", "KEY456"))
    settings = BrowserSettings(network_idle_cap=1)
    page, document = (fetch_once(url, settings, headers=secrets, extra=(("delay", "1"),)),
                      fetch_once(pdf, settings, headers=secrets))
    assert page.ok and document.ok, (page.error, document.error)
    assert "We keep logs for 45 days." in page.text
    for own in ("/terms", "/own.js", "/terms.pdf"):
        sent = sent_headers(site, own)
        assert (sent.get("cookie"), sent.get("x-api-key")) == ("session=SECRET123", "KEY456"), own
    for third_party in ("/cdn/tracker.js", "/cdn/popup"):
        sent = sent_headers(site, third_party)
        assert "cookie" not in sent and "x-api-key" not in sent, third_party
        assert sent["accept-language"].startswith("en")


LANDING = '<html><body><main id="terms"></main><script src="/app.js"></script></body></html>'


@pytest.mark.parametrize("how", ["host in capitals", "redirected", "redirected, slow script"])
def test_the_pages_own_host_is_first_party(site, how):
    """Blocked or given only third_party_timeout: never the host the document is served from,
    however the target's URL writes it or wherever a redirect takes it."""
    require_browser()
    slow = how == "redirected, slow script"
    site.set("/app.js", BUILD.format(days=45), content_type="text/javascript",
             delay=1.5 if slow else 0)
    url = site.set("/terms", LANDING)
    if how == "host in capitals":
        url = url.replace("127.0.0.1", "LOCALHOST")
    else:
        url = site.set("/start", b"", status=302,
                       headers={"Location": url.replace("127.0.0.1", "localhost")})
    settings = BrowserSettings(block_third_party=not slow, third_party_timeout=1,
                               network_idle_cap=1)
    fetched = fetch_once(url, settings)
    assert fetched.ok, fetched.error
    assert "We keep logs for 45 days." in fetched.text


BIG = "<p>" + "All work and no play. " * 14_000 + "</p>"


@pytest.mark.parametrize("page", ["html", "built by a script", "pdf"])
def test_max_bytes_caps_what_the_browser_reads(site, page):
    require_browser()
    if page == "html":
        url = site.set("/big", f"<html><body>{BIG}</body></html>")
    elif page == "built by a script":
        url = site.set("/big", "<html><body><script>document.body.innerHTML = "
                               "'<p>' + 'All work and no play. '.repeat(14000)</script>")
    else:
        url = site.set("/big.pdf", b"%PDF-1.4\n" + b"%" * 300_000 + b"\n%%EOF\n",
                       content_type="application/pdf")
    fetched = fetch_once(url, BrowserSettings(network_idle_cap=0), max_bytes=100_000)
    assert not fetched.ok
    assert fetched.error.startswith("response larger than the 100,000-byte cap (at least ")
    assert fetched.error.endswith("bytes); raise settings.max_bytes if it is real")


def test_screenshot_of_a_very_tall_page_is_cut_at_the_cap(site):
    require_browser()
    from watcher.browser import SCREENSHOT_MAX
    url = site.set("/tall", '<html><body><main><p>Top.</p></main>'
                            '<div style="height: 20000px"></div><p>Bottom.</p></body></html>')
    fetched = fetch_once(url, BrowserSettings(network_idle_cap=0),
                         extra=(("screenshot", "1"),))
    assert fetched.ok, fetched.error
    assert "Bottom." in fetched.text
    png = fetched.screenshot
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, SCREENSHOT_MAX)


def test_wait_for_on_a_slow_page_fails_for_its_own_reason(site):
    """The selector gets the whole timeout after a load that took most of its own."""
    require_browser()
    url = site.set("/slow", "<html><body><p>Slow.</p></body></html>", delay=6.2)
    fetched = fetch_once(url, BrowserSettings(network_idle_cap=0), timeout=7.5,
                         extra=(("wait_for", "#never"),))
    assert fetched.error == "wait_for selector '#never' did not appear on the page"


def test_a_page_served_as_an_attachment_is_read_like_any_page(runner, tmp_path, site):
    url = site.set("/terms", "<main><h2>Terms</h2><p>Be nice à tous.</p></main>",
                   content_type="text/html; charset=utf-8",
                   headers={"Content-Disposition": 'attachment; filename="terms.html"'})
    results, store = check(runner, tmp_path, target_toml("t", url, fetcher="browser"))
    assert results[0].status == "new", results[0].reason
    assert texts(store, "t") == ["Terms", "Be nice à tous."]
