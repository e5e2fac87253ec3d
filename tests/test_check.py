"""`watcher check` end to end against a real local web server and a real SQLite file."""

import asyncio
import gzip
import json
import logging
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

from tests.conftest import corpus_dir, target_toml
from watcher.check import run_checks
from watcher.config import load_config
from watcher.fetch import FetchRequest, HttpFetcher
from watcher.models import Fetched
from watcher.store import SCHEMA_VERSION, Store

POLICY = """<html><head><title>Policy</title></head><body><nav>Home</nav><main>
<h1>Privacy Policy</h1><h2>1. Data</h2><p>We collect your e-mail address.</p>
<h2>2. Retention</h2><p>We keep logs for 30 days.</p></main></body></html>"""


def settings(**values):
    return "[settings]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def test_markup_only_change_records_no_version(project, site):
    url = site.set("/p", POLICY)
    project.write_config(target_toml("p", url))
    assert project.json("check")[0]["status"] == "new"
    site.set("/p", POLICY.replace("<main>", '<main class="v2" data-build="8f2a">')
             .replace("<p>We keep", "<p  id=x>We <span>keep</span>"))
    assert project.json("check")[0] == {"id": "p", "status": "unchanged", "reason": None,
                                        "version": None, "summary": None}
    assert len(project.json("history", "p")) == 1


def test_change_is_recorded_and_shown_clause_by_clause(project, site):
    url = site.set("/p", POLICY)
    project.write_config(target_toml("p", url))
    project.run("check")
    site.set("/p", POLICY.replace("30 days", "90 days")
             .replace("</main>", "<p>You may opt out at any time.</p></main>"))
    [result] = project.json("check")
    assert (result["status"], result["version"]) == ("changed", 2)
    assert result["summary"] == {"added": 1, "removed": 0, "modified": 1, "moved": 0}
    diff = project.json("diff", "p")
    assert (diff["from"], diff["to"]) == (1, 2)
    modified = [c for c in diff["changes"] if c["type"] == "modified"][0]
    assert modified["section"] == ["Privacy Policy", "2. Retention"]
    assert [(o["op"], o["text"]) for o in modified["inline"] if o["op"] != "equal"] == [
        ("delete", "30"), ("insert", "90")]
    history = project.json("history", "p")
    assert [h["version"] for h in history] == [1, 2]
    assert history[0]["summary"] is None and history[1]["summary"]["added"] == 1
    assert history[1]["recorded_at"].endswith("Z")


def test_failed_fetches_are_failed_checks_and_do_not_stop_other_targets(project, site):
    good = site.set("/good", POLICY)
    gone = site.set("/gone", "<h1>Server error</h1>", status=500)
    slow = site.set("/slow", POLICY, delay=3)
    project.write_config(settings(timeout=1) + target_toml("good", good)
                         + target_toml("gone", gone) + target_toml("slow", slow)
                         + target_toml("nosel", good, select=["#missing"]))
    result = project.run("check", "--json")
    assert result.exit_code == 1
    by_id = {r["id"]: r for r in json.loads(result.stdout)}
    assert by_id["good"]["status"] == "new"
    assert by_id["gone"]["status"] == "failed" and "HTTP 500" in by_id["gone"]["reason"]
    assert by_id["slow"]["status"] == "failed" and "timed out" in by_id["slow"]["reason"]
    assert "matched nothing" in by_id["nosel"]["reason"]
    listed = {t["id"]: t for t in project.json("list")}
    assert listed["gone"]["versions"] == 0
    assert listed["gone"]["last_check"]["status"] == "failed"


def test_targets_sharing_a_url_are_fetched_once(project, site):
    url = site.set("/terms", """<div id="terms"><p>Terms.</p></div>
                                <div id="privacy"><p>Privacy.</p></div>""")
    project.write_config(target_toml("terms", url, select=["#terms"])
                         + target_toml("privacy", url, select=["#privacy"]))
    assert [r["status"] for r in project.json("check")] == ["new", "new"]
    assert site.hits["/terms"] == 1
    assert project.run("show", "privacy").output == "Privacy.\n"


