"""Normalization: an HTML page becomes an ordered list of clauses.

This module owns what counts as the *text* of a document. It drops what a reader does not
see (scripts, styles, hidden elements), applies a target's `select` / `remove` selectors
(or finds the main content when there is no `select`), and walks the remaining tree into
block-level clauses (headings, paragraphs, list items, table rows), each with the path of
headings it sits under. Inline markup never splits words, and whitespace and invisible
Unicode characters are folded, so the same visible text always gives byte-identical output.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from watcher.models import Clause, ClauseKind

__all__ = ["NormalizeError", "Range", "Selection", "clean_text", "html_to_clauses", "check_selector",
           "drop_ignored", "DATE_PATTERNS"]

INVISIBLE_TAGS = frozenset({
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed",
    "head", "title", "meta", "link", "input", "textarea",
    "video", "audio", "picture", "img", "map", "dialog",
})
BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
HEADING_LEVELS = {f"h{n}": n for n in range(1, 7)}
LIST_TAGS = frozenset({"ul", "ol", "menu"})
BOLD_TAGS = frozenset({"b", "strong"})
PSEUDO_HEADING_LEVEL = 7
MAX_PSEUDO_HEADING_CHARS = 160
CHROME_SELECTOR = (
    "nav, header, footer, aside, [role=navigation], [role=banner], [role=contentinfo], "
    "[role=search], [role=dialog], [aria-modal=true]"
)
BANNER_HINT = re.compile(r"cookie|consent|gdpr|onetrust|didomi|cookiebot|usercentrics", re.I)
BANNER_SHAPE = re.compile(r"banner|bar|notice|notification|popup|pop-up|modal|overlay|dialog|"
                          r"toast|prompt|onetrust|didomi|cookiebot|usercentrics", re.I)
BANNER_TAGS = frozenset({"div", "section", "aside", "form"})
BANNER_CONTROLS = "button, [role=button]"
FIXED_STYLE = re.compile(r"position\s*:\s*(fixed|sticky)", re.I)
MAX_BANNER_CHARS = 2000
HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)

_SPACES = re.compile(r"\s+")
_INVISIBLE_CHARS = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None) | {
    code: None for code in (*range(0x20), *range(0x7f, 0xa0)) if chr(code) not in "\t\n\v\f\r"}


class NormalizeError(Exception):
    """The page cannot give a document: a selector matched nothing, or no text is left."""


@dataclass(frozen=True)
class Range:
    """The content between two elements, as Open Terms Archive's range selectors say it."""

    start: str
    end: str
    start_after: bool = False
    """Start after the start element (OTA `startAfter`) instead of before it (`startBefore`)."""
    end_after: bool = False
    """End after the end element (`endAfter`) instead of before it (`endBefore`)."""


@dataclass(frozen=True)
class Selection:
    """Which part of a page is the document."""

    select: tuple[str | Range, ...] = ()
    remove: tuple[str, ...] = ()
    track_links: bool = False
    """Record link targets (without tracking parameters) as part of the text."""


