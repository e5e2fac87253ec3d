"""Each change is ranked by what it means, in English and French."""

import pytest

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


@pytest.mark.parametrize("before, after", [
    ("You can opt out of AI training.", "You can't opt out of AI training."),
    ("Your chats are used to train our models.", "Your chats aren't used to train our models."),
    ("Nous utilisons vos contenus pour entraîner nos modèles.",
     "Nous n'utilisons vos contenus pour entraîner nos modèles."),
])
def test_a_negation_is_never_a_typo_fix(before, after):
    changes, level, topics = ranked([before], [after])
    assert [c.type for c in changes] == ["modified"]
    assert level == "high" and "ai-training" in topics


def test_a_clause_moved_to_another_section_matters_more_than_a_reordering():
    def clause(text, section):
        return Clause("paragraph", text, section)
    never, partners = ("Data we never share",), ("Data we share with partners",)
    before = [clause("Your contact list.", never), clause("Your messages.", never),
              clause("Your usage statistics.", partners)]
    reordered = [before[1], before[0], before[2]]
    changes, level, _ = assess(diff_clauses(before, reordered))
    assert [c.type for c in changes] == ["moved"] and level == "low"

    moved = [before[1], clause("Your contact list.", partners), before[2]]
    changes, level, topics = assess(diff_clauses(before, moved))
    assert [(c.type, c.from_section, c.section) for c in changes] == \
        [("moved", never, partners)]
    assert level == "medium" and "sharing" in topics


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
