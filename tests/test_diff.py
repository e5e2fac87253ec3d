"""Clause-level diff: each change type, word-level insertions, and what is no change."""

from watcher.diff import diff_clauses, word_diff
from watcher.models import Clause


def doc(*texts, section=("Policy",)):
    return [Clause(kind="paragraph", text=t, section=section) for t in texts]


def kinds(changes):
    return [(c.type, c.before, c.after) for c in changes]


def test_identical_documents_have_no_changes():
    assert diff_clauses(doc("A a.", "B b."), doc("A a.", "B b.")) == []


def test_added_clause():
    changes = diff_clauses(doc("Alpha one.", "Gamma three."),
                           doc("Alpha one.", "Beta two is new.", "Gamma three."))
    assert kinds(changes) == [("added", None, "Beta two is new.")]


def test_removed_clause():
    changes = diff_clauses(doc("Alpha one.", "Beta two.", "Gamma three."),
                           doc("Alpha one.", "Gamma three."))
    assert kinds(changes) == [("removed", "Beta two.", None)]


def test_reworded_clause_is_one_modification_with_word_level_ops():
    before = "We keep your personal data for 30 days after you close your account."
    after = "We keep your personal data for 90 days after you close your account."
    changes = diff_clauses(doc("Intro.", before, "End."), doc("Intro.", after, "End."))
    assert kinds(changes) == [("modified", before, after)]
    ops = [(op.op, op.text) for op in changes[0].inline if op.op != "equal"]
    assert ops == [("delete", "30"), ("insert", "90")]
    assert changes[0].section == ("Policy",)


def test_unrelated_replacement_is_a_removal_and_an_addition():
    changes = diff_clauses(doc("Intro.", "We sell nothing to anyone."),
                           doc("Intro.", "Arbitration takes place in Delaware courts."))
    assert sorted(c.type for c in changes) == ["added", "removed"]


def test_moved_clause():
    old = doc("One is first.", "Two is second.", "Three is third.", "Four is fourth.")
    new = doc("Two is second.", "Three is third.", "Four is fourth.", "One is first.")
    changes = diff_clauses(old, new)
    assert kinds(changes) == [("moved", "One is first.", "One is first.")]


def test_changes_come_in_reading_order_of_the_new_document():
    old = doc("A first clause.", "B second clause.", "C third clause.", "D fourth clause.")
    new = doc("A first clause, changed.", "B second clause.", "New clause here.",
              "D fourth clause.")
    changes = diff_clauses(old, new)
    assert [c.type for c in changes] == ["modified", "removed", "added"] or \
        [c.type for c in changes] == ["modified", "added", "removed"]
    assert changes[0].before == "A first clause."


def test_heading_path_change_alone_is_no_change_of_its_clauses():
    old = [Clause("heading", "1. Data", (), 2), Clause("paragraph", "We keep logs.", ("1. Data",))]
    new = [Clause("heading", "1. Your data", (), 2),
           Clause("paragraph", "We keep logs.", ("1. Your data",))]
    changes = diff_clauses(old, new)
    assert kinds(changes) == [("modified", "1. Data", "1. Your data")]


def test_word_diff_keeps_whole_words():
    ops = word_diff("you can object by e-mail", "you can object by e-mail or by post")
    assert [(o.op, o.text) for o in ops] == [("equal", "you can object by e-mail"),
                                            ("insert", " or by post")]


def test_large_documents_with_three_changed_sentences():
    old = [f"Clause number {i} says that data item {i} is kept for {i} days." for i in range(2000)]
    new = list(old)
    new[100] = new[100].replace("kept", "stored")
    new[1000] = new[1000] + " Users may opt out."
    del new[1500]
    changes = diff_clauses(doc(*old), doc(*new))
    assert [c.type for c in changes] == ["modified", "modified", "removed"]


def test_a_changed_number_is_replaced_whole_even_when_digits_overlap():
    ops = word_diff("We keep logs for 12 months.", "We keep logs for 24 months.")
    assert [(o.op, o.text) for o in ops if o.op != "equal"] == [("delete", "12"),
                                                               ("insert", "24")]
