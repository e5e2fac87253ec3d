"""Import of Open Terms Archive declarations into `[[targets]]` entries of targets.toml.

A declaration names a service and, per document type, the page to fetch (`fetch`), the CSS
`select` / `remove` selectors (range selectors included), `executeClientScripts` (which
becomes `fetcher = "browser"`) and `combine` (a document of several pages, which becomes
`sources`). What has no equivalent here — custom JavaScript `filter` functions, unknown
keys — is reported, never dropped silently.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ImportResult", "import_declarations", "DeclarationError"]

KNOWN_KEYS = {"fetch", "select", "remove", "executeClientScripts", "combine", "filter"}


class DeclarationError(Exception):
    """A declaration file that cannot be read as JSON in OTA's format."""


@dataclass(frozen=True)
class ImportResult:
    toml: str
    targets: int
    unsupported: tuple[str, ...]
    """One line per thing that could not be expressed, naming file and document."""


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "document"


def import_declarations(paths: list[Path]) -> ImportResult:
    blocks, notes, seen = [], [], set()
    for path in paths:
        declaration = _load(path)
        service = declaration["name"]
        for document, terms in declaration["terms"].items():
            _check_terms(path, document, terms)
            target_id = slug(f"{service}-{document}")
            while target_id in seen:
                target_id += "-2"
            seen.add(target_id)
            notes += [f"{path.name}: {document}: {note}" for note in _unsupported(terms)]
            blocks.append(_target(target_id, service, document, terms))
    header = ("# Imported from Open Terms Archive declarations "
              "(https://github.com/OpenTermsArchive).\n")
    return ImportResult(toml=header + "\n".join(blocks), targets=len(blocks),
                        unsupported=tuple(notes))


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeclarationError(f"{path}: not a readable JSON declaration ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) \
            or not isinstance(data.get("terms"), dict):
        raise DeclarationError(f"{path}: not an Open Terms Archive declaration "
                               "(expected {\"name\": …, \"terms\": {…}})")
    return data


def _check_terms(path: Path, document: str, terms: Any) -> None:
    """A document needs a `fetch` URL, or `combine`: a list of pages that each have one."""
    where = f"{path}: terms.{document}"
    if not isinstance(terms, dict):
        raise DeclarationError(f"{where}: expected an object with \"fetch\" or \"combine\"")
    parts = terms.get("combine")
    if parts is None:
        if not isinstance(terms.get("fetch"), str):
            raise DeclarationError(f"{where}: has no \"fetch\" URL (nor \"combine\")")
        return
    if not isinstance(parts, list) or not parts:
        raise DeclarationError(f"{where}.combine: expected a non-empty list of pages")
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("fetch"), str):
            raise DeclarationError(f"{where}.combine[{index}]: has no \"fetch\" URL")


def _unsupported(terms: dict[str, Any]) -> list[str]:
    notes = []
    for part in [terms, *terms.get("combine", [])]:
        if part.get("filter"):
            notes.append(f"custom filter(s) {', '.join(map(str, part['filter']))} cannot be "
                         "expressed; add `ignore` rules if the page needs them")
        notes += [f"key {key!r} is not supported" for key in part if key not in KNOWN_KEYS]
    return notes


def _target(target_id: str, service: str, document: str, terms: dict[str, Any]) -> str:
    lines = ["[[targets]]", f"id = {_string(target_id)}", f"service = {_string(service)}",
             f"document = {_string(document)}"]
    parts = terms.get("combine")
    if parts:
        lines.append(f"url = {_string(parts[0]['fetch'])}")
        lines += _fetcher(terms.get("executeClientScripts"))
        for part in parts:
            lines += ["", "[[targets.sources]]", f"url = {_string(part['fetch'])}"]
            lines += _selectors(part.get("select", terms.get("select")),
                                part.get("remove", terms.get("remove")))
            lines += _fetcher(part.get("executeClientScripts", terms.get("executeClientScripts")))
    else:
        lines.append(f"url = {_string(terms['fetch'])}")
        lines += _selectors(terms.get("select"), terms.get("remove"))
        lines += _fetcher(terms.get("executeClientScripts"))
    return "\n".join(lines) + "\n"


def _fetcher(execute_scripts: Any) -> list[str]:
    return ['fetcher = "browser"'] if execute_scripts else []


def _selectors(select: Any, remove: Any) -> list[str]:
    lines = []
    for key, value in (("select", select), ("remove", remove)):
        if value:
            items = value if isinstance(value, list) else [value]
            lines.append(f"{key} = [{', '.join(_selector(item) for item in items)}]")
    return lines


def _selector(item: Any) -> str:
    if isinstance(item, dict):
        return "{" + ", ".join(f"{k} = {_string(v)}" for k, v in item.items()) + "}"
    return _string(str(item))


def _string(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML escapes)."""
    return json.dumps(value, ensure_ascii=False)
