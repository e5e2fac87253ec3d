"""The daemon behind `watcher run`: every target checked on schedule, for months unattended.

It owns when checks happen, not what a check is: each due group of targets goes through the
same `run_checks` pipeline as `watcher check`. First runs are derived from the last check in
the database (a restart neither re-checks everything nor forgets overdue targets); failures
are retried with exponential backoff and, after several in a row, announced once as "needs
attention" (and once more on recovery). SIGTERM/SIGINT drain in-flight checks within a grace
period; SIGHUP (or `--reload`) re-reads the targets file and keeps the old one if it is invalid
(targets, schedules, the timezone and routes apply at once; the database, `[settings.daemon]`
and `[settings.browser]` need a restart, which the log says).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from watcher.attention import announce
from watcher.check import fetch_request, open_fetchers, run_checks
from watcher.config import Config, ConfigError, Target, load_config
from watcher.export import atom_feed
from watcher.metrics import MetricsServer
from watcher.models import CheckResult
from watcher.notify import DeliveryReport, deliver_pending
from watcher.schedule import Schedule, parse_timezone
from watcher.store import Store

__all__ = ["Daemon", "plan_groups", "configure_logging", "process_alive"]

log = logging.getLogger("watcher.daemon")
FAILED = ("failed", "suspect")
HEALTHY_WITHIN = 10.0


@dataclass(frozen=True)
class Group:
    """Targets checked together: same page, same fetch options, same schedule."""

    key: str
    targets: tuple[Target, ...]
    schedule: Schedule

    @property
    def host(self) -> str:
        return urlsplit(self.targets[0].url).hostname or ""


def plan_groups(config: Config) -> dict[str, Group]:
    """Targets grouped by what their checks share; a group's key changes with anything that
    changes its checks or its timing (a target, the schedule it inherits, the timezone), so
    a reload replaces exactly the jobs whose plan changed."""
    members: dict[tuple, list[Target]] = {}
    for target in config.targets:
        key = (config.fetcher_of(target), fetch_request(config, target),
               config.schedule_of(target).text)
        members.setdefault(key, []).append(target)
    groups = {}
    for key, targets in members.items():
        plan = repr((key, targets, config.settings.timezone))
        identity = hashlib.sha1(plan.encode()).hexdigest()[:16]
        groups[identity] = Group(identity, tuple(targets), config.schedule_of(targets[0]))
    return groups


class Daemon:
    def __init__(self, config: Config, db_path: Path, watch_file: bool = False):
        self.config = config
        self.db_path = db_path
        self.watch_file = watch_file
        self.groups: dict[str, Group] = {}
        self.inflight: set[asyncio.Task] = set()
        self.running: set[str] = set()  # groups being checked: a retry never overlaps a check
        self.host_ready: dict[str, float] = {}
        self.stopping = asyncio.Event()
        self.pid = os.getpid()

    async def run(self) -> int:
        settings = self.config.settings.daemon
        self.store = Store(self.db_path)
        self.limit = asyncio.Semaphore(max(1, settings.max_concurrent))
        self.delivering = asyncio.Lock()
        self.timezone = parse_timezone(self.config.settings.timezone)
        self.config_mtime = _mtime(self.config.path)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        fresh = max(3 * settings.heartbeat_interval, HEALTHY_WITHIN)
        if self._another_daemon_runs(fresh):
            self.store.close()
            return 1
        self.store.beat(self.pid, _now(), started=True)
        metrics = MetricsServer(self.store, fresh)
        if not await self._serve_metrics(metrics):
            self.store.daemon_stopped(self.pid, _now())
            return 1
        async with open_fetchers(self.config) as fetchers:
            self.fetchers = fetchers
            self.scheduler = AsyncIOScheduler(timezone=self.timezone)
            self.scheduler.start()
            self._install(plan_groups(self.config))
            self.scheduler.add_job(self._tick, "interval", seconds=settings.heartbeat_interval,
                                   id="heartbeat", coalesce=True, max_instances=1)
            self.scheduler.add_job(self._deliver_due, "interval",
                                   seconds=settings.heartbeat_interval, id="deliver",
                                   coalesce=True, max_instances=1)
            log.info("started: %d targets in %d groups, database %s",
                     len(self.config.targets), len(self.groups), self.db_path)
            await self._deliver()
            await self.stopping.wait()
            self.scheduler.pause()
            await self._drain(settings.grace_period)
            self.scheduler.shutdown(wait=False)
        await metrics.aclose()
        self.store.daemon_stopped(self.pid, _now())
        self.store.close()
        log.info("stopped")
        return 0

    def _another_daemon_runs(self, fresh: float) -> bool:
        """Two daemons on one database would check every target twice: the second one
        refuses to start while the first one's heartbeat is fresh and its process lives (a
        daemon killed outright leaves a fresh heartbeat that must not block its restart)."""
        state = self.store.daemon_state()
        if state is None:
            return False
        pid, beat, stopped = state
        age = (_now() - beat).total_seconds()
        if stopped is not None or pid == self.pid or age > fresh or not process_alive(pid):
            return False
        log.error("another daemon (pid %d) runs on %s: its heartbeat is %.0fs old; stop it "
                  "first, or if it is gone, start again after %.0fs", pid, self.db_path, age,
                  fresh - age)
        return True

    async def _serve_metrics(self, metrics: MetricsServer) -> bool:
        """Starts /healthz and /metrics when a port is set; False when it cannot listen."""
        settings = self.config.settings.daemon
        if not settings.metrics_port:
            return True
        try:
            await metrics.start(settings.metrics_host, settings.metrics_port)
        except OSError as error:
            log.error("settings.daemon.metrics_port %d on %s: %s; choose a free port or 0 to "
                      "turn the endpoints off", settings.metrics_port, settings.metrics_host,
                      error.strerror or error)
            return False
        log.info("serving /healthz and /metrics on http://%s:%d", settings.metrics_host,
                 settings.metrics_port)
        return True

    # -- jobs ----------------------------------------------------------------------------

    def _install(self, groups: dict[str, Group]) -> None:
        for key in set(self.groups) - set(groups):
            self._remove_job(key)
        for key, group in groups.items():
            if key not in self.groups:
                self.scheduler.add_job(
                    self._run_group, group.schedule.trigger(self.timezone,
                                                            self.config.settings.daemon.jitter),
                    args=[key], id=key, next_run_time=self._first_run(group),
                    coalesce=True, max_instances=1, misfire_grace_time=24 * 3600)
        self.groups = groups

    def _remove_job(self, key: str) -> None:
        for job_id in (key, f"retry-{key}"):
            if self.scheduler.get_job(job_id):
                self.scheduler.remove_job(job_id)

    def _first_run(self, group: Group) -> datetime:
        """Due from the last check in the database; overdue ones spread over a short window."""
        now = _now()
        lasts = [self.store.last_check(t.id) for t in group.targets]
        if all(lasts):
            planned = group.schedule.next_after(min(c.at for c in lasts), self.timezone)
            if planned > now:
                return planned
        window = self.config.settings.daemon.startup_window
        return now + timedelta(seconds=random.uniform(0, window))

    async def _run_group(self, key: str) -> None:
        group = self.groups.get(key)
        if group is None or self.stopping.is_set() or key in self.running:
            return
        task = asyncio.current_task()
        self.inflight.add(task)
        self.running.add(key)
        try:
            async with self.limit:
                if self.stopping.is_set():
                    return
                await self._polite(group.host)
                results = await run_checks(self.config, self.store, list(group.targets),
                                           self.fetchers)
            for target, result in zip(group.targets, results, strict=True):
                _log_check(result)
                self._follow_up(target, result)
            if any(r.status in FAILED for r in results):
                self._retry_later(group)
            if any(r.status == "changed" for r in results):
                self._write_feed()
            await self._deliver()
        finally:
            self.inflight.discard(task)
            self.running.discard(key)

    def _write_feed(self) -> None:
        """Keep the Atom feed at settings.feed_path current (for a web server to publish)."""
        path = self.config.settings.feed_path
        if path:
            target = Path(path) if Path(path).is_absolute() else self.config.path.parent / path
            temporary = target.with_suffix(target.suffix + ".tmp")
            temporary.write_text(atom_feed(self.config, self.store, list(self.config.targets)),
                                 encoding="utf-8")
            temporary.replace(target)

    async def _deliver(self) -> None:
        """Send what the outbox owes: alerts of a run, retries and digests that are due."""
        async with self.delivering:
            report = await asyncio.to_thread(_deliver_with_own_connection, self.config,
                                             self.db_path)
        for line in report.failed:
            log.warning("delivery failed: %s", line)

    async def _deliver_due(self) -> None:
        """Retries and digests leave when they are due, whether or not a check runs then."""
        if self.store.outbox(("pending",), due_before=_now()):
            await self._deliver()

    async def _polite(self, host: str) -> None:
        """Keep at least `host_delay` seconds between two fetches from one host."""
        delay = self.config.settings.daemon.host_delay
        ready = self.host_ready.get(host, 0.0)
        self.host_ready[host] = max(ready, time.monotonic()) + delay
        wait = ready - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def _retry_later(self, group: Group) -> None:
        failures = max(self.store.consecutive_failures(t.id) for t in group.targets)
        base = self.config.settings.daemon.retry_base
        delay = min(base * 2 ** max(0, failures - 1), group.schedule.period.total_seconds())
        self.scheduler.add_job(self._run_group, "date", args=[group.key],
                               run_date=_now() + timedelta(seconds=delay),
                               id=f"retry-{group.key}", replace_existing=True)

    def _follow_up(self, target: Target, result: CheckResult) -> None:
        """The failure policy: announce a broken target once, and its recovery once."""
        broken = self.store.broken_since(target.id)
        if result.status in FAILED:
            limit = self.config.settings.daemon.failures_before_broken
            if broken is None and self.store.consecutive_failures(target.id) >= limit:
                with self.store.transaction():
                    self.store.set_broken(target.id, result.at, result.reason)
                log.warning("needs attention: %s (%s)", target.id, result.reason)
                announce(self.config, self.store, target, "broken", result.reason or result.status)
        elif broken is not None:
            with self.store.transaction():
                self.store.set_broken(target.id, None, None)
            log.info("recovered: %s", target.id)
            announce(self.config, self.store, target, "recovered", None)

    async def _tick(self) -> None:
        self.store.beat(self.pid, _now())
        if self.watch_file and _mtime(self.config.path) != self.config_mtime:
            self.reload()

    # -- signals -------------------------------------------------------------------------

    def reload(self) -> None:
        self.config_mtime = _mtime(self.config.path)
        try:
            config = load_config(self.config.path)
        except ConfigError as error:
            log.error("reload rejected, keeping the previous configuration:\n%s", error)
            return
        _warn_restart_needed(self.config, config)
        self.config = config
        self.timezone = parse_timezone(config.settings.timezone)
        self._install(plan_groups(config))
        log.info("reloaded %s: %d targets in %d groups", config.path, len(config.targets),
                 len(self.groups))

    def _stop(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            log.info("%s received: finishing in-flight checks", sig.name)
        self.stopping.set()

    async def _drain(self, grace: float) -> None:
        pending = {t for t in self.inflight if not t.done()}
        if not pending:
            return
        done, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=5)
            log.warning("grace period over: %d check(s) abandoned, nothing recorded for them",
                        len(late))


def _warn_restart_needed(old: Config, new: Config) -> None:
    """Settings a running daemon cannot swap (its database, browser, limits, ports)."""
    fixed = {"settings.database": (old.database_path, new.database_path),
             "[settings.daemon]": (old.settings.daemon, new.settings.daemon),
             "[settings.browser]": (old.settings.browser, new.settings.browser)}
    changed = [name for name, (before, after) in fixed.items() if before != after]
    if changed:
        log.warning("reload: %s changed; restart the daemon to apply %s",
                    ", ".join(changed), "it" if len(changed) == 1 else "them")


def _deliver_with_own_connection(config: Config, db_path: Path) -> DeliveryReport:
    """Delivery runs in a worker thread, so it gets its own SQLite connection."""
    with Store(db_path) as store:
        return deliver_pending(config, store)


def _log_check(result: CheckResult) -> None:
    log.info("check", extra={"check": result})


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        result: CheckResult | None = getattr(record, "check", None)
        if result is None:
            return f"{stamp} {record.levelname.lower()} {record.getMessage()}"
        detail = f"v{result.version}" if result.version else (result.reason or "")
        return (f"{stamp} check {result.target} {result.status} {detail} "
                f"{result.duration_ms}ms fetcher={result.fetcher}").rstrip()


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                 "level": record.levelname.lower()}
        result: CheckResult | None = getattr(record, "check", None)
        if result is None:
            entry["message"] = record.getMessage()
        else:
            entry.update(event="check", target=result.target, status=result.status,
                         reason=result.reason, version=result.version,
                         duration_ms=result.duration_ms, fetcher=result.fetcher)
        return json.dumps(entry, ensure_ascii=False)


LIBRARY_LOGGERS = ("apscheduler", "asyncio")
"""Libraries whose warnings (a job still running at its next time, an unretrieved error)
belong in the daemon's log, in its format."""


def configure_logging(as_json: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter() if as_json else _PlainFormatter())
    for name, level in (("watcher", logging.INFO),
                        *((library, logging.WARNING) for library in LIBRARY_LOGGERS)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
