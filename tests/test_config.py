"""targets.toml: valid files load; every mistake is named with its file, line and field."""

from pathlib import Path

import apprise
import pytest

from watcher.config import ConfigError, load_config, parse_config

GOOD = """
[settings]
database = "data/policies.db"

[notify.team]
urls = ["mailtos://${SMTP_USER}:${SMTP_PASS}@mail.example.com?to=dpo@example.com"]

[[targets]]
id = "mistral-privacy"
service = "Mistral AI"
document = "Privacy Policy"
url = "https://mistral.ai/terms/"
select = "#privacy-policy"
notify = ["team"]
tags = ["ai", "eu"]

[[targets]]
id = "mistral-terms"
service = "Mistral AI"
document = "Terms of Service"
url = "https://mistral.ai/terms/"
select = ["#terms-of-service"]
fetcher = "http"
headers = { Cookie = "consent=${CONSENT}" }
"""

ENV = {"SMTP_USER": "bot", "SMTP_PASS": "s3cret", "CONSENT": "yes"}


def problems(text, environ=ENV):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, Path("targets.toml"), environ)
    return str(caught.value)


def test_a_valid_file_loads_with_defaults_and_expanded_secrets():
    config = parse_config(GOOD, Path("/etc/watcher/targets.toml"), ENV)
    first, second = config.targets
    assert first.select == ("#privacy-policy",)
    assert config.fetcher_of(first) == "auto" and config.fetcher_of(second) == "http"
    assert config.database_path == Path("/etc/watcher/data/policies.db")
    assert config.routes["team"].urls[0].startswith("mailtos://bot:s3cret@")
    assert second.headers == {"Cookie": "consent=yes"}


def test_misspelt_key_is_reported_with_line_and_suggestion():
    text = GOOD.replace('fetcher = "http"', 'fetchr = "http"')
    message = problems(text)
    line = text.splitlines().index('fetchr = "http"') + 1
    assert f"targets.toml:{line}: targets[1].fetchr: unknown key 'fetchr'; did you mean 'fetcher'?" \
        in message


def test_value_not_allowed_names_field_line_and_choices():
    text = GOOD.replace('fetcher = "http"', 'fetcher = "chrome"')
    line = text.splitlines().index('fetcher = "chrome"') + 1
    message = problems(text)
    assert f"targets.toml:{line}: targets[1].fetcher: 'chrome' is not allowed; use one of " \
        "auto, http or browser" in message


def test_missing_required_field():
    message = problems(GOOD.replace('url = "https://mistral.ai/terms/"\nselect = "#privacy-policy"',
                                    'select = "#privacy-policy"'))
    assert "targets[0].url: is required" in message


def test_duplicate_ids_bad_slug_bad_url_and_bad_selector():
    text = GOOD.replace('id = "mistral-terms"', 'id = "mistral-privacy"') \
        .replace('"https://mistral.ai/terms/"\nselect = ["#terms-of-service"]',
                 '"ftp://mistral.ai"\nselect = ["div[["]')
    message = problems(text)
    assert "targets[1].id: duplicate id 'mistral-privacy'" in message
    assert "targets[1].url: 'ftp://mistral.ai' is not an http(s) URL" in message
    assert "targets[1].select: invalid CSS selector 'div[['" in message
    assert "not a slug" in problems(GOOD.replace('"mistral-terms"', '"Mistral Terms"'))


def test_unknown_route_and_unset_environment_variable():
    assert "no route named 'legal'" in problems(GOOD.replace('notify = ["team"]',
                                                             'notify = ["legal"]'))
    message = problems(GOOD, environ={"SMTP_USER": "bot", "CONSENT": "x"})
    assert "notify.team.urls: environment variable SMTP_PASS is not set" in message
    assert "s3cret" not in message and "bot" not in message


def test_toml_syntax_error_gives_the_line():
    assert problems(GOOD + "\n[[targets]\n").startswith("targets.toml:")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_the_bundled_targets_file_is_valid():
    config = load_config(Path(__file__).parent.parent / "targets.toml")
    services = {t.service for t in config.targets}
    assert {"Mistral AI", "OpenAI", "Anthropic", "Google"} <= services


def test_validate_command_exits_2_with_the_first_line_clear(project):
    text = GOOD.split("[[targets]]", 1)[1].split("notify =")[0]
    project.write_config("[[targets]]" + text + 'fetcher = "chrome"\n')
    result = project.run("validate")
    assert result.exit_code == 2
    assert "invalid configuration" in result.output.splitlines()[0]
    assert "targets[0].fetcher" in result.output


def test_an_apprise_url_apprise_cannot_use_is_an_error_that_hides_its_secret():
    text = GOOD.replace("mailtos://${SMTP_USER}:${SMTP_PASS}@mail.example.com?to=dpo@example.com",
                        "nosuchservice://user:${SMTP_PASS}@mail.example.com")
    message = problems(text)
    assert "notify.team.urls: URL 1 is not a URL Apprise can use" in message
    assert "s3cret" not in message


