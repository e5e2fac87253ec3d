"""The check pipeline: fetch -> normalize -> compare -> diff -> record, for a set of targets.

`run_checks` is the one entry point shared by `watcher check`, `watcher ingest` (through
`record_fetched`) and the daemon. Targets that share a URL and fetch options are fetched once
per run. Every target's outcome is recorded in its own transaction; a failure of one target
never stops the others: an unexpected exception while fetching or reading a page (a bug) is
logged with its traceback and becomes a failed check of that target ("internal error: ...,
please report").
A target made of several `sources` is one document: any failing page fails the check.
`fetcher = "auto"` reads a target both ways when its decision is missing, stale or made for
another configuration, keeps the cheaper one that yields the browser's clauses, and persists
that choice, so the fetcher never shows up as a change.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from watcher.browser import BrowserFetcher
from watcher.config import Config, Source, Target
from watcher.diff import diff_clauses
from watcher.fetch import Fetcher, FetchRequest, HttpFetcher
from watcher.guard import failure_reason, page_problem, shrink_problem
from watcher.models import CheckResult, Clause, Diff, Fetched, Version, document_sha256
from watcher.normalize import NormalizeError, Selection, drop_ignored, html_to_clauses
from watcher.notify import queue_change
from watcher.pdf import pdf_to_clauses
from watcher.significance import assess
from watcher.store import Store

__all__ = ["run_checks", "record_fetched", "open_fetchers", "fetch_request", "read_clauses",
           "looks_like_script_shell"]

log = logging.getLogger("watcher.check")

SHELL_TEXT_CHARS = 200
REVERT_WINDOW = 5
"""A new text equal to one of this many latest versions is recorded as a revert to it."""


@asynccontextmanager
async def open_fetchers(config: Config):
    """The fetchers of one run (or of the daemon's life), closed at the end."""
    http = HttpFetcher()
    browser = BrowserFetcher(config.settings.browser)
    try:
        yield {"http": http, "browser": browser}
    finally:
        await browser.aclose()
        await http.aclose()


@dataclass(frozen=True)
class Part:
    """One page of a target's document: the target itself, or one of its `sources`."""

    url: str
    selection: Selection
    fetcher: str | None
    wait_for: str | None


@dataclass(frozen=True)
class Document:
    """A target's pages fetched and read: its clauses, or why there are none."""

    fetched: Fetched
    clauses: tuple[Clause, ...] = ()
    error: str | None = None


def parts_of(target: Target) -> list[Part]:
    if not target.sources:
        return [Part(target.url, target.selection, target.fetcher, target.wait_for)]
    return [Part(s.url, replace(s.selection, track_links=target.track_links),
                 s.fetcher or target.fetcher, s.wait_for or target.wait_for)
            for s in target.sources]


def fetch_request(config: Config, target: Target, part: Part | None = None,
                  fetcher: str = "http") -> FetchRequest:
    settings = config.settings
    part = part or parts_of(target)[0]
    extra: tuple[tuple[str, str], ...] = ()
    timeout = settings.timeout
    if fetcher == "browser":
        timeout = settings.browser.timeout
        extra = tuple(sorted((key, value) for key, value in (
            ("wait_for", part.wait_for or ""), ("delay", f"{target.delay:g}"),
            ("screenshot", "1" if target.screenshot else "")) if value and value != "0"))
    return FetchRequest(url=part.url, headers=tuple(sorted(target.headers.items())),
                        language=config.language_of(target), timeout=timeout,
                        max_bytes=settings.max_bytes, user_agent=settings.user_agent, extra=extra)


def fetcher_config_key(config: Config, target: Target) -> str:
    """What the `auto` decision depends on: a change re-opens the decision."""
    fields = [target.url, target.select, target.remove, target.headers, target.wait_for,
              target.delay, [(s.url, s.select, s.remove, s.fetcher, s.wait_for)
                             for s in target.sources], config.language_of(target)]
    return hashlib.sha256(json.dumps(fields, default=list).encode()).hexdigest()[:16]


def read_clauses(fetched: Fetched, target: Target | Source | Part) -> list[Clause]:
    """The clauses of a fetched document; raises NormalizeError when there are none."""
    if fetched.content_type == "application/pdf" or fetched.content.startswith(b"%PDF-"):
        return pdf_to_clauses(fetched.content)
    return html_to_clauses(fetched.text, target.selection)


def looks_like_script_shell(document: Document) -> bool:
    """An HTTP result that only a browser can read: no content, or a <noscript> app shell."""
    if document.error is not None:
        return document.fetched.ok
    if "<noscript" not in document.fetched.text.lower():
        return False
    return sum(len(c.text) for c in document.clauses) < SHELL_TEXT_CHARS


class _Fetches:
    """The fetches of one run: each (fetcher, request) once, a bounded number at a time."""

    def __init__(self, fetchers: dict[str, Fetcher], concurrency: int):
        self.fetchers = fetchers
        self.limit = asyncio.Semaphore(max(1, concurrency))
        self.tasks: dict[tuple[str, FetchRequest], asyncio.Task[Fetched]] = {}

    def get(self, name: str, request: FetchRequest) -> asyncio.Task[Fetched]:
        name = name if name in self.fetchers else "http"
        key = (name, request)
        if key not in self.tasks:
            self.tasks[key] = asyncio.ensure_future(self._fetch(name, request))
        return self.tasks[key]

    async def _fetch(self, name: str, request: FetchRequest) -> Fetched:
        """One fetch; an unexpected error makes it a failure."""
        async with self.limit:
            try:
                return await self.fetchers[name].fetch(request)
            except Exception as error:
                reason = _internal_error(error, f"fetching {request.url} ({name})")
                return Fetched(url=request.url, error=reason, fetcher=name)


async def run_checks(config: Config, store: Store, targets: Sequence[Target],
                     fetchers: dict[str, Fetcher]) -> list[CheckResult]:
    """Check each target once, sharing fetches between targets of the same page."""
    fetches = _Fetches(fetchers, config.settings.concurrency)
    return list(await asyncio.gather(*(_check_target(config, store, target, fetches)
                                       for target in targets)))


async def _check_target(config: Config, store: Store, target: Target,
                        fetches: _Fetches) -> CheckResult:
    at = datetime.now(UTC)
    if config.fetcher_of(target) != "auto":
        document = await _read(config, target, fetches, config.fetcher_of(target))
        return _record(config, store, target, document, at, None)
    key = fetcher_config_key(config, target)
    decision = store.fetcher_decision(target.id)
    recheck = timedelta(days=config.settings.browser.auto_recheck_days)
    if decision is None or decision.config_key != key or at - decision.at >= recheck:
        document, chosen = await _decide(config, target, fetches,
                                         decision.fetcher if decision else None)
        return _record(config, store, target, document, at, (chosen, key) if chosen else None)
    document = await _read(config, target, fetches, decision.fetcher)
    if decision.fetcher == "http" and looks_like_script_shell(document):
        document = await _read(config, target, fetches, "browser")
        return _record(config, store, target, document, at,
                       ("browser", key) if document.error is None else None)
    return _record(config, store, target, document, at, None)


async def _decide(config: Config, target: Target, fetches: _Fetches,
                  previous: str | None) -> tuple[Document, str | None]:
    """Read the target both ways; HTTP when it yields the browser's clauses, else the browser.

    The browser is the reference: when it cannot read the page, no decision is made, and the
    document is read the way the previous decision said (a failed check if that was the
    browser, or if there was none), so a browser failure never shows up as a change.
    """
    http, browser = await asyncio.gather(_read(config, target, fetches, "http"),
                                         _read(config, target, fetches, "browser"))
    if browser.error is not None:
        if previous == "http":
            return http, None
        return replace(browser, error=f"auto: the browser, which decides how to read this "
                                      f"page, failed: {browser.error}"), None
    if http.error is None and http.clauses == browser.clauses:
        return http, "http"
    return browser, "browser"


async def _read(config: Config, target: Target, fetches: _Fetches, fetcher: str) -> Document:
    """Fetch and read every page of a target with one fetcher (unless a source names its own)."""
    parts = parts_of(target)
    names = [part.fetcher if part.fetcher in ("http", "browser") else fetcher for part in parts]
    results = await asyncio.gather(*(fetches.get(name, fetch_request(config, target, part, name))
                                     for part, name in zip(parts, names, strict=True)))
    clauses: list[Clause] = []
    for index, (part, fetched) in enumerate(zip(parts, results, strict=True)):
        where = f"source {index + 1} ({part.url}): " if len(parts) > 1 else ""
        try:
            clauses += _read_page(fetched, part)
        except NormalizeError as error:
            return Document(fetched=_combined(target, results), error=where + str(error))
    return _ignoring(target, Document(fetched=_combined(target, results), clauses=tuple(clauses)))


def _read_page(fetched: Fetched, part: Target | Source | Part) -> list[Clause]:
    """The clauses of one fetched page, through the broken-page guard."""
    if not fetched.ok:
        raise NormalizeError(failure_reason(fetched))
    problem = page_problem(fetched)
    if problem:
        raise NormalizeError(problem)
    try:
        return read_clauses(fetched, part)
    except NormalizeError:
        raise
    except Exception as error:
        raise NormalizeError(_internal_error(error, f"reading {fetched.url}")) from error


def _internal_error(error: Exception, doing: str) -> str:
    """Log an unexpected exception with its traceback; return the reason of the failed check."""
    log.error("internal error %s", doing, exc_info=error)
    return f"internal error: {_describe(error)} ({doing}), please report"


def _describe(error: BaseException) -> str:
    """An exception's type and message, or those of each exception a group holds."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


def _ignoring(target: Target, document: Document) -> Document:
    """The document less what the target's ignore rules remove."""
    if document.error is not None or not target.ignored_patterns:
        return document
    clauses = tuple(drop_ignored(list(document.clauses), target.ignored_patterns))
    if not clauses:
        return Document(document.fetched,
                        error="nothing is left once the target's ignore rules are applied")
    return Document(document.fetched, clauses=clauses)


def _combined(target: Target, pages: Sequence[Fetched]) -> Fetched:
    """The raw evidence of a document read from several pages, as one snapshot."""
    if len(pages) == 1:
        return pages[0]
    failed = next((page for page in pages if not page.ok), None)
    content = b"".join(f"<!-- policy-watcher source: {page.final_url or page.url} -->\n"
                       .encode() + page.content + b"\n" for page in pages)
    browser = any(page.fetcher == "browser" for page in pages)
    return Fetched(url=target.url, final_url=target.url, status=(failed or pages[-1]).status,
                   content=content, content_type="multipart/x-policy-watcher-sources",
                   error=failed.error if failed else None,
                   fetcher="browser" if browser else "http",
                   duration_ms=sum(page.duration_ms for page in pages),
                   screenshot=next((p.screenshot for p in pages if p.screenshot), b""))


def record_fetched(config: Config, store: Store, target: Target, fetched: Fetched,
                   at: datetime, alerts: bool = True) -> CheckResult:
    """Normalize one fetched page for one target, compare, and record the check.

    With `alerts`, a change (not a first version) queues its alerts in the same transaction.
    """
    try:
        document = _ignoring(target, Document(fetched, clauses=tuple(_read_page(fetched,
                                                                                 target))))
    except NormalizeError as error:
        document = Document(fetched, error=str(error))
    return _record(config, store, target, document, at, None, alerts)


def _record(config: Config, store: Store, target: Target, document: Document, at: datetime,
            decision: tuple[str, str] | None, alerts: bool = True) -> CheckResult:
    """Compare a read document with the latest version and record the check."""
    fetched = document.fetched
    base = {"target": target.id, "at": at, "fetcher": fetched.fetcher,
            "http_status": fetched.status, "duration_ms": fetched.duration_ms}
    if document.error is not None:
        return _record_failure(store, target, CheckResult(status="failed", reason=document.error,
                                                          **base))
    clauses = list(document.clauses)
    with store.transaction():
        store.upsert_target(target.id, target.service, target.document, target.url)
        if decision is not None:
            store.set_fetcher_decision(target.id, decision[0], decision[1], at)
        store.set_fetcher_used(target.id, fetched.fetcher)
        previous = store.version(target.id)
        if previous is not None and previous.recorded_at > at \
                and previous.sha256 != document_sha256(clauses):
            result = CheckResult(status="unchanged", reason=_superseded(previous), **base)
            _add_check(store, result, None, None)
            return result
        shrunk = shrink_problem(clauses, previous.clauses, config.settings.max_shrink) \
            if previous else None
        if shrunk:
            result = CheckResult(status="suspect", reason=shrunk, **base)
            _add_check(store, result, None, None)
            return result
        previous_snapshot = store.latest_snapshot_sha(target.id)
        snapshot = store.save_snapshot(fetched, at)
        sha = document_sha256(clauses)
        if previous is not None and previous.sha256 == sha:
            result = CheckResult(status="unchanged", **base)
        else:
            result = _record_version(config, store, target, clauses, sha, previous, snapshot,
                                     at, alerts, base)
        _add_check(store, result, snapshot, result.version)
        if config.settings.keep_raw == "versions" and previous_snapshot not in (None, snapshot):
            store.prune_snapshot(previous_snapshot)
    return result


def _superseded(latest: Version) -> str:
    """Two checks of one target overlapped (a retry and a scheduled check, or the daemon and
    `watcher check`) and the one that began first ended last: its older reading is dropped,
    or it would be recorded as a change back, and the next one as a change forward again."""
    return (f"superseded: version {latest.number} was read after this check began, so this "
            "older reading is not recorded")


def _record_version(config: Config, store: Store, target: Target, clauses: list[Clause],
                    sha: str, previous: Version | None, snapshot: str, at: datetime,
                    alerts: bool, base: dict) -> CheckResult:
    """A new version, its assessed changes, and (for a change) the alerts it owes."""
    changes, significance, topics = assess(
        diff_clauses(previous.clauses, clauses) if previous else [], config.settings.lexicon)
    revert_of = store.recent_version_with_sha(target.id, sha, REVERT_WINDOW)
    number = store.add_version(target.id, at, sha, clauses, changes if previous else None,
                               snapshot, significance=significance, topics=topics,
                               revert_of=revert_of)
    diff = Diff(target=target.id, from_version=previous.number if previous else None,
                to_version=number, changes=tuple(changes), significance=significance,
                topics=topics)
    if previous and alerts and not store.is_unstable(target.id):
        queue_change(config, store, target, diff, at)
    return CheckResult(status="changed" if previous else "new", version=number, diff=diff,
                       **base)


def _add_check(store: Store, result: CheckResult, snapshot: str | None,
               number: int | None) -> None:
    store.add_check(result.target, result.at, result.status, result.reason,
                    result.http_status, result.fetcher, result.duration_ms, snapshot, number)


def _record_failure(store: Store, target: Target, result: CheckResult) -> CheckResult:
    with store.transaction():
        store.upsert_target(target.id, target.service, target.document, target.url)
        _add_check(store, result, None, None)
    return result
