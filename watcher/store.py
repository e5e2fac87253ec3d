"""Storage: the SQLite database of checks, raw snapshots, versions, clauses and changes.

The store owns the schema (versioned, migrated forward on open) and every read and write of
the database. Writes that belong together happen inside `transaction()`, which takes SQLite's
write lock up front (BEGIN IMMEDIATE), so one check is recorded whole or not at all, even
when a daemon and a CLI share the file or the process is killed half-way.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from watcher.models import (
    Change,
    CheckStatus,
    Clause,
    Diff,
    Fetched,
    InlineOp,
    Summary,
    Version,
)

__all__ = ["Delivery", "FetcherDecision", "Store", "StoredCheck", "TargetState", "SCHEMA_VERSION",
           "StoreError"]


class StoreError(Exception):
    """The database cannot be used (newer schema, not a database, unwritable)."""


@dataclass(frozen=True)
class StoredCheck:
    """One recorded check attempt."""

    target: str
    at: datetime
    status: CheckStatus
    reason: str | None
    http_status: int | None
    fetcher: str | None
    duration_ms: int
    version: int | None


@dataclass(frozen=True)
class TargetState:
    """What the database knows about a target, for `watcher list`."""

    id: str
    versions: int
    last_change_at: datetime | None
    last_check: StoredCheck | None
    fetcher_used: str | None
    unstable: bool = False


@dataclass(frozen=True)
class Delivery:
    """One outbox row: a message owed to one route."""

    id: int
    route: str
    target: str
    version: int | None
    kind: str
    title: str | None
    body: str | None
    status: str
    attempts: int
    delivered_urls: tuple[int | str, ...]
    """The destinations that accepted it: keys of their URLs (positions in older databases)."""
    last_error: str | None
    due_at: datetime
    """When it is (next) sent: at once, after a failure's backoff, or at its digest's time."""
    claimed_by: str | None = None
    """The sender sending it now (`host:pid:process:call`), until `claimed_until`."""
    claimed_until: datetime | None = None


@dataclass(frozen=True)
class Counters:
    """Running totals over the whole database, for `/metrics`."""

    checks: tuple[tuple[str, str, int], ...]
    """(target, status, number of checks)."""
    versions: tuple[tuple[str, int], ...]
    """(target, number of versions)."""
    notifications: tuple[tuple[str, int], ...]
    """(outbox status, number of messages)."""
    broken: int


@dataclass(frozen=True)
class FetcherDecision:
    """Which fetcher `auto` chose for a target, for which configuration, and when."""

    fetcher: str
    config_key: str
    at: datetime


def _migration_1(db: Database) -> None:
    db.executescript("""
    CREATE TABLE targets (
        id TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        document TEXT NOT NULL,
        url TEXT NOT NULL,
        fetcher_used TEXT
    );
    CREATE TABLE snapshots (
        sha256 TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        compressed BLOB NOT NULL,
        first_seen_at TEXT NOT NULL
    );
    CREATE TABLE versions (
        id INTEGER PRIMARY KEY,
        target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        recorded_at TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        snapshot_sha256 TEXT REFERENCES snapshots(sha256),
        clause_count INTEGER NOT NULL,
        summary TEXT,
        significance TEXT,
        topics TEXT,
        revert_of INTEGER,
        UNIQUE (target_id, number)
    );
    CREATE TABLE clauses (
        version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL,
        level INTEGER NOT NULL,
        section TEXT NOT NULL,
        text TEXT NOT NULL,
        key TEXT,
        PRIMARY KEY (version_id, position)
    );
    CREATE TABLE changes (
        version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        type TEXT NOT NULL,
        kind TEXT NOT NULL,
        section TEXT NOT NULL,
        before TEXT,
        after TEXT,
        inline TEXT,
        topics TEXT,
        significance TEXT,
        PRIMARY KEY (version_id, position)
    );
    CREATE TABLE checks (
        id INTEGER PRIMARY KEY,
        target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
        at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        http_status INTEGER,
        fetcher TEXT,
        snapshot_sha256 TEXT,
        version_id INTEGER REFERENCES versions(id)
    );
    CREATE INDEX checks_by_target ON checks (target_id, id);
    CREATE INDEX versions_by_snapshot ON versions (snapshot_sha256);
    CREATE INDEX checks_by_snapshot ON checks (snapshot_sha256);
    """)


def _migration_daemon(db: Database) -> None:
    db.executescript("""
    CREATE TABLE daemon (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        stopped_at TEXT
    );
    CREATE TABLE target_health (
        target_id TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
        broken_since TEXT,
        reason TEXT
    );
    """)


def _migration_outbox(db: Database) -> None:
    db.executescript("""
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        route TEXT NOT NULL,
        target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
        version INTEGER,
        kind TEXT NOT NULL,
        title TEXT,
        body TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_urls TEXT NOT NULL DEFAULT '[]',
        last_error TEXT,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX outbox_by_status ON outbox (status, next_attempt_at);
    """)



def _migration_fetching(db: Database) -> None:
    """Issue 3: the `auto` fetcher's persisted decision, and screenshots kept as evidence."""
    db.executescript("""
    ALTER TABLE targets ADD COLUMN fetcher_config TEXT;
    ALTER TABLE targets ADD COLUMN fetcher_decided_at TEXT;
    ALTER TABLE snapshots ADD COLUMN screenshot BLOB;
    """)


