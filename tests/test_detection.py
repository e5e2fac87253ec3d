"""Detection quality: markup noise never makes a version, broken pages never do, flip-flops
are recognised, and ignore rules hold."""

import gzip
import json
import random

import pytest

from tests.conftest import CORPUS, corpus_dir, target_toml
from tests.noise import noisy
from watcher.models import document_sha256
from watcher.normalize import Selection, html_to_clauses

PAGE = """<html><head><title>Terms</title></head><body><main><h1>Terms</h1>
<p>Last updated: March 3, 2025</p><p>We keep chats for 30 days. See our
<a href="https://example.com/privacy">privacy policy</a>.</p>
<ul><li>You may object at any time.</li></ul></main></body></html>"""


@pytest.mark.parametrize("slug", ["deepseek-privacy-policy", "doubao-privacy-policy",
                                  "lovable-terms-of-service", "mistral-privacy-2025-02-13",
                                  "murf-terms-of-service"])
def test_noise_generator_never_changes_the_document(slug):
    directory = corpus_dir(slug)
    manifest = json.loads((directory / "manifest.json").read_text())
    selection = Selection(select=tuple(manifest["select"]),
                          remove=tuple(manifest["remove"] or ()))
    html = gzip.decompress((directory / manifest["snapshots"][0]["file"]).read_bytes()) \
        .decode("utf-8")
    reference = document_sha256(html_to_clauses(html, selection))
    rng = random.Random(slug)
    renders = [noisy(html, rng) for _ in range(200)]
    assert len(set(renders)) == 200
    changed = [i for i, page in enumerate(renders)
               if document_sha256(html_to_clauses(page, selection)) != reference]
    assert changed == []


def test_link_only_churn_makes_no_version(project, site):
    url = site.set("/t", PAGE)
    project.write_config(target_toml("t", url))
    project.run("check")
    site.set("/t", PAGE.replace("https://example.com/privacy",
                                "https://example.com/privacy?utm_source=mail&sid=8f3a"))
    assert project.json("check")[0]["status"] == "unchanged"


@pytest.mark.parametrize("status,body,reason", [
    (503, "<html><head><title>Just a moment...</title></head><body>Checking your browser"
          "</body></html>", "Cloudflare bot challenge"),
    (403, "<html><head><title>Access denied</title></head><body><div id='px-captcha'>"
          "</div></body></html>", "PerimeterX bot challenge"),
    (200, "<html><head><title>Just a moment...</title></head><body><div class='cf-chl-widget'>"
          "</div></body></html>", "Cloudflare bot challenge"),
    (200, "", "empty response body"),
    (403, "<html><head><title>example.com</title></head><body><p>Please enable JS</p><script>"
          "var dd={'rt':'c','host':'geo.captcha-delivery.com'}</script><script "
          "src='https://ct.captcha-delivery.com/c.js'></script></body></html>",
     "DataDome bot challenge"),
    (200, "<html><head><title>Robot check</title></head><body><p>Sorry, we need to make sure "
          "you're not a robot.</p><form><div class='g-recaptcha'></div></form></body></html>",
     "captcha"),
])
def test_challenge_and_empty_pages_fail_without_a_version(project, site, status, body, reason):
    url = site.set("/t", PAGE)
    project.write_config(target_toml("t", url))
    project.run("check")
    site.set("/t", body, status=status)
    [result] = project.json("check")
    assert result["status"] == "failed" and reason in result["reason"]
    assert len(project.json("history", "t")) == 1


def test_selector_missing_fails_without_a_version(project, site):
    url = site.set("/t", '<div id="terms"><p>Terms.</p></div>')
    project.write_config(target_toml("t", url, select=["#terms"]))
    project.run("check")
    site.set("/t", '<div id="redesigned"><p>Terms.</p></div>')
    [result] = project.json("check")
    assert result["status"] == "failed" and "'#terms' matched nothing" in result["reason"]
    assert len(project.json("history", "t")) == 1


def test_content_that_shrinks_by_80_percent_is_suspect(project, site):
    long_page = "<main>" + "".join(f"<p>Clause {i} about data.</p>" for i in range(50)) + "</main>"
    url = site.set("/t", long_page)
    project.write_config(target_toml("t", url))
    project.run("check")
    site.set("/t", "<main>" + "".join(f"<p>Clause {i} about data.</p>" for i in range(10))
             + "</main>")
    [result] = project.json("check")
    assert result["status"] == "suspect" and "shrank by 8" in result["reason"]
    assert len(project.json("history", "t")) == 1


def test_ignore_dates_and_ignore_patterns(project, site):
    url = site.set("/t", PAGE.replace("</main>", "<p>Visitors today: 1234</p></main>"))
    project.write_config(target_toml("t", url, ignore_dates=True, ignore=[r"Visitors today: \d+"]))
    project.run("check")
    site.set("/t", PAGE.replace("March 3, 2025", "April 9, 2025")
             .replace("</main>", "<p>Visitors today: 98</p></main>"))
    assert project.json("check")[0]["status"] == "unchanged"
    site.set("/t", PAGE.replace("30 days", "60 days"))
    assert project.json("check")[0]["status"] == "changed"


