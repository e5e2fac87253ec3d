"""Significance: what a change is about (topics) and how much it matters.

A transparent lexicon — topic → patterns in English, French and German — is matched against
the words a change inserted or deleted and against the clause it touched. Rules, in order:

- `cosmetic`: the texts differ only in case, quotes, punctuation or whitespace;
- `low`: a clause moved within its section, or an edit of at most two letters, no digit
  and no negation added or dropped (a typo fix);
- `high`: a clause added, removed or reworded that touches a topic of the lexicon (in the
  words changed, the clause, or the titles of the section it sits in);
- `medium`: any other change of wording, and a clause moved to another section (its words
  are the same, but it now falls under another heading: "we never share" → "we share").

The diff carries the highest significance of its changes and the union of their topics.
Users extend the lexicon with `[settings.lexicon]` (topic = [regex, ...]).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache

from diff_match_patch import diff_match_patch

from watcher.models import SIGNIFICANCE_ORDER, Change, Significance

__all__ = ["LEXICON", "TOPIC_LABELS", "assess", "topic_label"]

LEXICON: dict[str, tuple[str, ...]] = {
    "ai-training": (
        r"\btrain(s|ed|ing)?\b", r"\bmachine learning\b", r"\bimprove (our|the) (models?|services)",
        r"\bfine-?tun", r"\bentra[iî]n(er|ement|é|ons)", r"\bam[ée]liorer nos mod[èe]les",
        r"\bapprentissage automatique", r"\btrainier", r"\bKI-Modell"),
    "opt-out": (
        r"\bopt[- ]?(out|in)\b", r"\bobject(ion)?\b", r"\bconsent", r"\bwithdraw",
        r"\bopposition\b", r"\bvous opposer", r"\bconsentement", r"\bretirer",
        r"\bWiderspruch", r"\bwidersprechen", r"\bEinwilligung"),
    "sharing": (
        r"\bshar(e|es|ed|ing)\b", r"\bsell\b", r"\bsale of\b", r"\bdisclos", r"\bpartag",
        r"\bvend(re|ons)\b", r"\bcession\b", r"\bcommuniqu(er|ons) (vos|les) donn",
        r"\bweitergeb", r"\bverkauf"),
    "sub-processors": (
        r"\bsub-?processors?\b", r"\bthird[- ]part(y|ies)\b", r"\bservice providers?\b",
        r"\bvendors?\b", r"\bsous-traitants?\b", r"\btiers\b", r"\bprestataires?\b",
        r"\bUnterauftragsverarbeiter", r"\bDritte"),
    "transfers": (
        r"\btransfer", r"\boutside (of )?the (EEA|EU|European)", r"\bUnited States\b", r"(?-i:\bUSA\b|\bU\.S\.)",
        r"\bChina\b", r"servers? (are |is )?located", r"\bstandard contractual clauses",
        r"\badequacy\b", r"\btransferts?\b", r"\b[ÉE]tats-Unis\b", r"\bhors de l'(UE|EEE|Union)",
        r"\bChine\b", r"\bÜbermittlung", r"\bDrittland"),
    "retention": (
        r"\bretain", r"\bretention\b", r"\bkeep\b", r"\bstore[ds]?\b", r"\bdelet(e|ed|ion)\b",
        r"\bconserv(er|ons|ation|ées?)\b", r"\bdurée\b", r"\bsuppr(im|ess)", r"\baufbewahr",
        r"\bSpeicherdauer", r"\blösch"),
    "children": (
        r"\bchild(ren)?\b", r"\bminors?\b", r"\bunder (the age of )?1[3-8]\b", r"\bparental",
        r"\benfants?\b", r"\bmineurs?\b", r"\bKinder", r"\bMinderjährig"),
    "tracking": (
        r"\bcookies?\b", r"\btrack(ing|ers?)\b", r"\bpixels?\b", r"\badvertis", r"\banalytics\b",
        r"\btraceurs?\b", r"\bpublicit", r"\bWerbung", r"\bTracking"),
    "user-rights": (
        r"\bright (to|of) (access|rectif|eras|delet|portab|object|restrict)", r"\byour rights\b",
        r"\bdata subject", r"\bdroit (d'accès|à l'effacement|de rectification|à la portabilité)",
        r"\bvos droits\b", r"\bAuskunft", r"\bIhre Rechte"),
    "legal-basis": (
        r"\blegal basis\b", r"\blawful basis\b", r"\blegitimate interests?\b",
        r"\bperformance of (a|the|our) contract", r"\bbase (légale|juridique)",
        r"\bintér[êe]t légitime", r"\bRechtsgrundlage", r"\bberechtigte[ns]? Interesse"),
    "law-enforcement": (
        r"\blaw enforcement\b", r"\bgovernment (agenc|authorit|request)", r"\bsubpoena",
        r"\bcourt order", r"\bpublic authorities\b", r"\bautorités publiques",
        r"\bforces de l'ordre", r"\bréquisition", r"\bBehörden", r"\bStrafverfolgung"),
    "disputes": (
        r"\barbitrat", r"\bliabilit", r"\bjurisdiction", r"\bgoverning law\b", r"\bclass action",
        r"\bindemnif", r"\bwarrant(y|ies)\b", r"\barbitrage\b", r"\bresponsabilit[ée]",
        r"\bjuridiction", r"\btribunaux?\b", r"\bdroit applicable", r"\bSchiedsverfahren",
        r"\bHaftung", r"\bGerichtsstand"),
}

TOPIC_LABELS = {"ai-training": "AI training", "opt-out": "opt-out",
                "sharing": "sharing", "sub-processors": "sub-processors",
                "transfers": "transfers", "retention": "retention", "children": "children",
                "tracking": "tracking", "user-rights": "user rights",
                "legal-basis": "legal basis", "law-enforcement": "law enforcement",
                "disputes": "disputes and liability"}

_NEGATION = re.compile(r"\b(?:not|no|never|nor|cannot|without|\w+n['’]t|ne|n['’]|pas|jamais"
                       r"|aucune?|sans|ni|nicht|kein\w*|nie|niemals|ohne)\b", re.IGNORECASE)
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"',
                         "«": '"', "»": '"', "´": "'", "`": "'"})


def topic_label(topic: str) -> str:
    return TOPIC_LABELS.get(topic, topic)


@lru_cache(maxsize=32)
def _compiled(extra: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, re.Pattern]:
    lexicon = {topic: list(patterns) for topic, patterns in LEXICON.items()}
    for topic, patterns in extra:
        lexicon.setdefault(topic, []).extend(patterns)
    return {topic: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
            for topic, patterns in lexicon.items()}


def topics_of(text: str, lexicon: dict[str, re.Pattern]) -> list[str]:
    return [topic for topic, pattern in lexicon.items() if pattern.search(text)]


def _skeleton(text: str) -> str:
    """The text with case, quotes, punctuation and whitespace folded away."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def _edit_distance(before: str, after: str) -> int:
    engine = diff_match_patch()
    return engine.diff_levenshtein(engine.diff_main(_skeleton(before), _skeleton(after), False))


