"""Replay every Open Terms Archive timeline of the corpus through `watcher ingest`.

For each document: its raw snapshots are ingested in time order (at their `fetched_at`), and
the versions recorded are compared with the versions Open Terms Archive recorded from the same
snapshots. Printed per document and in total:

- versions: ours vs OTA's, matched by snapshot; false (ours, not OTA's) and missed (OTA's,
  not ours). The first snapshot of a window always gives our first version and is not
  counted. Known exceptions from the corpus notes are reported apart.
- clause precision / recall of each shared version against the difference of the two OTA
  markdown versions, compared line by line (list items, table rows and hard-broken lines of
  a markdown paragraph are separate lines, as they are separate clauses here).

    .venv/bin/python bench/corpus_replay.py [--corpus PATH] [--json]
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from click.testing import CliRunner

from watcher.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXCEPTIONS = {("deepseek-privacy-policy", "snapshots/009.html.gz"):
              "OTA version 009 changes only the markdown of table-cell line breaks"}


@dataclass
class Replay:
    slug: str
    snapshots: int
    ota_versions: int = 0
    our_versions: int = 0
    false_versions: list[str] = field(default_factory=list)
    missed_versions: list[str] = field(default_factory=list)
    excepted: list[str] = field(default_factory=list)
    clauses_reported: int = 0
    clauses_correct: int = 0
    reference_lines: int = 0
    reference_found: int = 0
    unmatched: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.clauses_correct / self.clauses_reported if self.clauses_reported else 1.0

    @property
    def recall(self) -> float:
        return self.reference_found / self.reference_lines if self.reference_lines else 1.0


def watcher(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    if result.exit_code not in (0, 1):
        raise RuntimeError(f"watcher {' '.join(args)} failed: {result.output}")
    return result.stdout


def target_config(manifest: dict) -> str:
    lines = ["[[targets]]", 'id = "doc"', f"service = {json.dumps(manifest['service'])}",
             f"document = {json.dumps(manifest['document'])}", f"url = {json.dumps(manifest['url'])}",
             f"select = {json.dumps(manifest['select'])}"]
    if manifest.get("remove"):
        lines.append(f"remove = {json.dumps(manifest['remove'])}")
    return "\n".join(lines) + "\n"


def replay(directory: Path, workdir: Path) -> Replay:
    manifest = json.loads((directory / "manifest.json").read_text())
    slug = directory.name
    config = workdir / slug / "targets.toml"
    config.parent.mkdir(parents=True)
    config.write_text(target_config(manifest))
    files, times = [], []
    for snapshot in manifest["snapshots"]:
        path = config.parent / Path(snapshot["file"]).name.removesuffix(".gz")
        path.write_bytes(gzip.decompress((directory / snapshot["file"]).read_bytes()))
        files.append(str(path))
        times += ["--fetched-at", snapshot["fetched_at"]]
    watcher(config, "ingest", "doc", *files, *times)
    history = json.loads(watcher(config, "history", "doc", "--json"))

    by_time = {_utc(s["fetched_at"]): s["file"] for s in manifest["snapshots"]}
    first = manifest["snapshots"][0]["file"]
    ours = {by_time[_utc(v["recorded_at"])]: v["version"] for v in history}
    ota = {v["snapshot_file"]: v for v in manifest["versions"] if v["snapshot_file"]}
    result = Replay(slug=slug, snapshots=len(files), ota_versions=len(set(ota) - {first}),
                    our_versions=len(set(ours) - {first}))
    for snapshot in sorted((set(ours) | set(ota)) - {first}):
        if snapshot in ours and snapshot in ota:
            continue
        if (slug, snapshot) in EXCEPTIONS:
            result.excepted.append(f"{snapshot}: {EXCEPTIONS[(slug, snapshot)]}")
        elif snapshot in ours:
            result.false_versions.append(snapshot)
        else:
            result.missed_versions.append(snapshot)
    _score_clauses(result, directory, manifest, config, ours, ota)
    return result


def _score_clauses(result: Replay, directory: Path, manifest: dict, config: Path,
                   ours: dict[str, int], ota: dict[str, dict]) -> None:
    ota_files = [v["file"] for v in manifest["versions"]]
    for snapshot, version in ota.items():
        if snapshot not in ours or ours[snapshot] == 1:
            continue
        index = ota_files.index(version["file"])
        before = (directory / ota_files[index - 1]).read_text()
        after = (directory / version["file"]).read_text()
        reference = _changed_lines(before, after)
        diff = json.loads(watcher(config, "diff", "doc", "--to", str(ours[snapshot]), "--json"))
        reported = []
        for change in diff["changes"]:
            if change["before"] is not None:
                reported.append(("old", _plain(change["before"])))
            if change["after"] is not None:
                reported.append(("new", _plain(change["after"])))
        result.clauses_reported += len(reported)
        misses = [(side, text) for side, text in reported
                  if not any(_same(text, line) for s, line in reference if s == side)]
        result.clauses_correct += len(reported) - len(misses)
        result.unmatched += [f"v{ours[snapshot]} {side}: {text[:100]}" for side, text in misses]
        result.reference_lines += len(reference)
        result.reference_found += sum(any(_same(text, line) for s, text in reported if s == side)
                                      for side, line in reference)


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = _lines(before), _lines(after)
    changed = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            changed += [("old", line) for line in old[i1:i2]]
            changed += [("new", line) for line in new[j1:j2]]
    # A line only re-wrapped in markdown (same text) is no change of text.
    old_set, new_set = set(old), set(new)
    return [(side, line) for side, line in changed
            if not (side == "old" and line in new_set) and not (side == "new" and line in old_set)]


def _lines(markdown: str) -> list[str]:
    lines = []
    for raw in re.split(r"\n|<br\s*/?>", markdown):
        if re.fullmatch(r"\s*[-=|: ]+\s*", raw):
            continue
        text = _plain(raw)
        if text:
            lines.append(text)
    return lines


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"(\*\*|__|~~|`|^\s*#{1,6}\s+|^\s*>\s?|^\s*(?:[*+-]|\d+\.)\s+)")


def _plain(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|>~])", r"\1", text)
    text = _MARKUP.sub("", text)
    text = re.sub(r"(?<!\w)[*_](\S.*?\S|\S)[*_](?!\w)", r"\1", text)
    text = text.replace("|", " ")
    return re.sub(r"\s+", " ", text).strip()


def _same(ours: str, line: str) -> bool:
    if not ours or not line:
        return False
    if line in ours or ours in line:
        return True
    matcher = difflib.SequenceMatcher(a=ours, b=line, autojunk=False)
    return matcher.real_quick_ratio() >= 0.85 and matcher.quick_ratio() >= 0.85 \
        and matcher.ratio() >= 0.85


def _utc(stamp: str) -> str:
    return stamp.replace("+00:00", "Z").replace("Z", "")[:19]


def replay_corpus(corpus: Path) -> list[Replay]:
    with tempfile.TemporaryDirectory() as workdir:
        return [replay(directory, Path(workdir)) for directory in sorted(corpus.iterdir())
                if (directory / "manifest.json").exists()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("WATCHER_CORPUS",
                                                    ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = replay_corpus(args.corpus)
    if args.json:
        print(json.dumps([{**asdict(r), "precision": r.precision, "recall": r.recall}
                          for r in results], indent=2))
        return 0
    header = f"{'document':30} {'snaps':>5} {'OTA':>4} {'ours':>4} {'false':>5} {'missed':>6} " \
             f"{'precision':>9} {'recall':>6}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.slug:30} {r.snapshots:5} {r.ota_versions:4} {r.our_versions:4} "
              f"{len(r.false_versions):5} {len(r.missed_versions):6} {r.precision:9.3f} "
              f"{r.recall:6.3f}")
    total = Replay(slug="TOTAL", snapshots=sum(r.snapshots for r in results))
    for r in results:
        total.ota_versions += r.ota_versions
        total.our_versions += r.our_versions
        total.false_versions += r.false_versions
        total.missed_versions += r.missed_versions
        total.excepted += r.excepted
        total.clauses_reported += r.clauses_reported
        total.clauses_correct += r.clauses_correct
        total.reference_lines += r.reference_lines
        total.reference_found += r.reference_found
    print("-" * len(header))
    print(f"{'TOTAL':30} {total.snapshots:5} {total.ota_versions:4} {total.our_versions:4} "
          f"{len(total.false_versions):5} {len(total.missed_versions):6} "
          f"{total.precision:9.3f} {total.recall:6.3f}")
    for r in results:
        for item in r.false_versions:
            print(f"false version: {r.slug} {item}")
        for item in r.missed_versions:
            print(f"missed version: {r.slug} {item}")
        for item in r.excepted:
            print(f"excepted: {r.slug} {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
