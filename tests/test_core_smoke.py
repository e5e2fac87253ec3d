from tests.conftest import target_toml


def test_check_records_first_version_then_a_change(project, site):
    url = site.set("/privacy", "<main><h2>Data</h2><p>We keep logs for 30 days.</p></main>")
    project.write_config(target_toml("example-privacy", url))
    first = project.json("check")
    assert [r["status"] for r in first] == ["new"]
    site.set("/privacy", "<main><h2>Data</h2><p>We keep logs for 90 days.</p></main>")
    second = project.json("check")
    assert second[0]["status"] == "changed"
    assert second[0]["summary"] == {"added": 0, "removed": 0, "modified": 1, "moved": 0}