def test_redirects_charset_and_request_headers(project, site):
    site.set("/final", "<p>Données personnelles</p>".encode("latin-1"),
             content_type="text/html; charset=iso-8859-1")
    site.set("/start", b"", status=301, headers={"Location": "/final"})
    project.write_config(target_toml("fr", site.url("/start"), language="fr-FR"))
    assert project.json("check")[0]["status"] == "new"
    assert project.run("show", "fr").output == "Données personnelles\n"
    sent = site.request_headers["/final"]
    assert sent["Accept-Language"].startswith("fr-FR")
    assert "Mozilla/5.0" in sent["User-Agent"]


def test_meta_charset_is_honoured(project, site):
    body = '<meta charset="windows-1252"><p>“Quoted” text</p>'.encode("cp1252")
    site.set("/c", body, content_type="text/html")
    project.write_config(target_toml("c", site.url("/c")))
    project.run("check")
    assert project.run("show", "c").output == "“Quoted” text\n"


def test_undeclared_legacy_charset_is_detected(project, site):
    text = ("Vos données personnelles sont conservées pendant la durée nécessaire à la "
            "finalité du traitement, puis supprimées ou anonymisées.")
    site.set("/c", f"<html><body><p>{text}</p></body></html>".encode("cp1252"),
             content_type="text/html")
    project.write_config(target_toml("c", site.url("/c")))
    project.run("check")
    assert project.run("show", "c").output == text + "\n"


def test_unreachable_host_is_a_failed_check_that_says_so(project):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    project.write_config(target_toml("down", f"http://127.0.0.1:{port}/terms"))
    result = project.run("check", "--json")
    assert result.exit_code == 1
    [down] = json.loads(result.stdout)
    assert down["status"] == "failed"
    assert "network error" in down["reason"] and "refused" in down["reason"].lower()
    assert project.json("list")[0]["versions"] == 0


def test_size_cap_fails_the_check(project, site):
    url = site.set("/big", "<p>" + "x" * 50_000 + "</p>")
    project.write_config(settings(max_bytes=10_000) + target_toml("big", url))
    [result] = project.json("check")
    assert result["status"] == "failed" and "cap" in result["reason"]


def test_raw_snapshots_are_kept_only_for_versions_and_the_latest(project, site):
    url = site.set("/p", POLICY)
    project.write_config(target_toml("p", url))
    project.run("check")
    for n in range(3):
        site.set("/p", POLICY.replace("<main>", f'<main data-n="{n}">'))
        project.run("check")
    with Store(project.db) as store:
        count = store.db.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    assert count == 2  # the one version 1 was made from, and the latest


def test_keep_raw_all_keeps_every_distinct_snapshot(project, site):
    url = site.set("/p", POLICY)
    project.write_config(settings(keep_raw="all") + target_toml("p", url))
    for n in range(3):
        site.set("/p", POLICY.replace("<main>", f'<main data-n="{n}">'))
        project.run("check")
    project.run("check")
    with Store(project.db) as store:
        assert store.db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 3


def test_unknown_target_and_bad_version_are_usage_errors(project, site):
    project.write_config(target_toml("p", site.set("/p", POLICY)))
    assert project.run("check", "nope").exit_code == 2
    project.run("check")
    assert project.run("diff", "p", "--to", "7").exit_code == 2


def test_show_of_a_missing_version_is_a_usage_error_like_diff(project, site):
    project.write_config(target_toml("p", site.set("/p", POLICY)))
    assert project.run("show", "p").exit_code == 1  # nothing recorded yet: no usage problem
    project.run("check")
    result = project.run("show", "p", "--version", "9")
    assert result.exit_code == 2 and "has no version 9" in result.output


