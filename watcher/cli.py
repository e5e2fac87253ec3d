"""The `watcher` command line: a thin shell over config, the check pipeline and the store.

Exit codes: 0 when every check completed (changed or not), 1 when a check failed or another
runtime error happened, 2 for bad usage or an invalid configuration. Errors go to stderr,
one clear line first.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from watcher.check import open_fetchers, record_fetched, run_checks
from watcher.config import Config, ConfigError, Target, load_config
from watcher.diff import diff_clauses
from watcher.export import ExportError, atom_feed, export_git, export_json
from watcher.fetch import decode_html
from watcher.models import CheckResult, Diff, Fetched, Version, render_document
from watcher.notify import DeliveryReport, deliver_pending, send_test
from watcher.ota import DeclarationError, import_declarations
from watcher.render import diff_as_html, diff_as_json, diff_as_markdown, diff_as_text
from watcher.significance import assess
from watcher.store import Store, StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(click.ClickException):
    exit_code = EXIT_USAGE


class RuntimeFailure(click.ClickException):
    exit_code = EXIT_FAILED


@dataclass
class App:
    """What every command needs: the config file and the database, opened on demand."""

    config_path: Path
    db_override: Path | None
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as error:
                raise UsageError(f"invalid configuration\n{error}") from None
        return self._config

    def store(self) -> Store:
        path = self.db_override or self.config.database_path
        try:
            return Store(path)
        except StoreError as error:
            raise RuntimeFailure(str(error)) from None

    def target(self, target_id: str) -> Target:
        target = self.config.target(target_id)
        if target is None:
            known = ", ".join(t.id for t in self.config.targets) or "none"
            raise UsageError(f"no target {target_id!r} in {self.config_path} (targets: {known})")
        return target


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              envvar="WATCHER_CONFIG", default="targets.toml", show_default=True,
              help="Targets file (or $WATCHER_CONFIG).")
@click.option("--db", "db_path", type=click.Path(path_type=Path), envvar="WATCHER_DB",
              default=None, help="Database file (or $WATCHER_DB; default: settings.database, "
                                 "else snapshots/watcher.db next to the config).")
@click.version_option(package_name="policy-watcher")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, db_path: Path | None) -> None:
    """policy-watcher: watch terms and privacy policies, clause by clause."""
    ctx.obj = App(config_path=config_path, db_override=db_path)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _select_targets(app: App, ids: tuple[str, ...]) -> list[Target]:
    return [app.target(i) for i in ids] if ids else list(app.config.targets)


# -- check ---------------------------------------------------------------------------------

@cli.command()
@click.argument("ids", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-notify", is_flag=True, help="Queue alerts but do not send them now.")
@pass_app
def check(app: App, ids: tuple[str, ...], as_json: bool, no_notify: bool) -> None:
    """Fetch targets now, record what changed, report it, and send the alerts."""
    targets = _select_targets(app, ids)
    with app.store() as store:
        results = asyncio.run(_check(app.config, store, targets))
        if not no_notify:
            _report_delivery(deliver_pending(app.config, store))
    if as_json:
        _echo_json([_result_json(r) for r in results])
    else:
        for result in results:
            click.echo(_result_line(result))
    if any(r.status == "failed" for r in results):
        sys.exit(EXIT_FAILED)


def _report_delivery(report: DeliveryReport) -> None:
    for line in report.failed:
        click.echo(f"alert not delivered (will retry): {line}", err=True)


async def _check(config: Config, store: Store, targets: list[Target]) -> list[CheckResult]:
    async with open_fetchers(config) as fetchers:
        return await run_checks(config, store, targets, fetchers)


def _result_json(result: CheckResult) -> dict[str, Any]:
    summary = result.summary
    return {"id": result.target, "status": result.status, "reason": result.reason,
            "version": result.version, "summary": summary.as_dict() if summary else None}


def _result_line(result: CheckResult) -> str:
    colors = {"changed": "yellow", "new": "green", "failed": "red", "suspect": "magenta"}
    status = click.style(f"{result.status:<9}", fg=colors.get(result.status))
    detail = {
        "new": f"version {result.version} recorded",
        "changed": f"version {result.version}: "
                   f"{result.summary.describe() if result.summary else ''}"
                   + (f" — see: watcher diff {result.target}" if result.summary else ""),
        "unchanged": "no change",
    }.get(result.status, result.reason or "")
    return f"{result.target}  {status} {detail}"


# -- list / history ------------------------------------------------------------------------

@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def list_targets(app: App, as_json: bool) -> None:
    """Targets with their last check, status and last change."""
    with app.store() as store:
        states = {t.id: store.target_state(t.id) for t in app.config.targets}
    rows = []
    for target in app.config.targets:
        state = states[target.id]
        last = state.last_check
        rows.append({
            "id": target.id, "service": target.service, "document": target.document,
            "url": target.url, "fetcher": app.config.fetcher_of(target),
            "fetcher_used": state.fetcher_used or (last.fetcher if last else None),
            "versions": state.versions, "last_change_at": _iso(state.last_change_at),
            "unstable": state.unstable,
            "last_check": {"at": _iso(last.at), "status": last.status, "reason": last.reason}
            if last else None,
        })
    if as_json:
        _echo_json(rows)
        return
    table = Table("id", "service", "document", "fetcher", "versions", "last check", "status",
                  "last change", box=None)
    for row in rows:
        last = row["last_check"]
        fetcher = row["fetcher_used"] or row["fetcher"]
        if row["fetcher"] == "auto" and row["fetcher_used"]:
            fetcher = f"auto: {row['fetcher_used']}"
        cells = (row["id"], row["service"], row["document"], fetcher, str(row["versions"]),
                 (last["at"] or "")[:16] if last else "never",
                 ("UNSTABLE (alerts paused; see history) " if row["unstable"] else "")
                 + ((last["status"] + (f": {last['reason']}" if last["reason"] else ""))
                    if last else ""),
                 (row["last_change_at"] or "")[:16])
        table.add_row(*(Text(cell) for cell in cells))  # page text is not Rich markup
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@cli.command()
@click.argument("target_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def history(app: App, target_id: str, as_json: bool) -> None:
    """Versions of a target, oldest first, with a one-line summary of each change."""
    app.target(target_id)
    with app.store() as store:
        versions = store.versions(target_id)
    if as_json:
        _echo_json([_version_json(v) for v in versions])
        return
    if not versions:
        click.echo(f"{target_id}: no version recorded yet (run: watcher check {target_id})")
    for version in versions:
        what = version.summary.describe() if version.summary else "first version"
        if version.revert_of:
            what += f" (back to version {version.revert_of})"
        if version.significance:
            what += f" [{version.significance}{': ' if version.topics else ''}" \
                    f"{', '.join(version.topics)}]"
        click.echo(f"{version.number:>4}  {_iso(version.recorded_at)}  {what}")


def _version_json(version: Version) -> dict[str, Any]:
    return {"version": version.number, "recorded_at": _iso(version.recorded_at),
            "sha256": version.sha256,
            "summary": version.summary.as_dict() if version.summary else None,
            "significance": version.significance, "topics": list(version.topics),
            "revert_of": version.revert_of}


# -- diff / show ---------------------------------------------------------------------------

@cli.command("diff")
@click.argument("target_id", metavar="ID")
@click.option("--from", "from_number", type=int, help="Older version (default: the one before --to).")
@click.option("--to", "to_number", type=int, help="Newer version (default: the latest).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "html"]), default="text",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def diff_command(app: App, target_id: str, from_number: int | None, to_number: int | None,
                 fmt: str, as_json: bool) -> None:
    """What changed between two versions of a target (default: the last two)."""
    target = app.target(target_id)
    with app.store() as store:
        diff = load_diff(store, target_id, from_number, to_number, app.config.settings.lexicon)
    if as_json:
        _echo_json(diff_as_json(diff))
    elif fmt == "markdown":
        click.echo(diff_as_markdown(diff), nl=False)
    elif fmt == "html":
        click.echo(diff_as_html(diff, title=target.title), nl=False)
    else:
        click.echo(diff_as_text(diff, color=sys.stdout.isatty()), nl=False)


def load_diff(store: Store, target_id: str, from_number: int | None,
              to_number: int | None, lexicon: dict[str, tuple[str, ...]]) -> Diff:
    count = store.version_count(target_id)
    to_number = to_number or count
    from_number = from_number or to_number - 1
    if count < 2 and not (from_number and to_number):
        raise RuntimeFailure(f"{target_id} has {count} version(s); a diff needs two "
                             f"(see: watcher history {target_id})")
    for number in (from_number, to_number):
        if not 1 <= number <= count:
            raise UsageError(f"{target_id} has no version {number} (versions 1..{count})")
    if to_number == from_number + 1:
        return store.stored_diff(target_id, to_number)
    older, newer = store.version(target_id, from_number), store.version(target_id, to_number)
    changes, significance, topics = assess(diff_clauses(older.clauses, newer.clauses), lexicon)
    return Diff(target=target_id, from_version=from_number, to_version=to_number,
                changes=tuple(changes), significance=significance, topics=topics)


@cli.command()
@click.argument("target_id", metavar="ID")
@click.option("--version", "number", type=int, help="Version number (default: the latest).")
@click.option("--screenshot", "screenshot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the version's screenshot (PNG) to this file instead.")
@pass_app
def show(app: App, target_id: str, number: int | None, screenshot_path: Path | None) -> None:
    """Print the normalized document of a version."""
    app.target(target_id)
    with app.store() as store:
        version = store.version(target_id, number)
        shot = store.screenshot(target_id, number) if screenshot_path and version else None
    if version is None:
        missing = UsageError if number else RuntimeFailure  # as in `diff`: a bad number is usage
        raise missing(f"{target_id} has no version {number or ''}".rstrip()
                      + f" (see: watcher history {target_id})")
    if screenshot_path:
        _write_screenshot(target_id, version.number, shot, screenshot_path)
        return
    click.echo(render_document(version.clauses), nl=False)


def _write_screenshot(target_id: str, number: int, shot: bytes | None, path: Path) -> None:
    if shot is None:
        raise RuntimeFailure(f"{target_id} version {number} has no screenshot (set "
                             "screenshot = true and fetcher = \"browser\" on the target)")
    path.write_bytes(shot)
    click.echo(f"{path}: screenshot of {target_id} version {number} ({len(shot):,} bytes)")


# -- ingest / validate ---------------------------------------------------------------------

@cli.command()
@click.argument("target_id", metavar="ID")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                  path_type=Path))
@click.option("--fetched-at", "fetched_at", multiple=True, type=click.DateTime(
    ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    help="Fetch time of each FILE, in order (default: each file's modification time).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--notify", "notify", is_flag=True, help="Send alerts for the changes found.")
@pass_app
def ingest(app: App, target_id: str, files: tuple[Path, ...], fetched_at: tuple[datetime, ...],
           as_json: bool, notify: bool) -> None:
    """Record archived raw snapshots (HTML, .html.gz) as if fetched at their times."""
    target = app.target(target_id)
    if fetched_at and len(fetched_at) != len(files):
        raise UsageError(f"--fetched-at given {len(fetched_at)} time(s) for {len(files)} file(s)")
    times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in fetched_at] or [
        datetime.fromtimestamp(f.stat().st_mtime, UTC) for f in files]
    snapshots = sorted(((at, path, _read_archived(path, target))
                        for at, path in zip(times, files, strict=True)), key=lambda row: row[0])
    recorded: list[tuple[Path, CheckResult]] = []
    with app.store() as store:
        for at, path, fetched in snapshots:
            recorded.append((path, record_fetched(app.config, store, target, fetched, at,
                                                  alerts=notify)))
        if notify:
            _report_delivery(deliver_pending(app.config, store))
    if as_json:
        _echo_json([{**_result_json(result), "file": str(path)} for path, result in recorded])
    else:
        for path, result in recorded:
            click.echo(f"{_iso(result.at)}  {_result_line(result)}  ({path.name})")
    if any(result.status == "failed" for _, result in recorded):
        sys.exit(EXIT_FAILED)


def _read_archived(path: Path, target: Target) -> Fetched:
    content = path.read_bytes()
    if path.suffix == ".gz":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as error:
            raise UsageError(f"{path}: not a readable .gz file ({error}); nothing was "
                             "recorded") from error
    is_pdf = content.startswith(b"%PDF-")
    return Fetched(url=target.url, final_url=target.url, status=None, content=content,
                   content_type="application/pdf" if is_pdf else "text/html",
                   text="" if is_pdf else decode_html(content), fetcher="file")


@cli.command()
@pass_app
def validate(app: App) -> None:
    """Check the configuration file and say what is wrong."""
    config = app.config
    click.echo(f"{config.path}: {len(config.targets)} target(s), {len(config.routes)} route(s): OK")


# -- import --------------------------------------------------------------------------------

@cli.group("import")
def import_group() -> None:
    """Import watch lists from other tools."""


@import_group.command("ota")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", type=click.Path(path_type=Path),
              help="Write the targets to this file (default: stdout).")
def import_ota(files: tuple[Path, ...], output: Path | None) -> None:
    """Convert Open Terms Archive declarations (JSON) into [[targets]] entries."""
    try:
        result = import_declarations(list(files))
    except DeclarationError as error:
        raise UsageError(str(error)) from None
    for note in result.unsupported:
        click.echo(f"not imported: {note}", err=True)
    if output:
        output.write_text(result.toml, encoding="utf-8")
        click.echo(f"{output}: {result.targets} target(s)", err=True)
    else:
        click.echo(result.toml, nl=False)


# -- exports -------------------------------------------------------------------------------

@cli.command()
@click.argument("target_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["git", "json"]), default="json",
              show_default=True)
@click.option("--output", type=click.Path(path_type=Path),
              help="Directory of the git repository (required for --format git).")
@pass_app
def export(app: App, target_id: str, fmt: str, output: Path | None) -> None:
    """Export a target's history: a git repository (one commit per version) or JSON."""
    target = app.target(target_id)
    with app.store() as store:
        if fmt == "json":
            _echo_json(export_json(store, target))
            return
        if output is None:
            raise UsageError("--format git needs --output DIR (a new, empty directory)")
        try:
            count = export_git(store, target, output)
        except ExportError as error:
            raise RuntimeFailure(str(error)) from None
    click.echo(f"{output}: {count} commit(s), one per version of {target_id}")