def clean_text(text: str) -> str:
    """Fold Unicode spaces, drop zero-width, soft-hyphen and control characters (C0 other than
    whitespace, DEL, C1), collapse whitespace."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE_CHARS)
    text = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in text) \
        if not text.isascii() else text
    return _SPACES.sub(" ", text).strip()


def check_selector(selector: str) -> str | None:
    """Return why a CSS selector is invalid, or None when the parser accepts it."""
    try:
        LexborHTMLParser("<html></html>").css(selector)
    except Exception as error:  # selectolax raises plain exceptions for bad selectors
        return str(error) or "invalid selector"
    return None


def html_to_clauses(html: str, selection: Selection = Selection()) -> list[Clause]:
    """Turn an HTML page into the ordered clauses of the document it holds.

    Raises NormalizeError when a `select` selector matches nothing or no text remains.
    """
    tree = LexborHTMLParser(html)
    _drop_invisible(tree)
    _decode_cloudflare_emails(tree)
    for selector in selection.remove:
        for node in tree.css(selector):
            node.decompose()
    roots = _select_roots(tree, selection.select)
    clauses = _Walker(selection.track_links).walk(roots)
    if not clauses:
        raise NormalizeError("the selected content has no visible text")
    return clauses


def _drop_invisible(tree: LexborHTMLParser) -> None:
    for node in tree.css(", ".join(sorted(INVISIBLE_TAGS))):
        node.decompose()
    for node in tree.css("[hidden], [style]"):
        if "hidden" in node.attributes or HIDDEN_STYLE.search(node.attributes.get("style") or ""):
            node.decompose()


def _decode_cloudflare_emails(tree: LexborHTMLParser) -> None:
    """Cloudflare replaces e-mail addresses by `data-cfemail` hex, XOR-ed with its first byte."""
    for node in tree.css("[data-cfemail]"):
        encoded = node.attributes.get("data-cfemail") or ""
        try:
            data = bytes.fromhex(encoded)
        except ValueError:
            continue
        if data:
            node.replace_with(bytes(b ^ data[0] for b in data[1:]).decode("utf-8", "replace"))


def _select_roots(tree: LexborHTMLParser, select: Sequence[str | Range]) -> list[LexborNode]:
    if not select:
        return [_main_content(tree)]
    css = [s for s in select if isinstance(s, str)]
    ranges = [_range_root(tree, r) for r in select if isinstance(r, Range)]
    matched = tree.css(", ".join(css)) if css else []
    if css and not matched:
        raise NormalizeError(f"selector {', '.join(css)!r} matched nothing on the page")
    if not ranges:
        return _outermost(matched)
    order = {node.mem_id: index for index, node in enumerate(tree.root.traverse())}
    placed = [((order[node.mem_id], 0), node) for node in _outermost(matched)]
    placed += [((order[start.mem_id], 1 if after else -1), root) for start, after, root in ranges]
    return [root for _, root in sorted(placed, key=lambda pair: pair[0])]


_START, _END = "\ue000policy-watcher-range-start\ue000", "\ue000policy-watcher-range-end\ue000"


def _range_root(tree: LexborHTMLParser,
                selection: Range) -> tuple[LexborNode, bool, LexborNode]:
    """The range's start element in `tree`, whether the range starts after it, and the elements
    between the range's two boundaries as a parsed fragment."""
    copy = LexborHTMLParser(tree.html or "")
    start, end = copy.css_first(selection.start), copy.css_first(selection.end)
    for name, node in (("start", start), ("end", end)):
        if node is None:
            raise NormalizeError(f"range {name} selector "
                                 f"{getattr(selection, name)!r} matched nothing on the page")
    (start.insert_after if selection.start_after else start.insert_before)(_START)
    (end.insert_after if selection.end_after else end.insert_before)(_END)
    html = copy.html or ""
    first, last = html.find(_START), html.find(_END)
    if last < first:
        raise NormalizeError(f"range end {selection.end!r} comes before its start "
                             f"{selection.start!r} on the page")
    fragment = LexborHTMLParser(html[first + len(_START):last])
    anchor = tree.css_first(selection.start) or tree.root
    return anchor, selection.start_after, fragment.body or fragment.root


def _outermost(nodes: Iterable[LexborNode]) -> list[LexborNode]:
    chosen: list[LexborNode] = []
    ids: set[int] = set()
    for node in nodes:
        if node.mem_id in ids:
            continue
        ancestor, nested = node.parent, False
        while ancestor is not None:
            if ancestor.mem_id in ids:
                nested = True
                break
            ancestor = ancestor.parent
        if not nested:
            chosen.append(node)
            ids.add(node.mem_id)
    return chosen


def _main_content(tree: LexborHTMLParser) -> LexborNode:
    """Without `select`: the main element (or the body) less navigation and cookie banners."""
    root = tree.css_first("main, [role=main]")
    if root is None:
        articles = tree.css("article")
        root = articles[0] if len(articles) == 1 else (tree.body or tree.root)
    keep = {root.mem_id}
    ancestor = root.parent
    while ancestor is not None:
        keep.add(ancestor.mem_id)
        ancestor = ancestor.parent
    for node in root.css(CHROME_SELECTOR):
        node.decompose()
    for node in root.css("[id], [class]"):
        if node.mem_id not in keep and _looks_like_banner(node):
            node.decompose()
    return root


def _looks_like_banner(node: LexborNode) -> bool:
    """A cookie or consent notice: a block container named or placed like a banner (a bar, a
    modal, fixed on screen), with buttons, short and without section headings. Policy text
    that merely mentions cookies or consent in its ids or classes never is one."""
    if node.tag not in BANNER_TAGS:
        return False
    hint = (node.attributes.get("id") or "") + " " + (node.attributes.get("class") or "")
    if not BANNER_HINT.search(hint):
        return False
    placed = BANNER_SHAPE.search(hint) or FIXED_STYLE.search(node.attributes.get("style") or "")
    return bool(placed) and _has_controls(node) and \
        len(node.text(deep=True)) <= MAX_BANNER_CHARS and \
        node.css_first("h1, h2, h3, [role=heading]") is None


