"""Documents made of several pages, and the `auto` fetcher's choice between HTTP and browser."""

from __future__ import annotations

import json

from tests.conftest import require_browser, target_toml


def sources_toml(target_id: str, urls: list[str]) -> str:
    listed = ", ".join(f'{{url = "{url}", select = "main"}}' for url in urls)
    return (f'[[targets]]\nid = "{target_id}"\nservice = "Example"\ndocument = "Terms"\n'
            f'url = "{urls[0]}"\nfetcher = "http"\nsources = [{listed}]\n')


def test_sources_are_joined_in_order(project, site):
    one = site.set("/terms/1", "<nav>menu</nav><main><h2>Part one</h2><p>First.</p></main>")
    two = site.set("/terms/2", "<main><h2>Part two</h2><p>Second.</p></main>")
    project.write_config(sources_toml("terms", [one, two]))
    assert project.json("check")[0]["status"] == "new"
    assert project.run("show", "terms").output == \
        "## Part one\n\nFirst.\n\n## Part two\n\nSecond.\n"


def test_track_links_applies_to_every_source(project, site):
    one = site.set("/terms/1", "<main><p>See <a href='/annex-v1.pdf'>the annex</a>.</p></main>")
    two = site.set("/terms/2", "<main><p>See <a href='/list-v3.pdf'>the list</a>.</p></main>")
    project.write_config(sources_toml("terms", [one, two]) + "track_links = true\n")
    project.run("check")
    shown = project.run("show", "terms").output
    assert "the annex </annex-v1.pdf>" in shown and "the list </list-v3.pdf>" in shown


def test_a_failing_second_source_records_nothing(project, site):
    one = site.set("/terms/1", "<main><p>First.</p></main>")
    two = site.set("/terms/2", "<main><p>Second.</p></main>", status=500)
    project.write_config(sources_toml("terms", [one, two]))
    result = project.run("check", "--json")
    assert result.exit_code == 1
    row = json.loads(result.stdout)[0]
    assert row["status"] == "failed"
    assert "source 2" in row["reason"] and "HTTP 500" in row["reason"]
    assert project.json("history", "terms") == []


def test_a_failing_source_after_a_version_adds_no_partial_version(project, site):
    one = site.set("/terms/1", "<main><p>First.</p></main>")
    two = site.set("/terms/2", "<main><p>Second.</p></main>")
    project.write_config(sources_toml("terms", [one, two]))
    project.json("check")
    site.set("/terms/1", "<main><p>First, edited.</p></main>")
    site.set("/terms/2", "<main><p>Second.</p></main>", status=500)
    assert project.json("check")[0]["status"] == "failed"
    assert len(project.json("history", "terms")) == 1


SCRIPT_ONLY = ("<html><body><noscript>Enable JavaScript</noscript><main id='app'></main>"
               "<script>document.getElementById('app').innerHTML = "
               "'<h2>Data</h2><p>We keep logs for 30 days.</p>';</script></body></html>")
STATIC = "<html><body><main><h2>Data</h2><p>We keep logs for 30 days.</p></main></body></html>"


def auto_toml(target_id: str, url: str) -> str:
    return target_toml(target_id, url).replace('fetcher = "http"', 'fetcher = "auto"')


def test_auto_picks_http_for_static_and_browser_for_script_rendered(project, site):
    require_browser()
    static = site.set("/static", STATIC)
    scripted = site.set("/app", SCRIPT_ONLY)
    project.write_config(auto_toml("static", static) + auto_toml("scripted", scripted))
    assert [r["status"] for r in project.json("check")] == ["new", "new"]
    listed = {row["id"]: row for row in project.json("list")}
    assert listed["static"]["fetcher_used"] == "http"
    assert listed["scripted"]["fetcher_used"] == "browser"
    table = project.run("list").output
    assert "auto: http" in table and "auto: browser" in table
    assert project.run("show", "scripted").output == "## Data\n\nWe keep logs for 30 days.\n"
    hits = dict(site.hits)
    assert [r["status"] for r in project.json("check")] == ["unchanged", "unchanged"]
    assert site.hits["/static"] == hits["/static"] + 1, "decided: one plain fetch, no browser"


def test_auto_switches_to_the_browser_when_http_sees_a_script_shell(project, site):
    require_browser()
    url = site.set("/terms", STATIC)
    project.write_config(auto_toml("t", url))
    project.json("check")
    assert project.json("list")[0]["fetcher_used"] == "http"
    site.set("/terms", SCRIPT_ONLY)
    assert project.json("check")[0]["status"] == "unchanged"
    assert project.json("list")[0]["fetcher_used"] == "browser"
    assert len(project.json("history", "t")) == 1


def test_auto_decides_again_after_the_target_configuration_changes(project, site):
    require_browser()
    url = site.set("/terms", STATIC)
    project.write_config(auto_toml("t", url))
    project.json("check")
    before = site.hits["/terms"]
    project.json("check")
    assert site.hits["/terms"] == before + 1, "decided: HTTP only"
    project.write_config(auto_toml("t", url) + 'select = "main"\n')
    before = site.hits["/terms"]
    assert project.json("check")[0]["status"] == "unchanged"
    assert site.hits["/terms"] == before + 2, "configuration changed: fetched both ways again"
    assert project.json("list")[0]["fetcher_used"] == "http"


def test_misspelt_browser_and_source_keys_are_clear_usage_errors(project):
    project.write_config('[settings.browser]\nmax_page = 2\n[[targets]]\nid = "a"\n'
                         'service = "S"\ndocument = "D"\nurl = "http://127.0.0.1/"\n'
                         'sources = [{url = "http://127.0.0.1/1"}, '
                         '{url = "http://127.0.0.1/2", selekt = "main"}]\n')
    result = project.run("validate")
    assert result.exit_code == 2
    assert "settings.browser.max_page: unknown key 'max_page'; did you mean 'max_pages'?" \
        in result.output
    assert "targets.toml:8: targets[0].sources[1].selekt: unknown key 'selekt'; " \
        "did you mean 'select'?" in result.output


def test_a_browser_failure_while_auto_decides_again_is_a_failed_check_not_a_change(project,
                                                                                   site):
    require_browser()
    site.set("/app.js", "document.getElementById('app').innerHTML += '<p>Extra clause.</p>';",
             content_type="application/javascript")
    url = site.set("/terms", "<html><body><main id='app'><h2>Data</h2><p>We keep logs for 30 "
                             "days.</p></main><script src='/app.js'></script></body></html>")
    recheck_always = "[settings.browser]\ntimeout = 2\nauto_recheck_days = 0\n"
    project.write_config(recheck_always + auto_toml("t", url))
    assert project.json("check")[0]["status"] == "new"
    assert project.json("list")[0]["fetcher_used"] == "browser"

    site.set("/app.js", "/* stalls */", content_type="application/javascript", delay=6)
    [result] = project.json("check")
    assert result["status"] == "failed"
    assert result["reason"].startswith("auto: the browser, which decides how to read this page, "
                                       "failed: ")

    site.set("/app.js", "document.getElementById('app').innerHTML += '<p>Extra clause.</p>';",
             content_type="application/javascript")
    assert project.json("check")[0]["status"] == "unchanged"
    assert len(project.json("history", "t")) == 1