@cli.command()
@click.argument("ids", nargs=-1)
@click.option("--output", type=click.Path(path_type=Path), help="Write to a file instead.")
@pass_app
def feed(app: App, ids: tuple[str, ...], output: Path | None) -> None:
    """Print an Atom feed of the changes of targets (default: all)."""
    with app.store() as store:
        xml = atom_feed(app.config, store, _select_targets(app, ids))
    if output:
        output.write_text(xml, encoding="utf-8")
    else:
        click.echo(xml, nl=False)


# -- notifications -------------------------------------------------------------------------

@cli.group("notify")
def notify_group() -> None:
    """Notification routes."""


@notify_group.command("test")
@click.argument("route_names", nargs=-1, metavar="[ROUTE]...")
@pass_app
def notify_test(app: App, route_names: tuple[str, ...]) -> None:
    """Send a sample alert to routes (default: every route)."""
    routes = app.config.routes
    unknown = [n for n in route_names if n not in routes]
    if unknown or not routes:
        raise UsageError(f"no route {', '.join(unknown)!s} in {app.config_path} "
                         f"(routes: {', '.join(routes) or 'none; add [notify.NAME]'})")
    failures = []
    for name in route_names or tuple(routes):
        problems = send_test(app.config, routes[name])
        failures += [f"{name}: {p}" for p in problems]
        click.echo(f"{name}: {'FAILED' if problems else 'sent'}")
    if failures:
        raise RuntimeFailure("; ".join(failures))


