"""Normalize and diff two ~20,000-word versions that differ in three sentences.

Baseline, measured in the same run: a plain `difflib` line diff (unified_diff) of the two
pages' visible text, one line per block, which is what line-based change monitors do.
Prints the median of several runs for each, and the ratio.

    .venv/bin/python bench/normalize_diff.py [--corpus PATH] [--repeat 7]
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import os
import statistics
import time
from pathlib import Path

from watcher.diff import diff_clauses
from watcher.normalize import Selection, html_to_clauses

ROOT = Path(__file__).resolve().parent.parent
SELECTION = Selection(select=("#privacy-policy",))


def build_pages(corpus: Path, words: int = 20_000) -> tuple[str, str]:
    """A ~20k-word policy page from the real Mistral privacy section, repeated as chapters."""
    raw = gzip.decompress((corpus / "mistral-privacy-2025-02-13/snapshots/001.html.gz")
                          .read_bytes()).decode("utf-8")
    section = raw[raw.index('<div id="privacy-policy">'):]
    section = section[:section.index("</div></div>") + 12]
    chapter_words = sum(len(c.text.split()) for c in html_to_clauses(section, SELECTION))
    chapters = []
    for n in range(words // chapter_words + 1):
        chapters.append(section.replace('id="privacy-policy"', f'id="chapter-{n}"')
                        .replace("<h2>", f"<h2>Chapter {n} – ").replace("<p>", f"<p>[{n}] "))
    old = "<html><body><div id=\"privacy-policy\">" + "".join(chapters) + "</div></body></html>"
    new = old.replace("[1] We know that your privacy", "[1] We know that your privacy really", 1)
    new = new.replace("[3] <strong>Mistral AI is the data controller.", "[3] <strong>Mistral AI "
                      "is the sole data controller.", 1)
    new = new.replace("[5] We know that your privacy is important",
                      "[5] We know that your privacy is important to everyone", 1)
    assert new.count("really") == old.count("really") + 1
    return old, new


def visible_lines(html: str) -> list[str]:
    return [c.text + "\n" for c in html_to_clauses(html, SELECTION)]


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("WATCHER_CORPUS",
                                                    ROOT.parent / "shared" / "corpus")))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    old_html, new_html = build_pages(args.corpus)
    old_clauses = html_to_clauses(old_html, SELECTION)
    new_clauses = html_to_clauses(new_html, SELECTION)
    old_lines, new_lines = visible_lines(old_html), visible_lines(new_html)
    words = sum(len(c.text.split()) for c in old_clauses)

    ours_normalize = median_seconds(lambda: (html_to_clauses(old_html, SELECTION),
                                             html_to_clauses(new_html, SELECTION)), args.repeat)
    ours_diff = median_seconds(lambda: diff_clauses(old_clauses, new_clauses), args.repeat)
    baseline = median_seconds(lambda: list(difflib.unified_diff(old_lines, new_lines)),
                              args.repeat)
    changes = diff_clauses(old_clauses, new_clauses)

    print(f"document: {words:,} words, {len(old_clauses):,} clauses, "
          f"{len(old_html) // 1024:,} KiB of HTML per version")
    print(f"changes found: {len(changes)} ({', '.join(c.type for c in changes)})")
    print(f"normalize both versions      {ours_normalize * 1000:8.1f} ms")
    print(f"clause diff + word diffs     {ours_diff * 1000:8.1f} ms")
    print(f"total (normalize + diff)     {(ours_normalize + ours_diff) * 1000:8.1f} ms")
    print(f"baseline difflib line diff   {baseline * 1000:8.1f} ms (of already-extracted lines)")
    print(f"ratio clause diff / difflib  {ours_diff / baseline:8.2f}x")
    print(f"ratio total / difflib        {(ours_normalize + ours_diff) / baseline:8.2f}x")


if __name__ == "__main__":
    main()
