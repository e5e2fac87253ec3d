"""Alerts: real SMTP on loopback (aiosmtpd), a Slack webhook receiver, and an outbox that
loses nothing when a route is down or the process dies between commit and send."""

import json
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from apprise.plugins.slack import NotifySlack

from tests.conftest import corpus_dir, target_toml
from tests.standins import Inbox, SlowWebhook, Stall, free_port, mail_route
from watcher.config import load_config
from watcher.notify import deliver_pending
from watcher.store import Store

PAGE = "<main><h1>Privacy</h1><h2>4. Retention</h2><p>We keep chats for 30 days.</p></main>"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


def html_of(message):
    return message.get_body(preferencelist=("html",)).get_content()


def change_page(site):
    site.set("/p", PAGE.replace("30 days", "90 days")
             .replace("</main>", "<p>You may object to training (opt-out).</p></main>"))


def test_the_mistral_change_arrives_as_one_html_email(project, smtp):
    corpus = corpus_dir("mistral-privacy-2025-02-13")
    manifest = json.loads((corpus / "manifest.json").read_text())
    project.write_config(mail_route("dpo", smtp.port, default=True) + target_toml(
        "mistral-privacy", manifest["url"], select=["#privacy-policy"]).replace(
        'service = "Example"', 'service = "Mistral AI"'))
    files = [str(corpus / s["file"]) for s in manifest["snapshots"]]
    times = [a for s in manifest["snapshots"] for a in ("--fetched-at", s["fetched_at"])]
    assert project.run("ingest", "mistral-privacy", *files, *times, "--notify").exit_code == 0
    [message] = smtp.messages
    assert message["Subject"].startswith("Mistral AI — Privacy Policy: 2 clauses modified (")
    assert "opt-out" in message["Subject"] and "AI training" in message["Subject"]
    body = html_of(message)
    assert "3.4.2. Input and Output provided on La Plateforme" in body
    assert "3.4.3. Le Chat" in body
    assert "<ins" in body and "For clarity and as set out in Section 8" in body
    assert "watcher diff mistral-privacy --from 1 --to 2" in body


def test_ingest_without_notify_and_first_versions_send_nothing(project, site, smtp):
    project.write_config(mail_route("dpo", smtp.port, default=True)
                         + target_toml("p", site.set("/p", PAGE)))
    project.run("check")
    assert smtp.messages == [] and project.json("outbox") == []


def test_page_text_is_escaped_in_the_email(project, site, smtp):
    project.write_config(mail_route("dpo", smtp.port, default=True)
                         + target_toml("p", site.set("/p", PAGE)))
    project.run("check")
    site.set("/p", PAGE.replace("30 days", "30 days &lt;script&gt;alert(1)&lt;/script&gt;"))
    project.run("check")
    body = html_of(smtp.messages[0])
    assert "<script>" not in body and "&lt;script&gt;" in body


def test_a_removed_and_a_moved_clause_reach_every_format(project, site, smtp, monkeypatch):
    monkeypatch.setattr(NotifySlack, "webhook_url", site.url("/slack"))
    promise = "We never sell your data to &lt;partners&gt; or brokers."
    before = ("<main><h1>Privacy</h1><h2>1. Sharing</h2><p>{promise}</p>"
              "<p>Processors act on our instructions only.</p><h2>2. Retention</h2>"
              "<p>We keep chats for 30 days.</p><p>Backups are erased after 90 days.</p></main>")
    after = ("<main><h1>Privacy</h1><h2>1. Sharing</h2><p>Backups are erased after 90 days.</p>"
             "<p>Processors act on our instructions only.</p><h2>2. Retention</h2>"
             "<p>We keep chats for 30 days.</p></main>")
    project.write_config(mail_route("dpo", smtp.port)
                         + '[notify.team]\nurls = ["slack://T000/B000/XXXXXXXX/#privacy"]\n'
                         + target_toml("p", site.set("/p", before.format(promise=promise)),
                                       notify=["dpo", "team"]))
    project.run("check")
    site.set("/p", after)
    project.run("check")
    plain = promise.replace("&lt;", "<").replace("&gt;", ">")
    moved = "Privacy › 2. Retention → Privacy › 1. Sharing"
    text = project.run("diff", "p").output
    assert "REMOVED" in text and f"- {plain}" in text
    assert f"MOVED (medium)  {moved}\n  Backups are erased after 90 days." in text
    body = html_of(smtp.messages[0])
    assert re.search(r"<del[^>]*>We never sell your data to &lt;partners&gt; or brokers\.</del>",
                     body)
    assert moved in body and "Backups are erased after 90 days." in body
    assert "<partners>" not in body
    [(_, raw)] = site.posts
    slack = json.dumps(json.loads(raw), ensure_ascii=False)
    assert "~We never sell your data to" in slack and "Backups are erased" in slack
    assert moved in slack