def test_a_daemon_setting_out_of_range_names_its_table_line():
    text = GOOD.replace("[notify.team]", "[settings.daemon]\nmetrics_port = 70000\n\n[notify.team]")
    line = text.splitlines().index("metrics_port = 70000") + 1
    assert (f"targets.toml:{line}: settings.daemon.metrics_port: input should be less than or "
            "equal to 65535 (got 70000)") in problems(text)


def test_a_digest_must_be_calendar_times_and_names_its_line():
    text = GOOD.replace("[[targets]]", 'digest = "every 6h"\n\n[[targets]]', 1)
    line = text.splitlines().index('digest = "every 6h"') + 1
    message = problems(text)
    assert f"targets.toml:{line}: notify.team.digest: 'every 6h' is not a digest time" in message
    assert "weekly" in message
    assert parse_config(GOOD.replace("[[targets]]", 'digest = "0 17 * * 5"\n\n[[targets]]', 1),
                        Path("targets.toml"), ENV).routes["team"].digest == "0 17 * * 5"


def test_a_target_schedule_and_an_ignore_pattern_that_cannot_work_name_their_line():
    text = GOOD.replace('fetcher = "http"', 'fetcher = "http"\nschedule = "every fortnight"\n'
                                            'ignore = ["visits: (\\\\d+"]')
    lines = text.splitlines()
    message = problems(text)
    schedule_line = lines.index('schedule = "every fortnight"') + 1
    ignore_line = next(i for i, line in enumerate(lines) if line.startswith("ignore")) + 1
    assert f"targets.toml:{schedule_line}: targets[1].schedule: 'every fortnight' is not a " \
           "schedule" in message
    assert f"targets.toml:{ignore_line}: targets[1].ignore" in message
    assert "invalid regular expression" in message and "missing )" in message


def line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if line.startswith(start)) + 1


def test_a_misspelt_table_and_a_single_bracket_targets_name_their_line():
    text = GOOD.replace("[settings]", "[setings]")
    assert f"targets.toml:{line_of(text, '[setings]')}: setings: unknown key 'setings'" \
        in problems(text)
    text = '[settings]\nschedule = "daily"\n\n[targets]\nid = "x"\n'
    assert f"targets.toml:{line_of(text, '[targets]')}: targets: must be an array of tables" \
        in problems(text)


def test_a_mistake_in_the_second_source_names_its_own_line():
    text = GOOD + """
[[targets]]
id = "combined"
service = "Example"
document = "Terms"
url = "https://example.com/terms"

[[targets.sources]]
url = "https://example.com/terms/1"

[[targets.sources]]
url = "https://example.com/terms/2"
selct = "main"
"""
    assert f"targets.toml:{line_of(text, 'selct')}: targets[2].sources[1].selct: unknown key " \
           "'selct'; did you mean 'select'?" in problems(text)


@pytest.mark.parametrize("lexicon", ['[settings.lexicon]\nai-training = ["(unclosed"]\n',
                                     '[settings]\nlexicon = { ai-training = ["(unclosed"] }\n'])
def test_a_lexicon_pattern_that_cannot_compile_is_a_config_error_on_its_line(lexicon):
    text = GOOD.replace('[settings]\ndatabase = "data/policies.db"\n', "") + lexicon
    message = problems(text)
    line = line_of(text, "ai-training") if "[settings.lexicon]" in lexicon else \
        line_of(text, "lexicon")
    assert f"targets.toml:{line}: settings.lexicon.ai-training: invalid regular expression " \
           "'(unclosed'" in message


def test_secrets_inside_a_url_are_percent_encoded_and_a_whole_url_is_kept_as_is():
    text = GOOD.replace('urls = ["mailtos://', 'urls = ["${WEBHOOK}", "mailtos://') \
        .replace("?to=dpo@example.com", "?to=${TO}&note=$${literal}")
    environ = {**ENV, "SMTP_USER": "bot@example.com", "SMTP_PASS": "p@ss#/:1",
               "WEBHOOK": "json://hooks.example.com/x?token=abc", "TO": "a@x.com,b@y.com"}
    whole, mail = parse_config(text, Path("targets.toml"), environ).routes["team"].urls
    assert whole == "json://hooks.example.com/x?token=abc"
    assert "${literal}" in mail
    service = apprise.Apprise.instantiate(mail)
    assert (service.user, service.password) == ("bot@example.com", "p@ss#/:1")
    assert [address for _, address in service.targets] == ["a@x.com", "b@y.com"]


def test_a_header_value_http_cannot_carry_names_the_header_but_not_the_value():
    text = GOOD.replace('headers = { Cookie = "consent=${CONSENT}" }',
                        'headers = { Authorization = "Bearer ${API_TOKEN}" }')
    message = problems(text, {**ENV, "API_TOKEN": "sk-live-SECRET123\n"})
    line = line_of(text, "headers")
    assert f"targets.toml:{line}: targets[1].headers.Authorization: header 'Authorization': " \
           "value contains a line break" in message
    assert "SECRET123" not in message
    assert "value must be ASCII" in problems(text, {**ENV, "API_TOKEN": "Société"})