def _has_controls(node: LexborNode) -> bool:
    return any(control.mem_id != node.mem_id for control in node.css(BANNER_CONTROLS))


_MONTHS = (r"(jan(uary|vier)?|feb(ruary)?|f[ée]v(rier)?|mar(ch|s)?|apr(il)?|avr(il)?|may|mai|"
           r"june?|juin|july?|juil(let)?|aug(ust)?|ao[uû]t|sep(t(ember)?)?|sept(embre)?|"
           r"oct(ober|obre)?|nov(ember|embre)?|dec(ember)?|d[ée]c(embre)?|januar|februar|"
           r"m[äa]rz|juni|juli|oktober|dezember)\.?")
_DAY, _MONTH_NUMBER = r"(0?[1-9]|[12]\d|3[01])", r"(0?[1-9]|1[0-2])"
_DATES = (
    rf"\b\d{{1,2}}(st|nd|rd|th|er)?\.?\s+{_MONTHS}\s+\d{{4}}\b",
    rf"\b{_MONTHS}\s+\d{{1,2}}(st|nd|rd|th)?,?\s+\d{{4}}\b",
    r"\b\d{4}-\d{2}-\d{2}\b",
    rf"(?<![\d.]){_DAY}\.{_MONTH_NUMBER}\.(19|20)\d\d(?!\d|\.\d)",
    rf"(?<![\d/])({_DAY}/{_MONTH_NUMBER}|{_MONTH_NUMBER}/{_DAY})/((19|20)\d\d|\d\d)(?![\d/])",
    r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日",
)
_DATE_LABELS = (r"last (updated|modified|revised)( on)?|effective( date| as of)?|updated( on)?|"
                r"derni[èe]re mise [àa] jour|mis [àa] jour le|en vigueur( le| au)?|date d'effet|"
                r"zuletzt aktualisiert|stand|g[üu]ltig ab")
DATE_PATTERNS = (
    rf"\b({_DATE_LABELS})\b\s*:?\s*(?={'|'.join(f'(?:{d})' for d in _DATES)})",
    *_DATES,
)
"""What `ignore_dates` removes: dates, and the labels ("Last updated:") right before one."""


def drop_ignored(clauses: list[Clause], patterns: Sequence[str]) -> list[Clause]:
    """Remove what matches `patterns` from clause texts; clauses left empty disappear."""
    if not patterns:
        return clauses
    ignored = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    kept = []
    for clause in clauses:
        text = clean_text(ignored.sub(" ", clause.text))
        if text:
            kept.append(Clause(kind=clause.kind, text=text, section=clause.section,
                               level=clause.level, key=clause.key))
    return kept


