"""Acceptance on real timelines: Open Terms Archive's corpus replayed through `watcher ingest`."""

from bench.corpus_replay import replay_corpus
from tests.conftest import corpus_dir


def test_every_timeline_records_exactly_the_versions_ota_recorded():
    corpus = corpus_dir("mistral-privacy-2025-02-13").parent
    results = {r.slug: r for r in replay_corpus(corpus)}
    assert {"murf-terms-of-service", "lovable-terms-of-service", "doubao-privacy-policy",
            "mistral-privacy-2025-02-13", "deepseek-privacy-policy"} <= set(results)
    for replay in results.values():
        assert replay.false_versions == [], replay.slug
        assert replay.missed_versions == [], replay.slug
    reported = sum(r.clauses_reported for r in results.values())
    correct = sum(r.clauses_correct for r in results.values())
    reference = sum(r.reference_lines for r in results.values())
    found = sum(r.reference_found for r in results.values())
    assert correct / reported >= 0.95
    assert found / reference >= 0.95