def test_slack_route_gets_markdown_with_marked_insertions_and_deletions(project, site,
                                                                          monkeypatch):
    monkeypatch.setattr(NotifySlack, "webhook_url", site.url("/slack"))
    project.write_config('[notify.team]\nurls = ["slack://T000/B000/XXXXXXXX/#privacy"]\n'
                         + target_toml("p", site.set("/p", PAGE), notify=["team"]))
    project.run("check")
    change_page(site)
    project.run("check")
    [(path, raw)] = site.posts
    assert path.startswith("/slack/T000/B000/XXXXXXXX")
    payload = json.loads(raw)
    text = json.dumps(payload, ensure_ascii=False)
    assert "Example — Privacy Policy: 1 clause added, 1 clause modified" in text
    assert "*90*" in text and "~30~" in text
    assert "4. Retention" in text


def test_smtp_down_keeps_the_alert_pending_then_delivers_it_exactly_once(project, site):
    port = free_port()
    project.write_config(mail_route("dpo", port, default=True)
                         + target_toml("p", site.set("/p", PAGE)))
    project.run("check")
    change_page(site)
    result = project.run("check", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["status"] == "changed"
    [row] = project.json("outbox")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "did not accept" in row["last_error"] and "example.com" not in row["last_error"]
    assert "Connection refused" in row["last_error"]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert project.run("outbox", "retry").exit_code == 0
        assert project.run("outbox", "retry").exit_code == 0
        assert len(inbox.messages) == 1
        assert project.json("outbox")[0]["status"] == "sent"
    finally:
        controller.stop()


def test_two_routes_one_failing_the_other_gets_exactly_one_message(project, site, smtp):
    project.write_config(mail_route("good", smtp.port) + mail_route("bad", free_port())
                         + target_toml("p", site.set("/p", PAGE), notify=["good", "bad"]))
    project.run("check")
    change_page(site)
    project.run("check")
    project.run("outbox", "retry")
    assert len(smtp.messages) == 1
    statuses = {row["route"]: row["status"] for row in project.json("outbox")}
    assert statuses == {"good": "sent", "bad": "pending"}


def test_an_alert_survives_the_process_dying_between_commit_and_send(project, site, smtp):
    stall = Stall()
    url = site.set("/p", PAGE)
    project.write_config(mail_route("dpo", stall.port, default=True)
                         + target_toml("p", url))
    project.run("check")
    change_page(site)
    process = project.spawn("check")
    deadline = time.monotonic() + 20
    while not stall.accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stall.accepted, "the check never tried to send"
    process.kill()
    process.wait()
    stall.close()
    with sqlite3.connect(project.db) as conn:
        assert conn.execute("SELECT count(*) FROM versions").fetchone()[0] == 2
    project.write_config(mail_route("dpo", smtp.port, default=True) + target_toml("p", url))
    assert project.run("outbox", "retry").exit_code == 0
    assert len(smtp.messages) == 1


def test_notify_test_sends_a_sample_to_a_route(project, smtp):
    project.write_config(mail_route("dpo", smtp.port))
    result = project.run("notify", "test", "dpo")
    assert result.exit_code == 0 and "dpo: sent" in result.output
    assert "test" in smtp.messages[0]["Subject"]
    assert project.run("notify", "test", "nope").exit_code == 2


def test_a_refusing_route_says_why_without_its_credentials(project, site, monkeypatch):
    monkeypatch.setattr(NotifySlack, "webhook_url", site.url("/slack"))
    site.post_answer = (403, b"invalid_token")
    token, password = "TIiajkdnlazkcOXrIdevi7FQ", "S3cret-Passw0rd"
    project.write_config(
        f'[notify.team]\nurls = ["slack://T1JJ3T3L2/A1BRTD4JD/{token}/#privacy"]\n'
        f'[notify.dpo]\nurls = ["mailto://alice:{password}@127.0.0.1:{free_port()}'
        '?from=watcher@example.com&to=dpo@example.com"]\n')
    result = project.run("notify", "test", "team", "dpo")
    assert result.exit_code == 1
    assert "team: " in result.output and "invalid_token" in result.output
    assert "dpo: " in result.output and "Connection refused" in result.output
    for secret in (token, "T1JJ3T3L2", password, "alice", "dpo@example.com"):
        assert secret not in result.output


def next_monday_8am(after: datetime) -> datetime:
    days = (7 - after.weekday()) % 7
    candidate = after.replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=days)
    return candidate if candidate > after else candidate + timedelta(days=7)