class _Walker:
    """Walks element trees depth-first and emits one clause per block of inline text."""

    def __init__(self, track_links: bool = False) -> None:
        self.track_links = track_links
        self.clauses: list[Clause] = []
        self.headings: list[tuple[int, str]] = []
        self.pieces: list[tuple[str, bool]] = []
        self.contexts: list[tuple[ClauseKind, int]] = [("paragraph", 0)]
        self.list_depth = 0
        self.bold_depth = 0

    def walk(self, roots: Iterable[LexborNode]) -> list[Clause]:
        for root in roots:
            self._walk(root)
            self._flush()
        return self.clauses

    def _walk(self, root: LexborNode) -> None:
        stack: list[tuple[LexborNode, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving:
                self._leave(node)
                continue
            tag = node.tag
            if tag == "-text":
                self.pieces.append((node.text_content or "", self.bold_depth > 0))
            elif tag == "br":
                self.pieces.append(("\n", False))
            elif tag == "tr":
                self._flush()
                self._emit_row(node)
            elif tag is not None and not tag.startswith("-"):
                self._enter(node)
                stack.append((node, True))
                children = []
                child = node.child
                while child is not None:
                    children.append(child)
                    child = child.next
                stack.extend((c, False) for c in reversed(children))

    def _enter(self, node: LexborNode) -> None:
        tag = node.tag
        if tag in BOLD_TAGS:
            self.bold_depth += 1
        if tag not in BLOCK_TAGS and node.attributes.get("role") != "heading":
            return
        if self._inside_heading(node):
            self.pieces.append((" ", self.bold_depth > 0))
            self.contexts.append(self.contexts[-1])
            return
        self._flush()
        if tag in HEADING_LEVELS or node.attributes.get("role") == "heading":
            self.contexts.append(("heading", HEADING_LEVELS.get(tag) or _aria_level(node)))
        elif tag == "li":
            self.contexts.append(("item", self.list_depth))
        elif tag in LIST_TAGS:
            self.list_depth += 1
            self.contexts.append(self.contexts[-1])
        else:
            self.contexts.append(("paragraph", 0) if self.contexts[-1][0] != "item"
                                 else self.contexts[-1])

    def _leave(self, node: LexborNode) -> None:
        tag = node.tag
        if tag in BOLD_TAGS:
            self.bold_depth -= 1
        if tag == "a" and self.track_links and node.attributes.get("href"):
            self.pieces.append((f" <{untracked(node.attributes['href'] or '')}>", False))
        if tag not in BLOCK_TAGS and node.attributes.get("role") != "heading":
            return
        if self._inside_heading(node):
            self.pieces.append((" ", self.bold_depth > 0))
            self.contexts.pop()
            return
        self._flush()
        if tag in LIST_TAGS:
            self.list_depth -= 1
        self.contexts.pop()

    def _inside_heading(self, node: LexborNode) -> bool:
        """A block inside a heading (`<h2><div>3. Sharing</div></h2>`) is part of its title."""
        own = node.tag in HEADING_LEVELS or node.attributes.get("role") == "heading"
        return not own and self.contexts[-1][0] == "heading"

    def _flush(self) -> None:
        """Emit the pending inline text; each line (a `<br>` ends one) is its own clause."""
        if not self.pieces:
            return
        pieces, self.pieces = self.pieces, []
        kind, level = self.contexts[-1]
        line: list[tuple[str, bool]] = []
        for piece in pieces + [("\n", False)]:
            if piece[0] != "\n":
                line.append(piece)
                continue
            text = clean_text("".join(t for t, _ in line))
            if text:
                self._emit(kind, level, text, all_bold=_all_bold(line))
            line = []

    def _emit(self, kind: ClauseKind, level: int, text: str, all_bold: bool) -> None:
        if kind == "paragraph" and all_bold and len(text) <= MAX_PSEUDO_HEADING_CHARS:
            kind, level = "heading", PSEUDO_HEADING_LEVEL
        section = tuple(title for _, title in self.headings)
        if kind == "heading":
            while self.headings and self.headings[-1][0] >= level:
                self.headings.pop()
            section = tuple(title for _, title in self.headings)
            self.headings.append((level, text))
        self.clauses.append(Clause(kind=kind, text=text, section=section, level=level))

    def _emit_row(self, row: LexborNode) -> None:
        cells = [clean_text(_inline_text(cell)) for cell in row.iter() if cell.tag in ("td", "th")]
        if any(cells):
            section = tuple(title for _, title in self.headings)
            self.clauses.append(Clause(kind="row", text=" | ".join(cells), section=section,
                                       key=cells[0] or None))


TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|gclid|gclsrc|dclid|fbclid|msclkid|yclid|igshid|mc_eid|mc_cid|_hsenc|_hsmi|"
    r"mkt_tok|ref|ref_src|trk|_ga|_gl|sessionid|session_id|sid|jsessionid|phpsessid)$", re.I)


def untracked(url: str) -> str:
    """A link target without click-tracking and session parameters."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not TRACKING_PARAMS.match(k)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _inline_text(node: LexborNode) -> str:
    """The text of an element with inline tags joined as written and blocks spaced apart."""
    parts: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            parts.append(current)
        elif current.tag == "-text":
            parts.append(current.text_content or "")
        elif current.tag is not None and not current.tag.startswith("-"):
            spacer = " " if current.tag in BLOCK_TAGS or current.tag == "br" else ""
            children = []
            child = current.child
            while child is not None:
                children.append(child)
                child = child.next
            stack.append(spacer)
            stack.extend(reversed(children))
            stack.append(spacer)
    return "".join(parts)


def _all_bold(pieces: list[tuple[str, bool]]) -> bool:
    visible = [bold for text, bold in pieces if text.strip()]
    return bool(visible) and all(visible)


def _aria_level(node: LexborNode) -> int:
    try:
        return max(1, min(6, int(node.attributes.get("aria-level") or 2)))
    except ValueError:
        return 2
