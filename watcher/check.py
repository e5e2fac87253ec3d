"""The check pipeline: fetch -> normalize -> compare -> diff -> record, for a set of targets.

`run_checks` is the one entry point shared by `watcher check`, `watcher ingest` (through
`record_fetched`) and the daemon. Targets that share a URL and fetch options are fetched once
per run. Every target's outcome is recorded in its own transaction; a failure of one target
never stops the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from watcher.config import Config, Target
from watcher.diff import diff_clauses
from watcher.fetch import Fetcher, FetchRequest, HttpFetcher
from watcher.guard import failure_reason, page_problem, shrink_problem
from watcher.models import CheckResult, Clause, Diff, Fetched, Version, document_sha256
from watcher.normalize import NormalizeError, drop_ignored, html_to_clauses
from watcher.notify import queue_change
from watcher.significance import assess
from watcher.store import Store

REVERT_WINDOW = 5
"""A new text equal to one of this many latest versions is recorded as a revert to it."""

__all__ = ["run_checks", "record_fetched", "open_fetchers", "fetch_request", "read_clauses"]


@asynccontextmanager
async def open_fetchers(config: Config):
    """The fetchers of one run (or of the daemon's life), closed at the end."""
    http = HttpFetcher()
    try:
        yield {"http": http}
    finally:
        await http.aclose()


def fetch_request(config: Config, target: Target) -> FetchRequest:
    settings = config.settings
    return FetchRequest(url=target.url, headers=tuple(sorted(target.headers.items())),
                        language=config.language_of(target), timeout=settings.timeout,
                        max_bytes=settings.max_bytes, user_agent=settings.user_agent)


def choose_fetcher(config: Config, target: Target, fetchers: dict[str, Fetcher]) -> Fetcher:
    wanted = config.fetcher_of(target)
    return fetchers.get(wanted) or fetchers["http"]


def read_clauses(fetched: Fetched, target: Target) -> list[Clause]:
    """The clauses of a fetched document; raises NormalizeError when there are none."""
    if fetched.content_type == "application/pdf" or fetched.content.startswith(b"%PDF-"):
        raise NormalizeError("the response is a PDF; PDF documents are not supported yet")
    return html_to_clauses(fetched.text, target.selection)


async def run_checks(config: Config, store: Store, targets: Sequence[Target],
                     fetchers: dict[str, Fetcher]) -> list[CheckResult]:
    """Check each target once, sharing fetches between targets of the same page."""
    groups: dict[tuple, list[Target]] = {}
    for target in targets:
        fetcher = choose_fetcher(config, target, fetchers)
        groups.setdefault((fetcher.name, fetch_request(config, target)), []).append(target)
    limit = asyncio.Semaphore(max(1, config.settings.concurrency))

    async def one_page(fetcher_name: str, request: FetchRequest,
                       members: list[Target]) -> list[CheckResult]:
        async with limit:
            at = datetime.now(UTC)
            fetched = await fetchers[fetcher_name].fetch(request)
        return [record_fetched(config, store, target, fetched, at) for target in members]

    pages = await asyncio.gather(*(one_page(name, request, members)
                                   for (name, request), members in groups.items()))
    by_id = {result.target: result for page in pages for result in page}
    return [by_id[target.id] for target in targets]


def record_fetched(config: Config, store: Store, target: Target, fetched: Fetched,
                   at: datetime, alerts: bool = True) -> CheckResult:
    """Normalize one fetched page for one target, compare, and record the check.

    With `alerts`, a change (not a first version) queues its alerts in the same transaction.
    """
    base = {"target": target.id, "at": at, "fetcher": fetched.fetcher,
            "http_status": fetched.status, "duration_ms": fetched.duration_ms}
    if not fetched.ok:
        return _record_failure(store, target, CheckResult(
            status="failed", reason=failure_reason(fetched), **base))
    try:
        problem = page_problem(fetched)
        if problem:
            raise NormalizeError(problem)
        clauses = drop_ignored(read_clauses(fetched, target), target.ignored_patterns)
        if not clauses:
            raise NormalizeError("nothing is left once the target's ignore rules are applied")
    except NormalizeError as error:
        return _record_failure(store, target, CheckResult(status="failed", reason=str(error),
                                                          **base))
    with store.transaction():
        store.upsert_target(target.id, target.service, target.document, target.url)
        previous = store.version(target.id)
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