@cli.group("outbox", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def outbox(ctx: click.Context, as_json: bool) -> None:
    """Alerts owed to routes: pending, sent or failed."""
    if ctx.invoked_subcommand is not None:
        return
    app: App = ctx.obj
    with app.store() as store:
        rows = store.outbox()
    entries = [{"id": d.id, "route": d.route, "target": d.target, "version": d.version,
                "status": d.status, "attempts": d.attempts, "last_error": d.last_error}
               for d in rows]
    if as_json:
        _echo_json(entries)
        return
    for d in rows:
        due = f"  due {d.due_at:%Y-%m-%d %H:%M %Z}" if d.status == "pending" else ""
        click.echo(f"{d.id:>5}  {d.status:<8} {d.route:<12} {d.target} "
                   f"v{d.version or '-'}  attempts={d.attempts}{due}"
                   + (f"  error: {d.last_error}" if d.last_error else ""))


@outbox.command("retry")
@pass_app
def outbox_retry(app: App) -> None:
    """Attempt every pending (and failed) alert now."""
    with app.store() as store:
        report = deliver_pending(app.config, store, force=True)
    click.echo(f"{report.sent} sent, {len(report.failed)} failed")
    _report_delivery(report)
    if report.failed:
        sys.exit(EXIT_FAILED)


# -- daemon --------------------------------------------------------------------------------

@cli.command()
@click.option("--reload", "watch_file", is_flag=True,
              help="Re-read the targets file when it changes (SIGHUP always does).")
@click.option("--log-json", is_flag=True, help="One JSON object per log line.")
@pass_app
def run(app: App, watch_file: bool, log_json: bool) -> None:
    """Run the daemon: check every target on its schedule until SIGTERM."""
    from watcher.daemon import Daemon, configure_logging

    configure_logging(log_json)
    config = app.config
    app.store().close()
    daemon = Daemon(config, app.db_override or config.database_path, watch_file=watch_file)
    sys.exit(asyncio.run(daemon.run()))


@cli.command()
@click.option("--max-age", type=float, default=60.0, show_default=True,
              help="Seconds after which the daemon's heartbeat counts as stale.")
@pass_app
def health(app: App, max_age: float) -> None:
    """Exit 0 when the daemon runs and its scheduler ticked recently (Docker HEALTHCHECK)."""
    from watcher.daemon import process_alive
    with app.store() as store:
        state = store.daemon_state()
    if state is None:
        raise RuntimeFailure("unhealthy: no daemon has run on this database")
    pid, beat, stopped = state
    age = (datetime.now(UTC) - beat).total_seconds()
    if stopped is not None:
        raise RuntimeFailure(f"unhealthy: the daemon (pid {pid}) stopped at {_iso(stopped)}")
    if not process_alive(pid):
        raise RuntimeFailure(f"unhealthy: the daemon (pid {pid}) is not running")
    if age > max_age:
        raise RuntimeFailure(f"unhealthy: last scheduler tick {age:.0f}s ago (max {max_age:g}s)")
    click.echo(f"healthy: daemon pid {pid}, last tick {age:.0f}s ago")


def main() -> None:
    try:
        cli(prog_name="watcher", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_FAILED)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except (OSError, sqlite3.Error) as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_FAILED)
