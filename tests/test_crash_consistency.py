"""Crash consistency (issue 27): kill -9 a real run at seeded random moments, resume each time (bench/crash.py).

The suite kills 3 times on a 200-iteration run (40 iterations finished
before the third kill on an idle machine), without the uninterrupted run to
compare with; ``bench/crash.py`` kills 30 times on 200 iterations and prints
the figures (docs/reliability.md).
"""
from __future__ import annotations

from bench.crash import crash_test


def test_killed_at_random_moments_every_resume_completes_with_the_same_image(tmp_path):
    report = crash_test(tmp_path, kills=3, iterations=200, seed=3, against_whole=False)
    assert report["kills"] >= 2, report  # the run outlasted most kills
    assert report["resumed_from"] == sorted(set(report["resumed_from"])) and report["resumed_from"][0] >= 1
    assert report["equal_to_reference_chain"], report  # what the kills left changed nothing
    assert report["left_after_finish"] == [], report  # no checkpoint, generation or temporary file
