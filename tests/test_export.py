"""Exports: a git repository of the history, JSON, and an Atom feed that validates."""

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import corpus_dir, target_toml

ATOM = "{http://www.w3.org/2005/Atom}"


def ingest_mistral_pair(project):
    corpus = corpus_dir("mistral-privacy-2025-02-13")
    manifest = json.loads((corpus / "manifest.json").read_text())
    project.write_config(target_toml("mistral-privacy", manifest["url"],
                                     select=["#privacy-policy"]).replace(
        'service = "Example"', 'service = "Mistral AI"'))
    files = [str(corpus / s["file"]) for s in manifest["snapshots"]]
    times = [a for s in manifest["snapshots"] for a in ("--fetched-at", s["fetched_at"])]
    assert project.run("ingest", "mistral-privacy", *files, *times).exit_code == 0
    return manifest


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def test_git_export_of_the_mistral_pair(project, tmp_path):
    manifest = ingest_mistral_pair(project)
    repo = tmp_path / "history"
    assert project.run("export", "mistral-privacy", "--format", "git", "--output",
                       str(repo)).exit_code == 0
    dates = git(repo, "log", "--format=%aI").split()
    assert [d.replace("+00:00", "Z") for d in reversed(dates)] == [
        s["fetched_at"].replace("+00:00", "Z") for s in manifest["snapshots"]]
    diff = git(repo, "diff", "HEAD~1", "HEAD")
    assert "+" in diff and "you have the right to object to this processing (opt-out)" in diff
    assert (repo / "Mistral AI" / "Privacy Policy.md").exists()
    assert project.run("export", "mistral-privacy", "--format", "git", "--output",
                       str(repo)).exit_code == 1


@pytest.mark.parametrize("service, document", [("..", "Terms"), (".git", "hooks"),
                                               ("A/../../B", "x\x00y")])
def test_git_export_keeps_odd_names_inside_the_repository(project, site, tmp_path, service,
                                                         document):
    url = site.set("/p", "<main><p>Be nice.</p></main>")
    project.write_config(target_toml("p", url).replace('service = "Example"',
                                                       f"service = {json.dumps(service)}")
                         .replace('document = "Privacy Policy"',
                                  f"document = {json.dumps(document)}"))
    project.run("check")
    repo = tmp_path / "out" / "history"
    result = project.run("export", "p", "--format", "git", "--output", str(repo))
    assert result.exit_code == 0, result.output
    [tracked] = git(repo, "ls-files").splitlines()
    assert (repo / tracked).read_text() == "Be nice.\n"
    assert list((tmp_path / "out").iterdir()) == [repo]


def test_json_export_has_versions_clauses_and_changes(project):
    ingest_mistral_pair(project)
    data = json.loads(project.run("export", "mistral-privacy", "--format", "json").stdout)
    assert [v["version"] for v in data["versions"]] == [1, 2]
    assert data["versions"][1]["diff"]["summary"]["modified"] == 2
    assert data["versions"][0]["clauses"][0]["text"] == "Privacy Policy"


def test_atom_feed_validates_and_lists_each_change(project, site):
    url = site.set("/p", "<main><h2>Data</h2><p>We keep chats for 30 days.</p></main>")
    project.write_config(target_toml("p", url))
    project.run("check")
    site.set("/p", "<main><h2>Data</h2><p>We keep chats for 90 days "
                   "&lt;script&gt;x()&lt;/script&gt;.</p></main>")
    project.run("check")
    site.set("/p", "<main><h2>Data</h2><p>We keep chats for 90 days.</p><p>New.</p></main>")
    project.run("check")
    xml = project.run("feed").output
    assert "<script>" not in xml
    root = ET.fromstring(xml)
    entries = root.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == [
        "Example — Privacy Policy: 1 clause added, 1 clause modified (retention)",
        "Example — Privacy Policy: 1 clause modified (retention)"]
    assert all("watcher diff p --from" in e.find(f"{ATOM}summary").text for e in entries)
    assert "&lt;script&gt;" in entries[1].find(f"{ATOM}content").text


def test_atom_feed_parses_whatever_characters_the_pages_held(project, site):
    url = site.set("/p", "<main><h2>Data</h2><p>We keep chats for 30 days.</p></main>")
    project.write_config(target_toml("p", url))
    project.run("check")
    site.set("/p", "<main><h2>Data</h2><p>We keep chats\x01 for 90 days\uffff "
                   "\x1b]0;pwned\x07.</p></main>")
    project.run("check")
    root = ET.fromstring(project.run("feed").output)
    [entry] = root.findall(f"{ATOM}entry")
    content = entry.find(f"{ATOM}content").text
    assert "]0;pwned" in content and not any(ch in content for ch in "\x01\x1b\x07\uffff")
