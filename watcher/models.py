"""The plain, frozen data passed between the stages of the pipeline.

config -> Target; fetch -> Fetched; normalize -> Clause list; diff -> Change list;
store -> Version / CheckRecord; check -> CheckResult. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ClauseKind = Literal["heading", "paragraph", "item", "row"]
ChangeType = Literal["added", "removed", "modified", "moved"]
CheckStatus = Literal["new", "changed", "unchanged", "failed", "suspect"]
Significance = Literal["high", "medium", "low", "cosmetic"]
SIGNIFICANCE_ORDER: tuple[Significance, ...] = ("cosmetic", "low", "medium", "high")


@dataclass(frozen=True)
class Clause:
    """One block-level unit of a document: a heading, paragraph, list item or table row."""

    kind: ClauseKind
    text: str
    section: tuple[str, ...] = ()
    level: int = 0
    """Heading level (1-7) for headings, list depth (1-based) for items, 0 otherwise."""
    key: str | None = None
    """For table rows: the first cell, which identifies the record (e.g. a sub-processor)."""

    def line(self) -> str:
        """The clause as one line of the canonical Markdown-like rendering."""
        if self.kind == "heading":
            return "#" * max(1, min(self.level, 6)) + " " + self.text
        if self.kind == "item":
            return "  " * max(0, self.level - 1) + "- " + self.text
        if self.kind == "row":
            return "| " + self.text + " |"
        return self.text


def render_document(clauses: tuple[Clause, ...] | list[Clause]) -> str:
    """The canonical text of a clause list: what is hashed, shown and exported."""
    return "\n\n".join(c.line() for c in clauses) + ("\n" if clauses else "")


def document_sha256(clauses: tuple[Clause, ...] | list[Clause]) -> str:
    return hashlib.sha256(render_document(clauses).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Fetched:
    """The outcome of fetching one URL: either content or an error."""

    url: str
    final_url: str = ""
    status: int | None = None
    content: bytes = b""
    content_type: str = ""
    text: str = ""
    """The body decoded to text (HTML); empty for binary documents such as PDF."""
    error: str | None = None
    fetcher: str = "http"
    duration_ms: int = 0
    screenshot: bytes = field(default=b"", repr=False)
    """A full-page PNG taken by the browser when the target asks for one."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class InlineOp:
    op: Literal["equal", "insert", "delete"]
    text: str


@dataclass(frozen=True)
class Change:
    """One clause-level difference between two versions."""

    type: ChangeType
    section: tuple[str, ...]
    before: str | None
    after: str | None
    inline: tuple[InlineOp, ...] = ()
    kind: ClauseKind = "paragraph"
    topics: tuple[str, ...] = ()
    significance: Significance | None = None
    old_index: int | None = None
    new_index: int | None = None
    from_section: tuple[str, ...] = ()
    """For a `moved` clause: the section it left (`section` is where it went)."""


@dataclass(frozen=True)
class Summary:
    added: int = 0
    removed: int = 0
    modified: int = 0
    moved: int = 0

    @classmethod
    def of(cls, changes: tuple[Change, ...] | list[Change]) -> Summary:
        counts = {"added": 0, "removed": 0, "modified": 0, "moved": 0}
        for change in changes:
            counts[change.type] += 1
        return cls(**counts)

    def as_dict(self) -> dict[str, int]:
        return {"added": self.added, "removed": self.removed, "modified": self.modified,
                "moved": self.moved}

    def describe(self) -> str:
        parts = [f"{n} clause{'s' if n != 1 else ''} {word}" for word, n in (
            ("added", self.added), ("removed", self.removed),
            ("modified", self.modified), ("moved", self.moved)) if n]
        return ", ".join(parts) or "no clause changed"


@dataclass(frozen=True)
class Diff:
    """The changes between two versions of one target's document."""

    target: str
    from_version: int | None
    to_version: int
    changes: tuple[Change, ...]
    significance: Significance | None = None
    topics: tuple[str, ...] = ()

    @property
    def summary(self) -> Summary:
        return Summary.of(self.changes)


@dataclass(frozen=True)
class Version:
    """A stored version of a target's document."""

    target: str
    number: int
    recorded_at: datetime
    sha256: str
    clauses: tuple[Clause, ...] = field(default=(), repr=False)
    summary: Summary | None = None
    significance: Significance | None = None
    topics: tuple[str, ...] = ()
    revert_of: int | None = None


@dataclass(frozen=True)
class CheckResult:
    """What one check of one target found and recorded."""

    target: str
    status: CheckStatus
    at: datetime
    reason: str | None = None
    version: int | None = None
    diff: Diff | None = None
    fetcher: str | None = None
    http_status: int | None = None
    duration_ms: int = 0

    @property
    def summary(self) -> Summary | None:
        return self.diff.summary if self.diff is not None and self.diff.from_version else None
