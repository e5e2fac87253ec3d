"""PDF documents -> clauses, with pypdf.

This module owns reading a PDF's text and cutting it into clauses: numbered headings
(`3.4.2.`, `Article 5`, `Section 2`) start sections, list items (`•`, `-`, `(a)`) and
paragraphs become clauses. A PDF without extractable text (scanned, protected), one pypdf
cannot parse, or one encrypted in a way it cannot decrypt here (AES needs `cryptography`, which
is not installed; certificate encryption is not supported) raises NormalizeError, so the check
fails instead of recording an empty version or stopping the run.
"""

from __future__ import annotations

import io
import re

from pypdf import PdfReader
from pypdf.errors import DependencyError, PyPdfError

from watcher.models import Clause
from watcher.normalize import NormalizeError, clean_text

__all__ = ["pdf_to_clauses"]

_NUMBERED = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.?\s+\S")
_NAMED = re.compile(r"^(Article|Section|Chapter|Annex|Schedule|Appendix)\s+[\dIVXLC]+\b",
                    re.IGNORECASE)
_ITEM = re.compile(r"^(?:[•●▪‣◦\-–*]|\(?[a-z0-9]{1,3}\))\s+")
_SENTENCE_END = re.compile(r"[.:;!?]$")
MAX_HEADING_CHARS = 120
_ENCRYPTED = re.compile(rb"/Encrypt\b")
"""An encrypted PDF's trailer names its encryption dictionary; a trailer is never compressed."""


def pdf_to_clauses(content: bytes) -> list[Clause]:
    """The clauses of a PDF; raises NormalizeError when it has no readable text."""
    lines = [line.strip() for page in _page_texts(content) for line in page.splitlines()]
    if not any(lines):
        raise NormalizeError("the PDF has no extractable text (a scanned image or protected "
                             "document?); it needs OCR before it can be watched")
    return _clauses(lines)


def _page_texts(content: bytes) -> list[str]:
    """The text of each page, read with an empty password if the PDF is encrypted; raises
    NormalizeError when pypdf cannot read the file or lacks what it needs to decrypt it."""
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise NormalizeError("the PDF is encrypted with a password; its text cannot be read")
        return [page.extract_text() or "" for page in reader.pages]
    except (DependencyError, NotImplementedError) as error:
        if _ENCRYPTED.search(content):
            raise NormalizeError(f"the PDF is encrypted in a way this installation cannot "
                                 f"decrypt ({error}); its text cannot be read") from None
        raise NormalizeError(f"the PDF cannot be read: {error}") from None
    except (PyPdfError, ValueError, KeyError) as error:
        raise NormalizeError(f"the PDF cannot be read: {error}") from None


def _heading_level(line: str) -> int:
    numbered = _NUMBERED.match(line)
    title = line[numbered.end(1):].lstrip(". ") if numbered else line
    if len(line) > MAX_HEADING_CHARS or _SENTENCE_END.search(title):
        return 0
    if numbered:
        return min(6, numbered.group(1).count(".") + 1)
    return 1 if _NAMED.match(line) else 0


def _clauses(lines: list[str]) -> list[Clause]:
    clauses: list[Clause] = []
    headings: list[tuple[int, str]] = []
    block: list[str] = []
    block_kind = "paragraph"
    width = max((len(line) for line in lines), default=0)

    def flush() -> None:
        nonlocal block, block_kind
        text = clean_text(" ".join(block))
        if text:
            clauses.append(Clause(kind=block_kind, text=text,  # type: ignore[arg-type]
                                  section=tuple(t for _, t in headings),
                                  level=1 if block_kind == "item" else 0))
        block, block_kind = [], "paragraph"

    for line in lines:
        if not line:
            flush()
            continue
        level = _heading_level(line)
        if level:
            flush()
            while headings and headings[-1][0] >= level:
                headings.pop()
            clauses.append(Clause(kind="heading", text=clean_text(line), level=level,
                                  section=tuple(t for _, t in headings)))
            headings.append((level, clean_text(line)))
            continue
        if _ITEM.match(line):
            flush()
            block_kind = "item"
            line = _ITEM.sub("", line)
        block.append(line)
        if _SENTENCE_END.search(line) and len(line) < 0.8 * width:
            flush()
    flush()
    return clauses
