"""What the terminal shows: page and configuration text printed as text, never interpreted."""

from tests.conftest import target_toml


def test_list_prints_brackets_from_pages_and_config_literally(project, site):
    url = site.set("/p", "<main><p>Hello.</p></main>")
    project.write_config(target_toml("p", url, document="Terms [/archived] [bold red]old",
                                     select="[data-policy]"))
    assert project.run("check").exit_code == 1  # the selector matches nothing
    result = project.run("list")
    assert result.exit_code == 0, result.output
    assert "Terms [/archived] [bold red]old" in result.output
    assert "[data-policy]" in result.output