def test_ingest_reports_each_file_with_the_version_it_made(project, tmp_path):
    project.write_config(target_toml("p", "https://example.com/p"))
    early, late = tmp_path / "early.html", tmp_path / "late.html.gz"
    early.write_text(POLICY)
    late.write_bytes(gzip.compress(POLICY.replace("30 days", "90 days").encode()))
    result = project.run("ingest", "p", str(late), str(early), "--fetched-at", "2025-03-01",
                         "--fetched-at", "2025-01-01", "--json")
    assert result.exit_code == 0, result.output
    by_file = {Path(row["file"]).name: row for row in json.loads(result.stdout)}
    assert (by_file["early.html"]["status"], by_file["early.html"]["version"]) == ("new", 1)
    assert (by_file["late.html.gz"]["status"], by_file["late.html.gz"]["version"]) == \
        ("changed", 2)
    assert "30 days" in project.run("show", "p", "--version", "1").output


def test_ingest_of_a_broken_gz_file_says_so_and_records_nothing(project, tmp_path):
    project.write_config(target_toml("p", "https://example.com/p"))
    good, broken = tmp_path / "good.html", tmp_path / "broken.html.gz"
    good.write_text(POLICY)
    broken.write_bytes(b"<html>not gzip</html>")
    result = project.run("ingest", "p", str(good), str(broken))
    assert result.exit_code == 2
    assert "broken.html.gz: not a readable .gz file" in result.output
    assert project.json("history", "p") == []


def test_ingest_of_the_mistral_pair_reports_exactly_the_two_opt_out_clauses(project):
    corpus = corpus_dir("mistral-privacy-2025-02-13")
    manifest = json.loads((corpus / "manifest.json").read_text())
    project.write_config(target_toml("mistral-privacy", manifest["url"], service="Mistral AI",
                                     select=["#privacy-policy"]).replace(
        'service = "Example"\n', ""))
    files = [str(corpus / s["file"]) for s in manifest["snapshots"]]
    times = [arg for s in manifest["snapshots"] for arg in ("--fetched-at", s["fetched_at"])]
    result = project.run("ingest", "mistral-privacy", *files, *times)
    assert result.exit_code == 0, result.output
    history = project.json("history", "mistral-privacy")
    assert [h["recorded_at"] for h in history] == ["2025-02-12T12:32:25Z", "2025-02-13T00:32:51Z"]
    diff = project.json("diff", "mistral-privacy")
    assert [c["type"] for c in diff["changes"]] == ["modified", "modified"]
    assert [c["section"][-1] for c in diff["changes"]] == [
        "3.4.2. Input and Output provided on La Plateforme", "3.4.3. Le Chat"]
    for change in diff["changes"]:
        inserted = [o["text"] for o in change["inline"] if o["op"] == "insert"]
        assert len(inserted) == 1 and not [o for o in change["inline"] if o["op"] == "delete"]
        assert inserted[0].strip().startswith(
            "For clarity and as set out in Section 8 (Your rights), you have the right to "
            "object to this processing (opt-out)")
    assert diff["significance"] == "high"
    assert {"opt-out", "ai-training"} <= set(diff["topics"])
    html = project.run("diff", "mistral-privacy", "--format", "html").output
    assert "<ins" in html and "opt-out" in html


def test_html_diff_escapes_page_content(project, site):
    url = site.set("/p", "<p>Plain clause about data.</p>")
    project.write_config(target_toml("p", url))
    project.run("check")
    site.set("/p", "<p>Plain clause about data &lt;script&gt;alert(1)&lt;/script&gt;.</p>")
    project.run("check")
    html = project.run("diff", "p", "--format", "html").output
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_process_killed_mid_check_leaves_a_consistent_database(project, site):
    """SIGKILL at many points of a run of checks: the file stays consistent, versions whole."""
    pages = {}
    for n in range(12):
        pages[n] = site.set(f"/p{n}", POLICY.replace("30 days", f"{n} days"), delay=0.05)
    project.write_config(settings(concurrency=4) + "".join(
        target_toml(f"t{n}", url) for n, url in pages.items()))
    for round_ in range(8):
        for n in pages:
            site.set(f"/p{n}", POLICY.replace("30 days", f"{n + round_ * 100} days"),
                     delay=0.05)
        process = project.spawn("check")
        time.sleep(0.25 + 0.07 * round_)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with Store(project.db) as store:
            assert store.integrity_problems() == []
            for target_id in store.target_ids():
                versions = store.versions(target_id)
                for version in versions:
                    assert store.version(target_id, version.number).clauses
    final = project.spawn("check")
    assert final.wait(timeout=60) == 0
    with sqlite3.connect(project.db) as conn:
        assert conn.execute("SELECT count(DISTINCT target_id) FROM versions").fetchone()[0] == 12