def _migration_moves(db: Database) -> None:
    """Where a moved clause came from, so a move between sections shows as one."""
    db.execute("ALTER TABLE changes ADD COLUMN from_section TEXT")


def _migration_outbox_claims(db: Database) -> None:
    """Who is sending an alert and until when, so two senders never send it both."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
    for column in ("claimed_by", "claimed_until"):
        if column not in columns:
            db.execute(f"ALTER TABLE outbox ADD COLUMN {column} TEXT")


def _migration_check_counts(db: Database) -> None:
    """Checks counted by target and status as they are added: /metrics reads these few rows
    instead of the whole check history, which grows for as long as the daemon runs."""
    db.execute("CREATE TABLE check_counts (target_id TEXT NOT NULL REFERENCES targets(id) "
               "ON DELETE CASCADE, status TEXT NOT NULL, count INTEGER NOT NULL, "
               "PRIMARY KEY (target_id, status)) WITHOUT ROWID")
    db.execute("INSERT INTO check_counts SELECT target_id, status, count(*) FROM checks "
               "GROUP BY target_id, status")


MIGRATIONS = [_migration_1, _migration_daemon, _migration_outbox, _migration_fetching,
              _migration_moves, _migration_outbox_claims, _migration_check_counts]
SCHEMA_VERSION = len(MIGRATIONS)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _advice(error: sqlite3.OperationalError) -> str:
    message = str(error).lower()
    if "locked" in message or "busy" in message:
        return "another process holds its write lock; try again when it is done"
    if "full" in message:
        return "the disk is full; free space, nothing recorded was lost"
    return "check the path's permissions and free space"


class Store:
    """A policy-watcher database file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            self.db = Database(conn)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.OperationalError as error:
            raise StoreError(f"{self.path}: cannot use the database ({error}); "
                             + _advice(error)) from error
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: not a usable policy-watcher database ({error})") \
                from error

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One atomic unit of writes; nested calls join the outer transaction."""
        conn = self.db.conn
        if conn.in_transaction:
            yield self
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        """Brings the schema up to date; a database already current is only read, so that
        reading commands never wait for another process's write lock."""
        if self._schema_is_current():
            return
        with self.transaction():
            current = self.db.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(current)
            for number in range(current, SCHEMA_VERSION):
                MIGRATIONS[number](self.db)
            if current != SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _schema_is_current(self) -> bool:
        current = self.db.execute("PRAGMA user_version").fetchone()[0]
        self._refuse_newer(current)
        return current == SCHEMA_VERSION

    def _refuse_newer(self, current: int) -> None:
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this policy-watcher "
                f"({SCHEMA_VERSION}); upgrade policy-watcher to read it")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # -- targets -------------------------------------------------------------------------

    def upsert_target(self, target_id: str, service: str, document: str, url: str) -> None:
        self.db.execute(
            "INSERT INTO targets (id, service, document, url) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET service=excluded.service, "
            "document=excluded.document, url=excluded.url",
            [target_id, service, document, url])

    def set_fetcher_used(self, target_id: str, fetcher: str) -> None:
        self.db.execute("UPDATE targets SET fetcher_used = ? WHERE id = ?", [fetcher, target_id])

    def fetcher_decision(self, target_id: str) -> FetcherDecision | None:
        """The `auto` fetcher's last decision for a target, if one was made."""
        row = self.db.execute("SELECT fetcher_used, fetcher_config, fetcher_decided_at FROM "
                              "targets WHERE id = ?", [target_id]).fetchone()
        if row is None or row[1] is None or row[2] is None:
            return None
        return FetcherDecision(fetcher=row[0], config_key=row[1], at=_parse_time(row[2]))

    def set_fetcher_decision(self, target_id: str, fetcher: str, config_key: str,
                             at: datetime) -> None:
        self.db.execute("UPDATE targets SET fetcher_used = ?, fetcher_config = ?, "
                        "fetcher_decided_at = ? WHERE id = ?",
                        [fetcher, config_key, _iso(at), target_id])

    def target_ids(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT id FROM targets ORDER BY id")]

    # -- snapshots -----------------------------------------------------------------------

    def save_snapshot(self, fetched: Fetched, at: datetime) -> str:
        sha = fetched.sha256
        self.db.execute(
            "INSERT OR IGNORE INTO snapshots (sha256, url, content_type, size, compressed, "
            "first_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
            [sha, fetched.final_url or fetched.url, fetched.content_type, len(fetched.content),
             zlib.compress(fetched.content, 6), _iso(at)])
        if fetched.screenshot:
            self.db.execute("UPDATE snapshots SET screenshot = ? WHERE sha256 = ?",
                            [zlib.compress(fetched.screenshot, 9), sha])
        return sha

    def screenshot(self, target_id: str, number: int | None = None) -> bytes | None:
        """The screenshot kept with a version's snapshot (default: the latest version)."""
        row = self._version_row(target_id, number)
        if row is None or row["snapshot_sha256"] is None:
            return None
        found = self.db.execute("SELECT screenshot FROM snapshots WHERE sha256 = ?",
                                [row["snapshot_sha256"]]).fetchone()
        return zlib.decompress(found[0]) if found and found[0] else None

    def snapshot(self, sha256: str) -> bytes | None:
        row = self.db.execute("SELECT compressed FROM snapshots WHERE sha256 = ?",
                              [sha256]).fetchone()
        return zlib.decompress(row[0]) if row else None

    def prune_snapshot(self, sha256: str) -> None:
        """Drop a raw snapshot no version was made from and no target has as its latest."""
        self.db.execute(
            """DELETE FROM snapshots WHERE sha256 = :sha
               AND NOT EXISTS (SELECT 1 FROM versions WHERE snapshot_sha256 = :sha)
               AND NOT EXISTS (SELECT 1 FROM checks c WHERE c.snapshot_sha256 = :sha
                   AND c.id = (SELECT max(id) FROM checks WHERE target_id = c.target_id
                               AND snapshot_sha256 IS NOT NULL))""",
            {"sha": sha256})

    def latest_snapshot_sha(self, target_id: str) -> str | None:
        row = self.db.execute(
            "SELECT snapshot_sha256 FROM checks WHERE target_id = ? AND snapshot_sha256 IS NOT "
            "NULL ORDER BY id DESC LIMIT 1", [target_id]).fetchone()
        return row[0] if row else None

    # -- versions ------------------------------------------------------------------------

    def add_version(self, target_id: str, recorded_at: datetime, sha256: str,
                    clauses: Sequence[Clause], changes: Sequence[Change] | None,
                    snapshot_sha256: str | None, significance: str | None = None,
                    topics: Sequence[str] = (), revert_of: int | None = None) -> int:
        """Record a new version (call inside a transaction); returns its number."""
        number = self.version_count(target_id) + 1
        summary = Summary.of(changes).as_dict() if changes is not None else None
        cursor = self.db.execute(
            "INSERT INTO versions (target_id, number, recorded_at, sha256, snapshot_sha256, "
            "clause_count, summary, significance, topics, revert_of) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [target_id, number, _iso(recorded_at), sha256, snapshot_sha256, len(clauses),
             json.dumps(summary) if summary else None, significance,
             json.dumps(list(topics)), revert_of])
        version_id = cursor.lastrowid
        self.db.conn.executemany(
            "INSERT INTO clauses (version_id, position, kind, level, section, text, key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(version_id, i, c.kind, c.level, json.dumps(list(c.section), ensure_ascii=False),
              c.text, c.key) for i, c in enumerate(clauses)])
        self.db.conn.executemany(
            "INSERT INTO changes (version_id, position, type, kind, section, before, after, "
            "inline, topics, significance, from_section) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(version_id, i, c.type, c.kind, json.dumps(list(c.section), ensure_ascii=False),
              c.before, c.after,
              json.dumps([[op.op, op.text] for op in c.inline], ensure_ascii=False)
              if c.inline else None,
              json.dumps(list(c.topics)), c.significance,
              json.dumps(list(c.from_section), ensure_ascii=False) if c.from_section else None)
             for i, c in enumerate(changes or ())])
        return number

    def recent_version_with_sha(self, target_id: str, sha256: str, window: int) -> int | None:
        """The number of one of the last `window` versions with this text, if any."""
        row = self.db.execute(
            "SELECT max(number) FROM versions WHERE target_id = ? AND sha256 = ? AND number > "
            "(SELECT count(*) FROM versions WHERE target_id = ?) - ?",
            [target_id, sha256, target_id, window]).fetchone()
        return row[0]

    def is_unstable(self, target_id: str, window: int = 6, reverts: int = 2) -> bool:
        """A target whose recent versions keep returning to earlier texts (A/B tests, flaps)."""
        row = self.db.execute(
            "SELECT count(revert_of) FROM (SELECT revert_of FROM versions WHERE target_id = ? "
            "ORDER BY number DESC LIMIT ?)", [target_id, window]).fetchone()
        return row[0] >= reverts

    def stored_diff(self, target_id: str, number: int) -> Diff | None:
        """The diff version `number` recorded against the one before it."""
        version = self.version(target_id, number, with_clauses=False)
        if version is None or number < 2:
            return None
        return Diff(target=target_id, from_version=number - 1, to_version=number,
                    changes=tuple(self.changes(target_id, number)),
                    significance=version.significance, topics=version.topics)

    def version_count(self, target_id: str) -> int:
        return self.db.execute("SELECT count(*) FROM versions WHERE target_id = ?",
                               [target_id]).fetchone()[0]

    def _version_row(self, target_id: str, number: int | None) -> sqlite3.Row | None:
        self.db.conn.row_factory = sqlite3.Row
        try:
            if number is None:
                return self.db.conn.execute(
                    "SELECT * FROM versions WHERE target_id = ? ORDER BY number DESC LIMIT 1",
                    [target_id]).fetchone()
            return self.db.conn.execute(
                "SELECT * FROM versions WHERE target_id = ? AND number = ?",
                [target_id, number]).fetchone()
        finally:
            self.db.conn.row_factory = None

    def version(self, target_id: str, number: int | None = None,
                with_clauses: bool = True) -> Version | None:
        """A version by number, or the latest one when number is None."""
        row = self._version_row(target_id, number)
        if row is None:
            return None
        clauses: tuple[Clause, ...] = ()
        if with_clauses:
            clauses = tuple(
                Clause(kind=kind, level=level, section=tuple(json.loads(section)), text=text,
                       key=key)
                for kind, level, section, text, key in self.db.execute(
                    "SELECT kind, level, section, text, key FROM clauses WHERE version_id = ? "
                    "ORDER BY position", [row["id"]]))
        return _version_from_row(row, clauses)

    def versions(self, target_id: str) -> list[Version]:
        """All versions of a target, oldest first, without their clauses."""
        self.db.conn.row_factory = sqlite3.Row
        try:
            rows = self.db.conn.execute(
                "SELECT * FROM versions WHERE target_id = ? ORDER BY number",
                [target_id]).fetchall()
        finally:
            self.db.conn.row_factory = None
        return [_version_from_row(row, ()) for row in rows]

    def changes(self, target_id: str, number: int) -> list[Change]:
        """The stored changes that version `number` made to the one before it."""
        rows = self.db.execute(
            "SELECT c.type, c.kind, c.section, c.before, c.after, c.inline, c.topics, "
            "c.significance, c.from_section FROM changes c "
            "JOIN versions ON versions.id = c.version_id "
            "WHERE versions.target_id = ? AND versions.number = ? ORDER BY c.position",
            [target_id, number]).fetchall()
        return [Change(type=t, kind=k, section=tuple(json.loads(s)), before=b, after=a,
                       inline=tuple(InlineOp(op, text) for op, text in json.loads(i or "[]")),
                       topics=tuple(json.loads(tp or "[]")), significance=sig,
                       from_section=tuple(json.loads(fs or "[]")))
                for t, k, s, b, a, i, tp, sig, fs in rows]

    # -- checks --------------------------------------------------------------------------

    def add_check(self, target_id: str, at: datetime, status: CheckStatus, reason: str | None,
                  http_status: int | None, fetcher: str | None, duration_ms: int,
                  snapshot_sha256: str | None, version_number: int | None) -> None:
        version_id = None
        if version_number is not None:
            version_id = self.db.execute(
                "SELECT id FROM versions WHERE target_id = ? AND number = ?",
                [target_id, version_number]).fetchone()[0]
        self.db.execute(
            "INSERT INTO checks (target_id, at, duration_ms, status, reason, http_status, "
            "fetcher, snapshot_sha256, version_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [target_id, _iso(at), duration_ms, status, reason, http_status, fetcher,
             snapshot_sha256, version_id])
        self.db.execute("INSERT INTO check_counts VALUES (?, ?, 1) ON CONFLICT(target_id, status)"
                        " DO UPDATE SET count = count + 1", [target_id, status])

    def last_check(self, target_id: str) -> StoredCheck | None:
        checks = self.recent_checks(target_id, 1)
        return checks[0] if checks else None

    def recent_checks(self, target_id: str, limit: int) -> list[StoredCheck]:
        """The latest checks of a target, newest first."""
        rows = self.db.execute(
            "SELECT c.at, c.status, c.reason, c.http_status, c.fetcher, c.duration_ms, v.number "
            "FROM checks c LEFT JOIN versions v ON v.id = c.version_id "
            "WHERE c.target_id = ? ORDER BY c.id DESC LIMIT ?", [target_id, limit]).fetchall()
        return [StoredCheck(target=target_id, at=_parse_time(at), status=status, reason=reason,
                            http_status=http, fetcher=fetcher, duration_ms=ms, version=number)
                for at, status, reason, http, fetcher, ms, number in rows]

    def target_state(self, target_id: str) -> TargetState:
        count, last = self.db.execute(
            "SELECT count(*), max(recorded_at) FROM versions WHERE target_id = ?",
            [target_id]).fetchone()
        row = self.db.execute("SELECT fetcher_used FROM targets WHERE id = ?",
                              [target_id]).fetchone()
        return TargetState(id=target_id, versions=count,
                           last_change_at=_parse_time(last) if last else None,
                           last_check=self.last_check(target_id),
                           fetcher_used=row[0] if row else None,
                           unstable=self.is_unstable(target_id))

    # -- daemon ------------------------------------------------------------------------

    def beat(self, pid: int, at: datetime, started: bool = False) -> None:
        """Record that the daemon (process `pid`) is alive and its scheduler ticking."""
        if started:
            self.db.execute(
                "INSERT INTO daemon (id, pid, started_at, heartbeat_at) VALUES (1, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET pid=excluded.pid, started_at=excluded.started_at,"
                " heartbeat_at=excluded.heartbeat_at, stopped_at=NULL",
                [pid, _iso(at), _iso(at)])
        else:
            self.db.execute("UPDATE daemon SET heartbeat_at = ? WHERE pid = ?", [_iso(at), pid])

    def daemon_stopped(self, pid: int, at: datetime) -> None:
        self.db.execute("UPDATE daemon SET stopped_at = ? WHERE pid = ?", [_iso(at), pid])

    def daemon_state(self) -> tuple[int, datetime, datetime | None] | None:
        """(pid, last heartbeat, stopped at) of the last daemon, if one ever ran."""
        row = self.db.execute("SELECT pid, heartbeat_at, stopped_at FROM daemon").fetchone()
        if row is None:
            return None
        return row[0], _parse_time(row[1]), _parse_time(row[2]) if row[2] else None

    def counters(self) -> Counters:
        def rows(sql: str) -> tuple[tuple, ...]:
            return tuple(tuple(row) for row in self.db.execute(sql).fetchall())

        return Counters(
            checks=rows("SELECT target_id, status, count FROM check_counts "
                        "ORDER BY target_id, status"),
            versions=rows("SELECT target_id, count(*) FROM versions GROUP BY target_id "
                          "ORDER BY target_id"),
            notifications=rows("SELECT status, count(*) FROM outbox GROUP BY status "
                               "ORDER BY status"),
            broken=self.db.execute("SELECT count(*) FROM target_health "
                                   "WHERE broken_since IS NOT NULL").fetchone()[0])

    def consecutive_failures(self, target_id: str, most: int = 100) -> int:
        """Failed checks since the target's last good one, counted up to `most` (enough for
        the failure policy and the retry backoff), newest first along the index."""
        statuses = self.db.execute(
            "SELECT status FROM checks WHERE target_id = ? ORDER BY id DESC LIMIT ?",
            [target_id, most]).fetchall()
        return next((n for n, (status,) in enumerate(statuses)
                     if status not in ("failed", "suspect")), len(statuses))

    def broken_since(self, target_id: str) -> datetime | None:
        row = self.db.execute("SELECT broken_since FROM target_health WHERE target_id = ?",
                              [target_id]).fetchone()
        return _parse_time(row[0]) if row and row[0] else None

    def set_broken(self, target_id: str, since: datetime | None, reason: str | None) -> None:
        self.db.execute(
            "INSERT INTO target_health (target_id, broken_since, reason) VALUES (?, ?, ?) "
            "ON CONFLICT(target_id) DO UPDATE SET broken_since=excluded.broken_since, "
            "reason=excluded.reason", [target_id, _iso(since) if since else None, reason])

    # -- outbox ------------------------------------------------------------------------

    def enqueue(self, route: str, target_id: str, version: int | None, kind: str, at: datetime,
                title: str | None = None, body: str | None = None,
                due: datetime | None = None) -> None:
        self.db.execute(
            "INSERT INTO outbox (route, target_id, version, kind, title, body, created_at, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [route, target_id, version, kind, title, body, _iso(at), _iso(due or at)])

    def outbox(self, statuses: Sequence[str] = ("pending", "sent", "failed"),
               due_before: datetime | None = None) -> list[Delivery]:
        marks = ", ".join("?" for _ in statuses)
        sql = f"status IN ({marks})"
        params: list = list(statuses)
        if due_before is not None:
            sql += " AND next_attempt_at <= ?"
            params.append(_iso(due_before))
        return self._deliveries(sql, params)

    def _deliveries(self, where: str, params: Sequence[object]) -> list[Delivery]:
        self.db.conn.row_factory = sqlite3.Row
        try:
            rows = self.db.conn.execute(f"SELECT * FROM outbox WHERE {where} ORDER BY id",
                                        params).fetchall()
        finally:
            self.db.conn.row_factory = None
        return [Delivery(id=r["id"], route=r["route"], target=r["target_id"],
                         version=r["version"], kind=r["kind"], title=r["title"], body=r["body"],
                         status=r["status"], attempts=r["attempts"],
                         delivered_urls=tuple(json.loads(r["delivered_urls"])),
                         last_error=r["last_error"],
                         due_at=_parse_time(r["next_attempt_at"]), claimed_by=r["claimed_by"],
                         claimed_until=_parse_time(r["claimed_until"])
                         if r["claimed_until"] else None) for r in rows]

    def claim(self, deliveries: Sequence[Delivery], claimant: str, now: datetime,
              until: datetime, due_before: datetime | None = None,
              stale: Sequence[str] = ()) -> list[Delivery]:
        """Claim pending rows for one sender until `until`, each in one atomic update that
        only succeeds when no other sender holds it: its claim expired, or its claimant is
        among `stale` (gone). Returns the rows claimed, as they are now."""
        won = []
        with self.transaction():
            for delivery in deliveries:
                cursor = self.db.execute(
                    "UPDATE outbox SET claimed_by = :me, claimed_until = :until "
                    "WHERE id = :id AND status = 'pending' "
                    "AND (:due IS NULL OR next_attempt_at <= :due) "
                    "AND (claimed_until IS NULL OR claimed_until < :now "
                    "OR claimed_by IN (SELECT value FROM json_each(:stale)))",
                    {"me": claimant, "until": _iso(until), "id": delivery.id,
                     "due": _iso(due_before) if due_before else None, "now": _iso(now),
                     "stale": json.dumps(list(stale))})
                if cursor.rowcount == 1:
                    won.append(delivery.id)
            return self._deliveries(f"id IN ({', '.join('?' for _ in won)})", won)

    def release(self, delivery_ids: Sequence[int], claimant: str) -> None:
        """Give up a claim without recording an attempt."""
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL "
                "WHERE id = ? AND claimed_by = ?", [(i, claimant) for i in delivery_ids])

    def record_attempt(self, delivery_id: int, at: datetime, delivered_urls: Sequence[int | str],
                       error: str | None, next_attempt_at: datetime | None,
                       give_up: bool, claimant: str | None = None) -> None:
        """Record one attempt; it ends `claimant`'s claim on the row."""
        status = "sent" if error is None else ("failed" if give_up else "pending")
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, delivered_urls = ?, last_error = ?, "
            "status = ?, next_attempt_at = coalesce(?, next_attempt_at), sent_at = ?, "
            "claimed_until = CASE WHEN claimed_by IS ? THEN NULL ELSE claimed_until END, "
            "claimed_by = CASE WHEN claimed_by IS ? THEN NULL ELSE claimed_by END "
            "WHERE id = ?",
            [json.dumps(sorted(delivered_urls, key=str)), error, status,
             _iso(next_attempt_at) if next_attempt_at else None,
             _iso(at) if error is None else None, claimant, claimant, delivery_id])

    def revive_failed(self) -> None:
        self.db.execute("UPDATE outbox SET status = 'pending' WHERE status = 'failed'")

    def integrity_problems(self) -> list[str]:
        """Consistency checks beyond SQLite's own: what a reader relies on."""
        problems = [row[0] for row in self.db.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key violation in {row[0]}"
                     for row in self.db.execute("PRAGMA foreign_key_check")]
        for target_id, count, top in self.db.execute(
                "SELECT target_id, count(*), max(number) FROM versions GROUP BY target_id"):
            if count != top:
                problems.append(f"{target_id}: version numbers are not contiguous")
        for (version_id,) in self.db.execute(
                "SELECT v.id FROM versions v WHERE v.clause_count != "
                "(SELECT count(*) FROM clauses WHERE version_id = v.id)"):
            problems.append(f"version row {version_id} is missing clauses")
        return problems


def _version_from_row(row: sqlite3.Row, clauses: tuple[Clause, ...]) -> Version:
    summary = json.loads(row["summary"]) if row["summary"] else None
    return Version(target=row["target_id"], number=row["number"],
                   recorded_at=_parse_time(row["recorded_at"]), sha256=row["sha256"],
                   clauses=clauses, summary=Summary(**summary) if summary else None,
                   significance=row["significance"],
                   topics=tuple(json.loads(row["topics"] or "[]")),
                   revert_of=row["revert_of"])