def _negations(text: str) -> int:
    return len(_NEGATION.findall(text))


def _is_typo_fix(change: Change) -> bool:
    """At most two letters changed, no digit ('30 days' to '90 days' is no typo) and no
    negation added or dropped ('can' to "can't" is two letters)."""
    before, after = change.before or "", change.after or ""
    edited = "".join(op.text for op in change.inline if op.op != "equal")
    return not any(ch.isdigit() for ch in edited) and _edit_distance(before, after) <= 2 \
        and _negations(before) == _negations(after)


def _assess_change(change: Change, lexicon: dict[str, re.Pattern]) -> Change:
    if change.type == "modified" and _skeleton(change.before or "") == _skeleton(change.after or ""):
        return replace(change, topics=(), significance="cosmetic")
    changed_words = " ".join(op.text for op in change.inline if op.op != "equal")
    topics = topics_of(changed_words, lexicon)
    headings = " ".join(change.section[-2:] + change.from_section[-2:])
    for text in (change.after, change.before, headings):
        topics += [t for t in topics_of(text or "", lexicon) if t not in topics]
    level: Significance
    if change.type == "moved":
        elsewhere = change.from_section and change.from_section != change.section
        level = "medium" if elsewhere else "low"
    elif change.type == "modified" and _is_typo_fix(change):
        level = "low"
    elif topics:
        level = "high"
    else:
        level = "medium"
    return replace(change, topics=tuple(topics), significance=level)


def assess(changes: Sequence[Change], extra: Mapping[str, Sequence[str]] | None = None
           ) -> tuple[list[Change], Significance | None, tuple[str, ...]]:
    """Changes with their topics and significance, plus the diff's highest level and topics."""
    lexicon = _compiled(tuple(sorted((k, tuple(v)) for k, v in (extra or {}).items())))
    assessed = [_assess_change(change, lexicon) for change in changes]
    if not assessed:
        return [], None, ()
    top = max((c.significance for c in assessed), key=SIGNIFICANCE_ORDER.index)
    ranked = [c for c in assessed if c.significance == top]
    topics: list[str] = []
    for change in ranked + assessed:
        topics += [t for t in change.topics if t not in topics]
    return assessed, top, tuple(topics)
