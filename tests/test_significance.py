"""Each change is ranked by what it means, in English and French."""

from tests.conftest import target_toml
from watcher.diff import diff_clauses
from watcher.models import Clause
from watcher.significance import assess


def ranked(before, after, kind="paragraph", key=None, section=("Policy",)):
    old = [Clause(kind, t, section, key=key and t.split(" | ")[0]) for t in before]
    new = [Clause(kind, t, section, key=key and t.split(" | ")[0]) for t in after]
    return assess(diff_clauses(old, new))


def test_rewording_a_training_clause_is_high_in_english():
    changes, level, topics = ranked(
        ["We may use your conversations to improve our services."],
        ["We may use your conversations to train our models."])
    assert level == "high" and "ai-training" in topics
    assert changes[0].significance == "high"


def test_rewording_a_training_clause_is_high_in_french():
    changes, level, topics = ranked(
        ["Nous utilisons vos contenus pour fournir le service."],
        ["Nous utilisons vos contenus pour entraîner nos modèles."])
    assert level == "high" and "ai-training" in topics


def test_french_objection_right_is_opt_out():
    _, level, topics = ranked(
        ["Vous pouvez nous écrire."],
        ["Vous pouvez nous écrire.", "Vous pouvez vous opposer à ce traitement à tout moment."])
    assert level == "high" and "opt-out" in topics


def test_curly_quotes_are_cosmetic():
    changes, level, topics = ranked(['We call it the "Service".'], ["We call it the “Service”."])
    assert [c.type for c in changes] == ["modified"]
    assert level == "cosmetic" and topics == ()


def test_plain_rewording_without_topic_is_medium_and_a_typo_fix_low():
    assert ranked(["The sky is blue today."], ["The sky looks very blue today."])[1] == "medium"
    assert ranked(["The sky is bleu and wide today."], ["The sky is blue and wide today."])[1] \
        == "low"


def test_a_new_sub_processor_row_is_one_high_addition():
    header = "Name | Purpose | Location"
    before = [header, "Google Cloud | Hosting | Ireland"]
    after = before + ["Cloudflare | Security | United States"]
    changes, level, topics = ranked(before, after, kind="row", key=True,
                                    section=("Annex 2: Sub-processors",))
    assert [(c.type, c.after) for c in changes] == [("added", "Cloudflare | Security | United States")]
    assert level == "high"
    assert {"sub-processors", "transfers"} <= set(topics)


def test_a_changed_location_is_one_modified_row():
    before = ["Name | Purpose | Location", "Acme Mail | E-mail delivery | Ireland"]
    after = ["Name | Purpose | Location", "Acme Mail | E-mail delivery | United States"]
    changes, level, topics = ranked(before, after, kind="row", key=True)
    assert [c.type for c in changes] == ["modified"]
    assert level == "high" and "transfers" in topics


def test_sub_processor_table_end_to_end(project, site):
    table = """<main><h2>Sub-processors</h2><p>Our sub-processors are:</p><table>
      <tr><th>Name</th><th>Purpose</th><th>Location</th></tr>
      <tr><td>Google Cloud</td><td>Hosting</td><td>Ireland</td></tr>{extra}</table></main>"""
    url = site.set("/sub", table.format(extra=""))
    project.write_config(target_toml("subs", url, document="Sub-processors"))
    project.run("check")
    site.set("/sub", table.format(
        extra="<tr><td>Cloudflare</td><td>Security</td><td>United States</td></tr>"))
    project.run("check")
    diff = project.json("diff", "subs")
    assert [(c["type"], c["after"]) for c in diff["changes"]] == [
        ("added", "Cloudflare | Security | United States")]
    assert diff["significance"] == "high"
    assert {"sub-processors", "transfers"} <= set(diff["topics"])