def test_a_weekly_digest_waits_for_monday_8am_then_sends_every_alert_in_one_email(
        project, site, smtp):
    digest = (mail_route("weekly", smtp.port).replace("to=dpo@", "to=digest@")
              + 'digest = "weekly"\n')
    project.write_config(digest + mail_route("now", smtp.port)
                         + target_toml("p", site.set("/p", PAGE), notify=["weekly", "now"])
                         + target_toml("q", site.set("/q", PAGE), notify=["weekly", "now"],
                                       document="Terms of Service"))
    project.run("check")
    change_page(site)
    site.set("/q", PAGE.replace("30 days", "60 days"))
    checked_at = datetime.now(UTC)
    assert project.run("check").exit_code == 0
    assert [m["To"] for m in smtp.messages] == ["dpo@example.com"] * 2
    due = next_monday_8am(checked_at)
    listing = project.run("outbox").output
    assert len(re.findall(rf"pending +weekly .* due {due:%Y-%m-%d} 08:00 UTC", listing)) == 2

    config = load_config(project.config)
    with Store(project.db) as store:
        assert deliver_pending(config, store, now=due - timedelta(minutes=1)).sent == 0
        assert deliver_pending(config, store, now=due).sent == 1
        assert deliver_pending(config, store, now=due + timedelta(days=1)).sent == 0
    [digest_mail] = [m for m in smtp.messages if m["To"] == "digest@example.com"]
    subject = digest_mail["Subject"]
    assert subject.startswith("policy-watcher digest: 2 alerts (")
    assert "Example — Privacy Policy" in subject and "Example — Terms of Service" in subject
    body = html_of(digest_mail)
    assert "Example — Privacy Policy: 1 clause added, 1 clause modified" in body
    assert "Example — Terms of Service: 1 clause modified" in body
    assert "You may object to training (opt-out)." in body and "60" in body
    assert "watcher diff p --from 1 --to 2" in body and "watcher diff q --from 1 --to 2" in body
    assert {row["route"]: row["status"] for row in project.json("outbox")} == \
        {"weekly": "sent", "now": "sent"}


def hook(site, path):
    return f"json://127.0.0.1:{site.server.server_address[1]}{path}"


def posts_to(site, path):
    return [raw for at, raw in site.posts if at == path]


