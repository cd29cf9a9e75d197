"""A short soak of ``stylize serve`` (issue 27): jobs with uploads, cancels, resumes and deletes through a real
server process, its open descriptors and memory flat (``bench/soak.py`` runs 200 jobs and prints the figures)."""
from __future__ import annotations

from bench.soak import soak


def test_a_short_soak_keeps_descriptors_and_memory_flat(tmp_path):
    report = soak(tmp_path, jobs=10, every=100, echo=lambda line: None)
    assert report["failures"] == [], report["failures"]
    assert report["outcomes"].get("finished") == 10 and report["outcomes"].get("cancelled") == 1, report["outcomes"]
    samples = report["samples"]
    assert len(samples) == 10
    after_first = samples[2]  # the network loaded, the first resume and cancel done
    assert max(s["fds"] for s in samples[2:]) <= after_first["fds"] + 2, samples
    assert max(s["threads"] for s in samples[2:]) <= after_first["threads"] + 2, samples
    assert samples[-1]["rss_mib"] - after_first["rss_mib"] < 16, samples
