"""`watcher run` as a real process: schedules, restarts, signals, failure policy, health."""

import json
import signal
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import target_toml
from tests.standins import Inbox, Stall, free_port, mail_route
from watcher.store import Store

PAGE = "<main><h1>Terms</h1><p>Be nice.</p></main>"
FAST = """[settings]
schedule = "every 1s"
[settings.daemon]
startup_window = 0.3
jitter = 0
host_delay = 0
heartbeat_interval = 0.3
grace_period = 6
retry_base = 0.3
failures_before_broken = 2
"""


class Daemon:
    """A running `watcher run` whose stderr is collected line by line."""

    def __init__(self, project, *args):
        self.project = project
        self.process = project.spawn("run", *args)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def signal(self, sig):
        self.process.send_signal(sig)

    def stop(self, timeout=15):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def log(self):
        return "\n".join(self.lines)


@pytest.fixture
def daemons():
    started = []

    def start(project, *args):
        daemon = Daemon(project, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()


def until(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def checks(project, target_id=None):
    if not project.db.exists():
        return 0
    with sqlite3.connect(project.db) as conn:
        try:
            if target_id is None:
                return conn.execute("SELECT count(*) FROM checks").fetchone()[0]
            return conn.execute("SELECT count(*) FROM checks WHERE target_id = ?",
                                [target_id]).fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_targets_are_checked_repeatedly_and_sigterm_exits_cleanly(project, site, daemons):
    project.write_config(FAST + target_toml("a", site.set("/a", PAGE))
                         + target_toml("b", site.set("/b", PAGE)))
    daemon = daemons(project)
    until(lambda: checks(project, "a") >= 3 and checks(project, "b") >= 3, what="3 checks each")
    assert daemon.stop() == 0
    assert "check a new" in daemon.log() and "check a unchanged" in daemon.log()


def test_sigterm_during_a_slow_fetch_finishes_it_within_the_grace_period(project, site, daemons):
    project.write_config(FAST + target_toml("slow", site.set("/slow", PAGE, delay=2)))
    daemon = daemons(project)
    until(lambda: site.hits.get("/slow"), what="the fetch to start")
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 6 + 2
    with Store(project.db) as store:
        assert store.integrity_problems() == []
        assert [c.status for c in store.recent_checks("slow", 10)] == ["new"]


def test_restart_does_not_recheck_targets_that_are_not_due(project, site, daemons):
    project.write_config(FAST.replace('schedule = "every 1s"', 'schedule = "every 1h"')
                         + target_toml("a", site.set("/a", PAGE)))
    first = daemons(project)
    until(lambda: checks(project, "a") == 1, what="the first check")
    assert first.stop() == 0
    second = daemons(project)
    until(lambda: "started" in second.log(), what="the daemon to start")
    time.sleep(1.5)
    assert checks(project, "a") == 1 and site.hits["/a"] == 1
    assert second.stop() == 0


def test_sighup_applies_an_added_target_and_rejects_a_broken_file(project, site, daemons):
    a = site.set("/a", PAGE)
    project.write_config(FAST + target_toml("a", a))
    daemon = daemons(project)
    until(lambda: checks(project, "a") >= 1, what="a's first check")
    project.write_config(FAST + target_toml("a", a) + target_toml("b", site.set("/b", PAGE)))
    daemon.signal(signal.SIGHUP)
    until(lambda: checks(project, "b") >= 1, what="the added target to be checked")

    project.write_config(FAST + target_toml("a", a) + "[[targets]]\nid = 'broken'\n")
    daemon.signal(signal.SIGHUP)
    until(lambda: "reload rejected" in daemon.log(), what="the rejection in the log")
    assert "targets[1].service" in daemon.log()
    before = checks(project, "b")
    until(lambda: checks(project, "b") > before + 1, what="the old schedule to go on")
    assert daemon.stop() == 0


def test_sighup_applies_a_new_default_schedule_and_names_settings_that_need_a_restart(
        project, site, daemons):
    hourly = FAST.replace('schedule = "every 1s"', 'schedule = "every 1h"')
    target = target_toml("a", site.set("/a", PAGE))
    project.write_config(hourly + target)
    daemon = daemons(project)
    until(lambda: checks(project, "a") == 1, what="the first check")
    project.write_config(FAST + "[settings.browser]\ntimeout = 9\n" + target)
    daemon.signal(signal.SIGHUP)
    until(lambda: checks(project, "a") >= 3, what="checks every second after the reload")
    assert "[settings.browser] changed; restart the daemon to apply it" in daemon.log()
    assert daemon.stop() == 0


def test_sigterm_starts_no_check_that_was_waiting_for_a_slot(project, site, daemons):
    one_at_a_time = FAST.replace("[settings.daemon]\n", "[settings.daemon]\nmax_concurrent = 1\n")
    project.write_config(one_at_a_time + target_toml("a", site.set("/a", PAGE, delay=2))
                         + target_toml("b", site.set("/b", PAGE, delay=2)))
    daemon = daemons(project)
    until(lambda: site.hits.get("/a") or site.hits.get("/b"), what="the first fetch")
    time.sleep(0.6)  # past the startup window: the other group is due and waits for the slot
    assert daemon.stop() == 0
    assert checks(project) == 1 and len(site.hits) == 1


def test_a_second_daemon_on_the_same_database_refuses_to_start(project, site, daemons):
    project.write_config(FAST + target_toml("a", site.set("/a", PAGE)))
    first = daemons(project)
    until(lambda: checks(project, "a") >= 1, what="the first daemon's check")
    second = daemons(project)
    assert second.process.wait(timeout=15) == 1
    assert f"another daemon (pid {first.process.pid}) runs on" in second.log()
    before = checks(project, "a")
    until(lambda: checks(project, "a") > before, what="the first daemon to go on")
    assert first.stop() == 0
    third = daemons(project)
    until(lambda: "started" in third.log(), what="a daemon after a clean stop")
    assert third.stop() == 0


def test_a_retry_never_runs_while_the_same_target_is_being_checked(project, site, daemons):
    project.write_config(FAST + target_toml("slow", site.set("/slow", "<h1>Down</h1>",
                                                            status=503, delay=1.5)))
    daemon = daemons(project)
    until(lambda: checks(project, "slow") >= 5, timeout=30, what="five failed checks")
    assert daemon.stop() == 0
    with sqlite3.connect(project.db) as conn:
        starts = [row[0] for row in conn.execute(
            "SELECT at FROM checks WHERE target_id = 'slow' ORDER BY at")]
    moments = [datetime.fromisoformat(at.replace("Z", "+00:00")) for at in starts]
    gaps = [(b - a).total_seconds() for a, b in zip(moments, moments[1:], strict=False)]
    assert min(gaps) >= 1.4, f"checks of one target overlapped: {gaps}"


def test_a_failing_target_is_announced_once_and_its_recovery_once(project, site, daemons):
    url = site.set("/flaky", "<h1>Down</h1>", status=503)
    route = f"""[notify.ops]\nurls = ["json://127.0.0.1:{site.server.server_address[1]}/hook"]
default = true\n"""
    project.write_config(FAST + route + target_toml("flaky", url))
    daemon = daemons(project)
    until(lambda: len(site.posts) >= 1, what="the needs-attention notice")
    until(lambda: checks(project, "flaky") >= 5, what="more failed checks")
    assert len(site.posts) == 1
    notice = json.loads(site.posts[0][1])
    assert "needs attention" in notice["title"] and "HTTP 503" in notice["message"]
    site.set("/flaky", PAGE)
    until(lambda: len(site.posts) == 2, what="the recovery notice")
    recovered = checks(project, "flaky")
    until(lambda: checks(project, "flaky") >= recovered + 2, what="more good checks")
    assert len(site.posts) == 2
    assert "work again" in json.loads(site.posts[1][1])["title"]
    assert daemon.stop() == 0


def test_health_reports_a_running_daemon_and_a_stopped_one(project, site, daemons):
    project.write_config(FAST + target_toml("a", site.set("/a", PAGE)))
    assert project.run("health").exit_code == 1
    daemon = daemons(project)
    until(lambda: project.run("health").exit_code == 0, what="a healthy daemon")
    assert daemon.stop() == 0
    result = project.run("health")
    assert result.exit_code == 1 and "stopped" in result.output


def test_json_logs_have_one_object_per_line_the_schedulers_warnings_included(
        project, site, daemons):
    project.write_config(FAST + target_toml("a", site.set("/a", PAGE))
                         + target_toml("slow", site.set("/slow", PAGE, delay=2.5)))
    daemon = daemons(project, "--log-json")
    until(lambda: checks(project, "a") >= 2 and "skipped" in daemon.log(), timeout=20,
          what="two checks and a run skipped while the slow one is still going")
    assert daemon.stop() == 0
    events = [json.loads(line) for line in daemon.lines]
    checked = [e for e in events if e.get("event") == "check"]
    assert checked[0]["target"] in ("a", "slow") and checked[0]["status"] == "new"
    assert any(e["level"] == "warning" and "skipped" in e["message"] for e in events
               if "message" in e)


def test_daemon_killed_between_commit_and_send_delivers_after_restart(project, site, daemons):
    stall = Stall()
    url = site.set("/p", PAGE)
    settings = FAST.replace("[settings]\n", '[settings]\nfeed_path = "feed.xml"\n')
    project.write_config(settings + mail_route("dpo", stall.port, default=True)
                         + target_toml("p", url))
    project.run("check", "--no-notify")
    site.set("/p", PAGE.replace("Be nice.", "Be nice and opt out."))
    first = daemons(project)
    until(lambda: stall.accepted, what="the daemon to start sending")
    first.process.kill()
    first.process.wait()
    stall.close()
    assert "opt out" in (project.root / "feed.xml").read_text()

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        project.write_config(settings + mail_route("dpo", controller.port, default=True)
                             + target_toml("p", url))
        second = daemons(project)
        until(lambda: len(inbox.messages) == 1, what="the alert after restart")
        time.sleep(1.5)
        assert len(inbox.messages) == 1
        assert second.stop() == 0
    finally:
        controller.stop()


def test_alerts_queued_while_the_daemon_waits_are_sent_without_a_check(project, site,
                                                                      daemons):
    """What `watcher check --no-notify` (or a failed send, or a digest) leaves in the outbox
    goes out when due, though the daemon's next check is hours away."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        project.write_config(FAST.replace('"every 1s"', '"every 6h"')
                             + mail_route("dpo", controller.port, default=True)
                             + target_toml("p", site.set("/p", PAGE)))
        project.run("check")
        daemon = daemons(project)
        until(lambda: "started" in daemon.log(), what="the daemon to start")
        site.set("/p", PAGE.replace("Be nice.", "Be nice and opt out."))
        assert project.run("check", "--no-notify").exit_code == 0
        until(lambda: len(inbox.messages) == 1, what="the queued alert")
        assert "opt out" in inbox.messages[0].get_body(("html",)).get_content()
        assert checks(project, "p") == 2
        assert daemon.stop() == 0
    finally:
        controller.stop()


def _get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_healthz_and_metrics_count_checks_versions_broken_targets_and_the_backlog(
        project, site, daemons):
    port, no_mail_server = free_port(), free_port()
    settings = FAST.replace("[settings.daemon]\n", f"[settings.daemon]\nmetrics_port = {port}\n")
    project.write_config(settings + mail_route("dpo", no_mail_server, default=True)
                         + target_toml("a", site.set("/a", PAGE))
                         + target_toml("down", site.set("/down", "<h1>Down</h1>", status=503)))
    daemon = daemons(project)
    until(lambda: checks(project, "a") >= 1, what="the first check")
    site.set("/a", PAGE.replace("Be nice.", "Be nice; we train on your data."))
    metrics: dict[str, float] = {}

    def changed_and_broken() -> bool:
        metrics.update(_samples(_get(port, "/metrics")[1]))
        return (metrics.get('watcher_checks_total{target="a",status="changed"}') == 1
                and metrics.get("watcher_targets_broken") == 1)
    until(changed_and_broken, what="a change and a broken target in /metrics")

    assert metrics['watcher_checks_total{target="a",status="new"}'] == 1
    assert metrics['watcher_versions_total{target="a"}'] == 2
    assert metrics['watcher_checks_total{target="down",status="failed"}'] >= 2
    assert metrics['watcher_notifications{status="pending"}'] >= 1
    assert metrics['watcher_notifications{status="sent"}'] == 0
    status, body = _get(port, "/healthz")
    assert status == 200 and body.startswith("ok")
    assert _get(port, "/healthz", method="POST")[0] == 405
    assert _get(port, "/nothing")[0] == 404
    assert daemon.stop() == 0
    with pytest.raises(urllib.error.URLError):
        _get(port, "/healthz")


def test_a_metrics_port_in_use_is_a_clear_error(project, site, daemons):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = FAST.replace("[settings.daemon]\n",
                                f"[settings.daemon]\nmetrics_port = {port}\n")
        project.write_config(settings + target_toml("a", site.set("/a", PAGE)))
        daemon = daemons(project)
        assert daemon.process.wait(timeout=15) == 1
    assert f"metrics_port {port}" in daemon.log()
    assert checks(project, "a") == 0
