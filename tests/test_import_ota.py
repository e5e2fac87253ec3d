"""`watcher import ota`: Open Terms Archive declarations become targets that work."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import CORPUS
from watcher.cli import cli

DECLARATIONS = CORPUS.parent / "declarations"


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_every_real_declaration_imports_to_targets_that_validate(tmp_path):
    files = sorted(DECLARATIONS.glob("*.json"))
    assert len(files) >= 30, f"declarations not found in {DECLARATIONS}"
    output = tmp_path / "targets.toml"
    result = run("import", "ota", *map(str, files), "--output", str(output))
    assert result.exit_code == 0
    assert "not imported: Llama API.json: Trackers Policy: custom filter(s) removeTrackingIDs" \
        in result.stderr
    validated = run("--config", str(output), "validate")
    assert validated.exit_code == 0, validated.output
    text = output.read_text()
    assert 'id = "claude-ai-privacy-policy"' in text
    assert "[[targets.sources]]" in text and "{startBefore = " in text
    assert 'fetcher = "browser"' in text


def test_a_combine_declaration_fetches_both_pages_into_one_document(tmp_path, site):
    first = site.set("/terms", "<main><h1>Terms</h1><p>Be nice.</p></main>")
    second = site.set("/extra", '<div class="article"><h2>Extra terms</h2><p>No spam.</p>'
                                '<div class="related">Read more</div></div>')
    declaration = tmp_path / "Example.json"
    declaration.write_text(json.dumps({"name": "Example AI", "terms": {"Terms of Service": {
        "select": ["main"], "combine": [
            {"fetch": first},
            {"fetch": second, "select": [".article"], "remove": [".related"]}]}}}))
    config = tmp_path / "targets.toml"
    assert run("import", "ota", str(declaration), "--output", str(config)).exit_code == 0
    checked = run("--config", str(config), "check", "--json")
    assert json.loads(checked.stdout)[0]["status"] == "new", checked.output
    shown = run("--config", str(config), "show", "example-ai-terms-of-service").output
    assert shown == "# Terms\n\nBe nice.\n\n## Extra terms\n\nNo spam.\n"


def test_a_file_that_is_not_a_declaration_is_a_usage_error(tmp_path):
    bad = Path(tmp_path / "x.json")
    bad.write_text('{"hello": 1}')
    result = run("import", "ota", str(bad))
    assert result.exit_code == 2 and "not an Open Terms Archive declaration" in result.output


@pytest.mark.parametrize("terms, complaint", [
    ({"Privacy Policy": {"select": "main"}}, 'terms.Privacy Policy: has no "fetch" URL'),
    ({"Privacy Policy": "https://example.com/p"}, "terms.Privacy Policy: expected an object"),
    ({"Terms": {"combine": [{"fetch": "https://example.com/1"}, {"select": "main"}]}},
     'terms.Terms.combine[1]: has no "fetch" URL'),
])
def test_a_document_without_a_page_to_fetch_is_named_in_a_usage_error(tmp_path, terms,
                                                                      complaint):
    bad = Path(tmp_path / "example.json")
    bad.write_text(json.dumps({"name": "Example", "terms": terms}))
    result = run("import", "ota", str(bad))
    assert result.exit_code == 2, result.output
    assert complaint in result.output