def test_a_revert_is_recorded_as_such_and_alerts_once(project, site):
    route = f'[notify.ops]\nurls = ["json://127.0.0.1:{site.server.server_address[1]}/hook"]\n'
    url = site.set("/t", PAGE)
    project.write_config(route + target_toml("t", url, notify=["ops"]))
    project.run("check")
    site.set("/t", PAGE.replace("30 days", "60 days"))
    project.run("check")
    site.set("/t", PAGE)
    project.run("check")
    history = project.json("history", "t")
    assert [h["revert_of"] for h in history] == [None, None, 1]
    assert len(site.posts) == 2  # the change, then the revert — one alert each
    assert "back to version 1" in project.run("history", "t").output


def test_an_oscillating_target_is_flagged_unstable_and_stops_alerting(project, site):
    route = f'[notify.ops]\nurls = ["json://127.0.0.1:{site.server.server_address[1]}/hook"]\n'
    a, b = PAGE, PAGE.replace("30 days", "60 days")
    url = site.set("/t", a)
    project.write_config(route + target_toml("t", url, notify=["ops"]))
    for page in (a, b, a, b, a, b):
        site.set("/t", page)
        project.run("check")
    assert [t["unstable"] for t in project.json("list")] == [True]
    assert len(site.posts) == 2  # A→B and the first B→A; then alerts pause
    assert "UNSTABLE" in project.run("list").output
    assert CORPUS  # the variants are visible with watcher diff / history
    assert [h["revert_of"] for h in project.json("history", "t")][2:] == [1, 2, 3, 4]


def test_track_links_records_link_changes_but_not_tracking_parameters(project, site):
    url = site.set("/t", PAGE)
    project.write_config(target_toml("t", url, track_links=True))
    project.run("check")
    site.set("/t", PAGE.replace("https://example.com/privacy",
                                "https://example.com/privacy?utm_source=mail&sessionid=8f3a"))
    assert project.json("check")[0]["status"] == "unchanged"
    site.set("/t", PAGE.replace("https://example.com/privacy", "https://example.com/privacy-v2"))
    [result] = project.json("check")
    assert result["status"] == "changed"
    diff = project.json("diff", "t")
    [change] = diff["changes"]
    assert "<https://example.com/privacy-v2>" in change["after"]


LONG_POLICY = "".join(f"<p>Clause {i}: we process personal data only as this policy says.</p>"
                      for i in range(60))


@pytest.mark.parametrize("content", [
    "<table><tr><th>Sub-processor</th><th>Purpose</th></tr>"
    "<tr><td>DataDome</td><td>Bot protection</td></tr></table>",
    "<table><tr><td>PerimeterX, Inc.</td><td>Fraud prevention</td></tr></table>",
    '<p>hCaptcha\'s <a href="https://www.hcaptcha.com/privacy">privacy policy</a> applies.</p>',
    '<form action="/contact"><div class="g-recaptcha" data-sitekey="k"></div>'
    '<script src="https://www.google.com/recaptcha/api.js"></script><button>Send</button></form>',
    "<h2>Automated decisions</h2><p>Are you a robot? We ask when traffic looks automated.</p>",
    "<p>Checking your browser settings… lets you refuse cookies.</p>",
])
def test_policy_pages_that_mention_bot_protection_are_recorded(project, site, content):
    url = site.set("/t", f"<html><head><title>Privacy</title></head><body><main>"
                         f"{LONG_POLICY}{content}</main></body></html>")
    project.write_config(target_toml("t", url))
    [result] = project.json("check")
    assert result["status"] == "new", result["reason"]


def test_a_short_sub_processor_list_naming_datadome_is_recorded(project, site):
    url = site.set("/t", '<html><head><title>Sub-processors</title></head><body><main><table>'
                         '<tr><td><a href="https://datadome.co/privacy">DataDome</a></td>'
                         "<td>Bot protection</td><td>France</td></tr></table></main></body></html>")
    project.write_config(target_toml("t", url, document="Sub-processors"))
    [result] = project.json("check")
    assert result["status"] == "new", result["reason"]
    assert project.run("show", "t").output == "| DataDome | Bot protection | France |\n"


def test_ignore_dates_keeps_words_and_section_numbers_whole(project, site):
    page = """<main><h2>3.4.12 Transfers</h2><p>Last updated: 03.04.2025</p>
      <p>Stand: 1. März 2025</p><p>We rely on Standard Contractual Clauses.</p>
      <p>Effectively, transfers stop on 12/31/2025, see 1.2.2025.4.</p>
      <p>We take effective measures from version 10.11.12.</p></main>"""
    url = site.set("/t", page)
    project.write_config(target_toml("t", url, ignore_dates=True))
    project.run("check")
    assert project.run("show", "t").output == (
        "## 3.4.12 Transfers\n\nWe rely on Standard Contractual Clauses.\n\n"
        "Effectively, transfers stop on , see 1.2.2025.4.\n\n"
        "We take effective measures from version 10.11.12.\n")
    site.set("/t", page.replace("03.04.2025", "17.06.2025").replace("1. März", "9. Juni")
             .replace("12/31/2025", "1/15/2026"))
    assert project.json("check")[0]["status"] == "unchanged"
