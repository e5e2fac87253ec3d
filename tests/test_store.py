"""The SQLite file: reading never waits for a writer, and a failed write says what failed."""

import json
import sqlite3
import time

import pytest

from tests.conftest import target_toml
from watcher.store import Store

POLICY = "<main><h2>Data</h2><p>We keep logs for 30 days.</p></main>"


def test_reading_commands_do_not_wait_for_another_process_writing(project, site):
    project.write_config(target_toml("p", site.set("/p", POLICY)))
    project.run("check")
    writer = sqlite3.connect(project.db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    try:
        started = time.monotonic()
        listed = project.json("list")
        history = project.json("history", "p")
        elapsed = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert [row["versions"] for row in listed] == [1] and len(history) == 1
    assert elapsed < 5, f"reading waited {elapsed:.0f}s for the writer"


def test_a_full_disk_is_reported_as_such_and_keeps_what_was_recorded(tmp_path):
    with Store(tmp_path / "watcher.db") as store:
        store.upsert_target("p", "Example", "Terms", "https://example.com")
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(sqlite3.OperationalError, match="full"), store.transaction():
            store.db.execute("CREATE TABLE filler (blob BLOB)")
            store.db.execute("INSERT INTO filler VALUES (?)", [b"x" * 200_000])
        assert store.db.execute("SELECT id FROM targets").fetchall() == [("p",)]


def test_an_older_reading_that_ends_last_is_not_recorded_as_a_change_back(project, site):
    """Two checks of one target overlap; the one that began first ends last."""
    v1 = POLICY
    v2 = POLICY.replace("30 days", "90 days")
    project.write_config(target_toml("p", site.set("/p", v1)))
    project.run("check")
    site.set("/p", v1, delay=2)
    slow = project.spawn("check", "--json")
    deadline = time.monotonic() + 10
    while site.hits["/p"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    site.set("/p", v2)
    assert project.json("check")[0]["status"] == "changed"
    out, _ = slow.communicate(timeout=20)
    [late] = json.loads(out)
    assert late["status"] == "unchanged"
    assert late["reason"].startswith("superseded: version 2 was read after this check began")
    assert [v["version"] for v in project.json("history", "p")] == [1, 2]
    assert "90 days" in project.run("show", "p").output
