"""Clause-level diff: align two clause lists, then diff each modified clause word by word.

Alignment runs in three passes. Identical clauses are matched first, in order (a
diff-match-patch diff over one character per distinct clause). Inside each run of removed
and added clauses, rewordings are paired by word overlap (`modified`). Finally a removed
clause whose text reappears among the added ones elsewhere is a `moved` clause. Each
modified pair gets a word-level diff with semantic cleanup.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from diff_match_patch import diff_match_patch

from watcher.models import Change, Clause, InlineOp

__all__ = ["diff_clauses", "word_diff", "similarity"]

REWORDING_THRESHOLD = 0.5
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|\s+|[^\w\s]", re.UNICODE)
_WORD = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)
_OPS = {0: "equal", 1: "insert", -1: "delete"}


def _engine() -> diff_match_patch:
    engine = diff_match_patch()
    engine.Diff_Timeout = 2.0  # never 0: unrelated long texts would take minutes
    return engine


def _char(index: int) -> str:
    """The index-th character usable as a symbol (skipping the surrogate range)."""
    code = 0x100 + index
    return chr(code if code < 0xD800 else code + 0x800)


def _encode(sequences: Sequence[Sequence[str]]) -> tuple[list[str], dict[str, str]]:
    """Map each distinct item to one character, so dmp can diff sequences of items.

    Returns the encoded strings and the table from character back to item.
    """
    table: dict[str, str] = {}
    encoded = []
    for sequence in sequences:
        chars = []
        for item in sequence:
            char = table.get(item)
            if char is None:
                char = table[item] = _char(len(table))
            chars.append(char)
        encoded.append("".join(chars))
    return encoded, {char: item for item, char in table.items()}


def _item_diff(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """dmp diff of two item sequences as (op, count) runs."""
    (ca, cb), _ = _encode([a, b])
    return [(op, len(chars)) for op, chars in _engine().diff_main(ca, cb, False)]


def word_diff(before: str, after: str) -> tuple[InlineOp, ...]:
    """Word-level diff of two clause texts, cleaned up to read as whole words and phrases."""
    tokens_a, tokens_b = _TOKEN.findall(before), _TOKEN.findall(after)
    (ca, cb), lookup = _encode([tokens_a, tokens_b])
    engine = _engine()
    diffs = engine.diff_main(ca, cb, False)
    engine.diff_cleanupSemantic(diffs)  # on tokens, so that no edit starts inside a word
    return tuple(InlineOp(_OPS[op], "".join(lookup[c] for c in chars))
                 for op, chars in diffs if chars)


def similarity(before: str, after: str) -> float:
    """Share of words the two texts have in common (0..1), counted as multisets."""
    words_a, words_b = _WORD.findall(before.lower()), _WORD.findall(after.lower())
    if not words_a or not words_b:
        return 0.0
    common = sum((Counter(words_a) & Counter(words_b)).values())
    return 2 * common / (len(words_a) + len(words_b))


def _key(clause: Clause) -> str:
    return f"{clause.kind}\x00{clause.text}"


def diff_clauses(old: Sequence[Clause], new: Sequence[Clause]) -> list[Change]:
    """The changes that turn the clause list `old` into `new`, in reading order of `new`."""
    removed: list[int] = []
    added: list[int] = []
    anchor: dict[int, int] = {}
    paired: list[tuple[int, int]] = []
    i = j = 0
    runs = _item_diff([_key(c) for c in old], [_key(c) for c in new])
    block_removed: list[int] = []
    block_added: list[int] = []
    for op, count in runs + [(0, 0)]:
        if op == 0:
            pairs = _pair_rewordings(old, new, block_removed, block_added)
            paired.extend(pairs)
            removed.extend(r for r in block_removed if r not in {p[0] for p in pairs})
            added.extend(a for a in block_added if a not in {p[1] for p in pairs})
            block_removed, block_added = [], []
            i, j = i + count, j + count
        elif op == -1:
            block_removed.extend(range(i, i + count))
            anchor.update((r, j) for r in range(i, i + count))
            i += count
        else:
            block_added.extend(range(j, j + count))
            j += count
    changes = [_modified(old[a], new[b], a, b) for a, b in paired]
    changes += _moves_and_rest(old, new, removed, added)
    return sorted(changes, key=lambda c: (c.new_index, 1) if c.new_index is not None
                  else (anchor[c.old_index], 0))


def _pair_rewordings(old: Sequence[Clause], new: Sequence[Clause],
                     removed: list[int], added: list[int]) -> list[tuple[int, int]]:
    """Pair removed and added clauses that read as rewordings, keeping their order."""
    if not removed or not added:
        return []
    if len(removed) * len(added) > 2500:
        return _pair_rewordings_by_position(old, new, removed, added)
    scores = [[_pairing_score(old[r], new[a]) for a in added] for r in removed]
    # Longest order-preserving chain of good pairs (weighted LCS over the score matrix).
    n, m = len(removed), len(added)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for x in range(n - 1, -1, -1):
        for y in range(m - 1, -1, -1):
            take = scores[x][y] + best[x + 1][y + 1] if scores[x][y] >= REWORDING_THRESHOLD else 0
            best[x][y] = max(take, best[x + 1][y], best[x][y + 1])
    pairs, x, y = [], 0, 0
    while x < n and y < m:
        if scores[x][y] >= REWORDING_THRESHOLD and best[x][y] == scores[x][y] + best[x + 1][y + 1]:
            pairs.append((removed[x], added[y]))
            x, y = x + 1, y + 1
        elif best[x + 1][y] >= best[x][y + 1]:
            x += 1
        else:
            y += 1
    return pairs


def _pairing_score(before: Clause, after: Clause) -> float:
    """How much two clauses read as one clause reworded; table rows pair by their key."""
    if before.kind != after.kind:
        return 0.0
    if before.kind == "row" and before.key and before.key == after.key:
        return 1.0
    return similarity(before.text, after.text)


def _pair_rewordings_by_position(old, new, removed, added) -> list[tuple[int, int]]:
    """For very large rewritten regions: pair clauses at the same offset when similar."""
    return [(r, a) for r, a in zip(removed, added, strict=False)
            if _pairing_score(old[r], new[a]) >= REWORDING_THRESHOLD]


def _modified(before: Clause, after: Clause, a: int, b: int) -> Change:
    return Change(type="modified", section=after.section, before=before.text, after=after.text,
                  inline=word_diff(before.text, after.text), kind=after.kind,
                  old_index=a, new_index=b)


def _moves_and_rest(old: Sequence[Clause], new: Sequence[Clause],
                    removed: list[int], added: list[int]) -> list[Change]:
    waiting: dict[str, list[int]] = {}
    for a in added:
        waiting.setdefault(_key(new[a]), []).append(a)
    moved_to: dict[int, int] = {}
    for r in removed:
        targets = waiting.get(_key(old[r]))
        if targets:
            moved_to[r] = targets.pop(0)
    changes = []
    for r in removed:
        clause = old[r]
        if r in moved_to:
            b = moved_to[r]
            changes.append(Change(type="moved", section=new[b].section, before=clause.text,
                                  after=new[b].text, kind=clause.kind, old_index=r, new_index=b,
                                  from_section=clause.section))
        else:
            changes.append(Change(type="removed", section=clause.section, before=clause.text,
                                  after=None, kind=clause.kind, old_index=r))
    landed = set(moved_to.values())
    for a in added:
        if a not in landed:
            changes.append(Change(type="added", section=new[a].section, before=None,
                                  after=new[a].text, kind=new[a].kind, new_index=a))
    return changes
