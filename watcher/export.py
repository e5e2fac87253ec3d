"""Exports of recorded history: a git repository, JSON, and an Atom feed of changes.

The git export writes one commit per version, dated at its `recorded_at`, with one Markdown
file per document (`Service/Document.md`), like Open Terms Archive's versions repositories,
so `git log` and `git diff` work on the history. The feed lists each change with a title, a
summary and the escaped HTML diff, for feed readers.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from watcher.config import Config, Target
from watcher.models import Diff, Version, render_document
from watcher.render import changes_as_html, diff_as_json
from watcher.significance import topic_label
from watcher.store import Store

__all__ = ["ExportError", "export_git", "export_json", "atom_feed"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
MAX_NAME = 120
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 does not allow anywhere in a document, even escaped."""


class ExportError(Exception):
    """The export cannot be written (git missing, output not empty, …)."""


@dataclass(frozen=True)
class FeedEntry:
    target: Target
    version: Version
    diff: Diff


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _file_name(target: Target) -> Path:
    """`Service/Document.md`, each part made a plain name that stays inside the export."""
    return Path(_path_part(target.service)) / f"{_path_part(target.document)}.md"


def _path_part(name: str) -> str:
    """One file or folder name: no separator or control character, not hidden (so never
    `..` or `.git`), at most MAX_NAME characters."""
    part = _UNSAFE_IN_NAME.sub("-", name).strip().lstrip(".").strip()
    return part[:MAX_NAME] or "untitled"


def export_git(store: Store, target: Target, output: Path) -> int:
    """One commit per version in a new git repository at `output`; returns the count."""
    if output.exists() and any(output.iterdir()):
        raise ExportError(f"{output} is not empty; give a new directory")
    output.mkdir(parents=True, exist_ok=True)
    _git(output, "init", "--quiet")
    versions = store.versions(target.id)
    for summary in versions:
        version = store.version(target.id, summary.number)
        path = output / _file_name(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_document(version.clauses), encoding="utf-8")
        _git(output, "add", "--all")
        what = summary.summary.describe() if summary.summary else "first version"
        stamp = _iso(version.recorded_at)
        title = _CONTROL.sub("", target.title)
        _git(output, "commit", "--quiet", "--allow-empty", "-m",
             f"{title}: version {version.number} ({what})",
             env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    return len(versions)


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    identity = {"GIT_AUTHOR_NAME": "policy-watcher", "GIT_AUTHOR_EMAIL": "watcher@localhost",
                "GIT_COMMITTER_NAME": "policy-watcher",
                "GIT_COMMITTER_EMAIL": "watcher@localhost"}
    try:
        subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                       env={**os.environ, **identity, **(env or {})})
    except FileNotFoundError:
        raise ExportError("git is not installed; install it or use --format json") from None
    except subprocess.CalledProcessError as error:
        raise ExportError(f"git {args[0]} failed: {error.stderr.strip()}") from None


def export_json(store: Store, target: Target) -> dict[str, Any]:
    """The whole history of a target: versions with clauses and the changes of each."""
    versions = []
    for summary in store.versions(target.id):
        version = store.version(target.id, summary.number)
        entry: dict[str, Any] = {
            "version": version.number, "recorded_at": _iso(version.recorded_at),
            "sha256": version.sha256, "revert_of": version.revert_of,
            "clauses": [{"kind": c.kind, "section": list(c.section), "text": c.text,
                         "level": c.level, "key": c.key} for c in version.clauses]}
        if version.number > 1:
            entry["diff"] = diff_as_json(store.stored_diff(target.id, version.number))
        versions.append(entry)
    return {"id": target.id, "service": target.service, "document": target.document,
            "url": target.url, "versions": versions}


def feed_entries(config: Config, store: Store, targets: list[Target],
                 limit: int = 200) -> list[FeedEntry]:
    entries = []
    for target in targets:
        for version in store.versions(target.id):
            if version.number > 1:
                entries.append(FeedEntry(target, version,
                                         store.stored_diff(target.id, version.number)))
    entries.sort(key=lambda e: e.version.recorded_at, reverse=True)
    return entries[:limit]


def atom_feed(config: Config, store: Store, targets: list[Target]) -> str:
    """An Atom 1.0 feed of the changes of `targets`, newest first, without the characters XML
    forbids (control characters of pages recorded before they were stripped)."""
    entries = feed_entries(config, store, targets)
    updated = _iso(entries[0].version.recorded_at) if entries else _iso(datetime.now(UTC))
    base = (config.settings.base_url or "").rstrip("/")
    parts = ['<?xml version="1.0" encoding="utf-8"?>',
             '<feed xmlns="http://www.w3.org/2005/Atom">',
             "<title>policy-watcher: changes to watched terms and policies</title>",
             f"<id>urn:policy-watcher:{escape(str(config.path.resolve()))}</id>",
             f"<updated>{updated}</updated>",
             "<author><name>policy-watcher</name></author>"]
    for entry in entries:
        parts.append(_feed_entry(entry, base))
    parts.append("</feed>")
    return _XML_INVALID.sub("", "\n".join(parts) + "\n")


def _feed_entry(entry: FeedEntry, base: str) -> str:
    diff, target, version = entry.diff, entry.target, entry.version
    title = f"{target.title}: {diff.summary.describe()}"
    if diff.topics:
        title += f" ({', '.join(topic_label(t) for t in diff.topics[:3])})"
    summary = (f"{diff.summary.describe().capitalize()}"
               + (f"; significance {diff.significance}" if diff.significance else "")
               + f". Full diff: watcher diff {target.id} --from {diff.from_version} "
                 f"--to {diff.to_version}")
    link = (f'<link href="{escape(base)}/{escape(target.id)}/diff?from={diff.from_version}'
            f'&amp;to={diff.to_version}"/>') if base else ""
    return (f"<entry><title>{escape(title)}</title>"
            f"<id>urn:policy-watcher:{escape(target.id)}:{version.number}:{version.sha256}</id>"
            f"<updated>{_iso(version.recorded_at)}</updated>{link}"
            f"<summary>{escape(summary)}</summary>"
            f'<content type="html">{escape(changes_as_html(diff))}</content></entry>')