def until(predicate, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def file_route(name="ops", path="apprise.yml"):
    return f'[notify.{name}]\nconfig = "{path}"\ndefault = true\n'


def apprise_file(project, *urls):
    (project.root / "apprise.yml").write_text(
        "urls:\n" + "".join(f"  - {url}\n" for url in urls), encoding="utf-8")


def test_a_route_with_only_an_apprise_config_file_delivers_through_it(project, site):
    apprise_file(project, hook(site, "/from-file"))
    project.write_config(file_route() + target_toml("p", site.set("/p", PAGE)))
    result = project.run("notify", "test")
    assert result.exit_code == 0 and "ops: sent" in result.output
    [sample] = posts_to(site, "/from-file")
    assert "test alert" in json.loads(sample)["message"]
    project.run("check")
    change_page(site)
    project.run("check")
    alert = json.loads(posts_to(site, "/from-file")[1])
    assert "1 clause added, 1 clause modified" in alert["title"]
    [row] = project.json("outbox")
    assert row["status"] == "sent" and row["attempts"] == 1


def test_a_missing_apprise_config_file_is_a_configuration_error(project, site):
    project.write_config(file_route() + target_toml("p", site.set("/p", PAGE)))
    result = project.run("notify", "test")
    assert result.exit_code == 2
    assert "notify.ops.config: Apprise configuration file 'apprise.yml' not found" \
        in result.output


@pytest.mark.parametrize("content, why", [("", "defines no URL Apprise can use"),
                                          ("urls:\n  - nosuch://x\n", "defines no URL")])
def test_an_apprise_config_file_without_a_usable_url_fails_naming_it(project, site, content,
                                                                      why):
    (project.root / "apprise.yml").write_text(content, encoding="utf-8")
    project.write_config(file_route() + target_toml("p", site.set("/p", PAGE)))
    result = project.run("notify", "test")
    assert result.exit_code == 1 and "ops: FAILED" in result.output
    assert f"apprise.yml {why}" in result.output
    project.run("check")
    change_page(site)
    project.run("check")
    [row] = project.json("outbox")
    assert row["status"] == "pending" and f"apprise.yml {why}" in row["last_error"]


def test_a_refusing_destination_of_a_config_file_says_why_without_its_secrets(project):
    user, password, token = "alice-user", "S3cret-Passw0rd", "T0kenT0ken1234"
    apprise_file(project, f"json://{user}:{password}@127.0.0.1:{free_port()}/{token}/hook"
                          f"?:key={token}x")
    project.write_config(file_route())
    result = project.run("notify", "test")
    assert result.exit_code == 1 and "Connection refused" in result.output
    for secret in (user, password, token):
        assert secret not in result.output


def test_each_destination_of_a_config_file_gets_an_alert_once(project, site):
    apprise_file(project, hook(site, "/a"), f"json://127.0.0.1:{free_port()}/down")
    project.write_config(file_route() + target_toml("p", site.set("/p", PAGE)))
    project.run("check")
    change_page(site)
    project.run("check")
    assert [row["status"] for row in project.json("outbox")] == ["pending"]
    apprise_file(project, hook(site, "/a"), hook(site, "/c"))
    assert project.run("outbox", "retry").exit_code == 0
    assert project.run("outbox", "retry").exit_code == 0
    assert len(posts_to(site, "/a")) == 1 and len(posts_to(site, "/c")) == 1
    assert [row["status"] for row in project.json("outbox")] == ["sent"]


def test_a_url_that_accepted_an_alert_is_not_sent_it_again_after_the_urls_are_edited(
        project, site):
    down = f"json://127.0.0.1:{free_port()}/down"
    route = '[notify.ops]\nurls = [{}]\ndefault = true\n'
    target = target_toml("p", site.set("/p", PAGE))
    project.write_config(route.format(f'"{down}", "{hook(site, "/b")}"') + target)
    project.run("check")
    change_page(site)
    project.run("check")
    assert len(posts_to(site, "/b")) == 1
    project.write_config(route.format(f'"{hook(site, "/b")}", "{hook(site, "/a")}"') + target)
    assert project.run("outbox", "retry").exit_code == 0
    assert len(posts_to(site, "/b")) == 1 and len(posts_to(site, "/a")) == 1
    assert [row["status"] for row in project.json("outbox")] == ["sent"]


def test_two_senders_at_once_send_an_alert_once(project, site):
    webhook = SlowWebhook()
    try:
        project.write_config(f'[notify.ops]\nurls = ["{webhook.url("/hook")}"]\n'
                             'default = true\n' + target_toml("p", site.set("/p", PAGE)))
        project.run("check")
        change_page(site)
        assert project.run("check", "--no-notify").exit_code == 0
        first = project.spawn("outbox", "retry")
        until(lambda: webhook.requests, what="the first sender to post")
        second = project.spawn("outbox", "retry")
        assert second.wait(timeout=30) == 0
        webhook.release()
        assert first.wait(timeout=30) == 0
        assert len(webhook.requests) == 1
        [row] = project.json("outbox")
        assert row["status"] == "sent" and row["attempts"] == 1
    finally:
        webhook.close()
