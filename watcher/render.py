"""Rendering a Diff for people and programs: text (ANSI colours), Markdown, HTML, JSON.

Shared by the CLI and the notifications. Page content is untrusted: the HTML renderer
escapes every piece of it, and the Markdown renderer neutralises Markdown syntax in it.
"""

from __future__ import annotations

import html
import re
from typing import Any

import click

from watcher.models import Change, Diff

__all__ = ["diff_as_json", "diff_as_text", "diff_as_markdown", "diff_as_html", "section_label"]

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def section_label(section: tuple[str, ...]) -> str:
    return " › ".join(section) if section else "(top of document)"


def diff_as_json(diff: Diff) -> dict[str, Any]:
    return {
        "target": diff.target,
        "from": diff.from_version,
        "to": diff.to_version,
        "summary": diff.summary.as_dict(),
        "significance": diff.significance,
        "topics": list(diff.topics) if diff.significance is not None else None,
        "changes": [_change_json(change) for change in diff.changes],
    }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "type": change.type,
        "section": list(change.section),
        "before": change.before,
        "after": change.after,
        "inline": [{"op": op.op, "text": op.text} for op in change.inline]
        if change.type == "modified" else None,
        "topics": list(change.topics) if change.significance is not None else None,
        "significance": change.significance,
    }


def _header(diff: Diff) -> str:
    line = f"{diff.target}: version {diff.from_version} → {diff.to_version}: " \
           f"{diff.summary.describe()}"
    if diff.significance:
        line += f" [{diff.significance}{': ' + ', '.join(diff.topics) if diff.topics else ''}]"
    return line


def diff_as_text(diff: Diff, color: bool = False) -> str:
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    out = [style(_header(diff), bold=True)]
    for change in diff.changes:
        tag = change.type.upper()
        if change.significance:
            tag += f" ({change.significance})"
        out += ["", style(f"{tag}  {where(change)}", fg="cyan")]
        if change.type == "modified":
            out.append("  " + "".join(
                op.text if op.op == "equal" else
                style(f"[+{op.text}+]", fg="green", bold=True) if op.op == "insert" else
                style(f"[-{op.text}-]", fg="red", strikethrough=True)
                for op in change.inline))
        elif change.type == "added":
            out.append(style(f"+ {change.after}", fg="green"))
        elif change.type == "removed":
            out.append(style(f"- {change.before}", fg="red"))
        else:
            out.append(f"  {change.after}")
    return "\n".join(out) + "\n"


def where(change: Change) -> str:
    """The clause's section; for a clause moved to another section, from where to where."""
    if change.type == "moved" and change.from_section and change.from_section != change.section:
        return f"{section_label(change.from_section)} → {section_label(change.section)}"
    return section_label(change.section)


def markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def diff_as_markdown(diff: Diff) -> str:
    out = [f"## {markdown_escape(_header(diff))}"]
    for change in diff.changes:
        out += ["", f"**{change.type.capitalize()}** — _{markdown_escape(where(change))}_",
                ""]
        if change.type == "modified":
            out.append("".join(
                markdown_escape(op.text) if op.op == "equal" else
                _wrap(op.text, "**") if op.op == "insert" else _wrap(op.text, "~~")
                for op in change.inline))
        elif change.type == "added":
            out.append(f"> **+** {markdown_escape(change.after or '')}")
        elif change.type == "removed":
            out.append(f"> ~~{markdown_escape(change.before or '')}~~")
        else:
            out.append(f"> {markdown_escape(change.after or '')}")
    return "\n".join(out) + "\n"


def _wrap(text: str, marker: str) -> str:
    """Mark a run of text, keeping its surrounding spaces outside the markers."""
    core = text.strip()
    if not core:
        return text
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()):]
    return f"{lead}{marker}{markdown_escape(core)}{marker}{trail}"


INSERT_STYLE = "background:#e6ffec;color:#116329;text-decoration:none"
DELETE_STYLE = "background:#ffebe9;color:#82071e;text-decoration:line-through"


def changes_as_html(diff: Diff) -> str:
    """The changes as an HTML fragment with inline styles (e-mail clients strip <style>)."""
    e = html.escape
    parts = []
    for change in diff.changes:
        label = change.type + (f" · {change.significance}" if change.significance else "")
        parts.append(
            '<div style="margin:0 0 16px 0;padding:8px 12px;border-left:4px solid #888">'
            f'<div style="font-size:12px;color:#555">{e(label)} — '
            f'{e(where(change))}</div><p style="margin:4px 0 0 0">')
        if change.type == "modified":
            parts.append("".join(
                e(op.text) if op.op == "equal" else
                f'<ins style="{INSERT_STYLE}">{e(op.text)}</ins>' if op.op == "insert" else
                f'<del style="{DELETE_STYLE}">{e(op.text)}</del>'
                for op in change.inline))
        elif change.type == "added":
            parts.append(f'<ins style="{INSERT_STYLE}">{e(change.after or "")}</ins>')
        elif change.type == "removed":
            parts.append(f'<del style="{DELETE_STYLE}">{e(change.before or "")}</del>')
        else:
            parts.append(e(change.after or ""))
        parts.append("</p></div>")
    return "".join(parts)


def diff_as_html(diff: Diff, title: str | None = None) -> str:
    """A standalone HTML page of the diff."""
    e = html.escape
    heading = title or diff.target
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(heading)}: version {diff.from_version} → {diff.to_version}</title></head>"
        '<body style="font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;'
        'line-height:1.5">'
        f"<h1 style=\"font-size:1.3em\">{e(heading)}</h1><p>{e(_header(diff))}</p>"
        f"{changes_as_html(diff)}</body></html>\n")