def test_diff_across_several_versions_is_ranked_too(project, site):
    url = site.set("/p", POLICY)
    project.write_config(target_toml("p", url))
    project.run("check")
    site.set("/p", POLICY.replace("30 days", "90 days"))
    project.run("check")
    site.set("/p", POLICY.replace("30 days", "90 days").replace("e-mail", "postal"))
    project.run("check")
    diff = project.json("diff", "p", "--from", "1", "--to", "3")
    assert diff["summary"]["modified"] == 2
    assert diff["significance"] == "high" and "retention" in diff["topics"]


def test_a_database_from_an_older_release_is_upgraded_in_place(project, site):
    first = "<main><h2>A</h2><p>One.</p><p>Two.</p><h2>B</h2><p>Three.</p></main>"
    url = site.set("/p", first)
    project.write_config(target_toml("p", url))
    project.run("check")
    with sqlite3.connect(project.db) as conn:  # what a database of schema 4 looked like
        conn.execute("ALTER TABLE changes DROP COLUMN from_section")
        conn.execute("ALTER TABLE outbox DROP COLUMN claimed_by")
        conn.execute("ALTER TABLE outbox DROP COLUMN claimed_until")
        conn.execute("DROP TABLE check_counts")
        conn.execute("PRAGMA user_version = 4")
    site.set("/p", "<main><h2>A</h2><p>One.</p><h2>B</h2><p>Three.</p><p>Two.</p></main>")
    assert project.json("check")[0]["status"] == "changed"
    assert [v["version"] for v in project.json("history", "p")] == [1, 2]
    assert "MOVED (medium)  A → B\n  Two." in project.run("diff", "p").output
    with Store(project.db) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.counters().checks == (("p", "changed", 1), ("p", "new", 1))


def test_a_database_from_a_newer_release_is_refused_untouched(project, site):
    project.write_config(target_toml("p", site.set("/p", POLICY)))
    project.run("check")
    with sqlite3.connect(project.db) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = project.db.read_bytes()
    result = project.run("list")
    assert result.exit_code != 0
    assert "newer than this policy-watcher" in result.output and "upgrade" in result.output
    assert project.db.read_bytes() == before


def test_headers_that_cannot_be_sent_fail_the_fetch_naming_the_header(site):
    """Config rejects non-ASCII values, but a fetch is made from a FetchRequest too."""
    url = site.set("/p", POLICY)

    async def fetch(request: FetchRequest) -> Fetched:
        http = HttpFetcher()
        try:
            return await http.fetch(request)
        finally:
            await http.aclose()

    assert asyncio.run(fetch(FetchRequest(url, user_agent="Société"))).error == \
        "header 'User-Agent': value must be ASCII (percent-encode it); the request was not sent"
    assert asyncio.run(fetch(FetchRequest(url, headers=(("X-Team", "Société"),)))).error == \
        "header 'X-Team': value must be ASCII (percent-encode it); the request was not sent"
    assert "/p" not in site.hits


def test_a_header_value_http_cannot_carry_is_refused_on_load_without_its_secret(project,
                                                                             site,
                                                                             monkeypatch):
    monkeypatch.setenv("API_TOKEN", "sk-live-SECRET123 ")
    project.write_config(target_toml("api", site.set("/p", POLICY))
                         + 'headers = {Authorization = "Bearer ${API_TOKEN}"}\n')
    result = project.run("check")
    assert result.exit_code == 2
    assert "header 'Authorization': value must not start or end with a space" in result.output
    assert "SECRET123" not in result.output
    assert "/p" not in site.hits


def test_a_redirect_to_an_invalid_url_is_a_failed_check_that_says_so(project, site):
    moved = site.set("/moved", b"", status=302, headers={"Location": "http://127.0.0.1:99999/"})
    project.write_config(target_toml("moved", moved) + target_toml("good", site.set("/p", POLICY)))
    by_id = {row["id"]: row for row in project.json("check")}
    assert by_id["moved"]["status"] == "failed"
    assert by_id["moved"]["reason"] == ("redirect to an invalid URL (port 99999 is out of "
                                        "range): http://127.0.0.1:99999/")
    assert by_id["good"]["status"] == "new"


def test_a_meta_charset_that_cannot_decode_html_falls_back_to_detection(project, site, caplog):
    body = '<meta charset="idna"><main><p>Données personnelles</p></main>'.encode()
    url = site.set("/c", body, content_type="text/html")
    project.write_config(target_toml("c", url))
    assert project.json("check")[0]["status"] == "new"
    assert project.run("show", "c").output == "Données personnelles\n"
    assert f"{url} declares charset 'idna', which cannot decode HTML; read as utf-8" in \
        caplog.messages


class Dribble:
    """A raw HTTP server that sends a page's headers at once, then 10 bytes every `every` s."""

    def __init__(self, body: bytes, every: float):
        self.body, self.every = body, every
        self.sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def _serve(self) -> None:
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    f"Content-Length: {len(self.body)}\r\n\r\n")
            try:
                conn.sendall(head.encode())
                for start in range(0, len(self.body), 10):
                    time.sleep(self.every)
                    conn.sendall(self.body[start:start + 10])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def test_timeout_bounds_the_whole_fetch_not_each_read(project):
    slow = Dribble(b"<main><p>Every read is quick, the whole page is not.</p></main>", 0.5)
    project.write_config(settings(timeout=1) + target_toml("slow", slow.url))
    started = time.monotonic()
    try:
        [result] = project.json("check")
    finally:
        slow.close()
    assert result["status"] == "failed"
    assert result["reason"] == "timed out: the server did not send the whole page within 1s"
    assert time.monotonic() - started < 2.5


class BrokenFetcher:
    """A fetcher plug-in with a bug (any object with `fetch` and `aclose` is a fetcher, as
    urlwatch's jobs are): every fetch raises. No input to the project's own fetchers is
    known to make them raise any more; this is the pipeline's guard against the next one."""

    name = "browser"

    async def fetch(self, request: FetchRequest) -> Fetched:
        raise RuntimeError(f"bug while fetching {request.url}")

    async def aclose(self) -> None:
        pass


def test_a_bug_in_a_fetcher_fails_only_its_target_and_is_logged(project, site, caplog):
    buggy = site.url("/q")
    project.write_config(target_toml("buggy", buggy, fetcher="browser")
                         + target_toml("good", site.set("/p", POLICY)))
    config = load_config(project.config)

    async def check(store: Store) -> list:
        http = HttpFetcher()
        try:
            return await run_checks(config, store, config.targets,
                                    {"http": http, "browser": BrokenFetcher()})
        finally:
            await http.aclose()

    with Store(config.database_path) as store:
        by_id = {result.target: result for result in asyncio.run(check(store))}
    assert by_id["buggy"].status == "failed"
    assert by_id["buggy"].reason == (f"internal error: RuntimeError: bug while fetching {buggy} "
                                     f"(fetching {buggy} (browser)), please report")
    assert by_id["good"].status == "new"
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged.exc_info and logged.exc_info[0] is RuntimeError
    listed = {row["id"]: row for row in project.json("list")}
    assert listed["buggy"]["last_check"]["reason"] == by_id["buggy"].reason
