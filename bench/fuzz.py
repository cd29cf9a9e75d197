"""Fuzz stylize for a set time with the properties of tests/test_fuzz.py.

    .venv/bin/python bench/fuzz.py [SECONDS] [--json FILE]

SECONDS (default 120) is shared among the three properties: any bytes into
``load_image`` (half), random option values through ``stylize run``'s
parsing and checks (a third), and mutated images through a real run on the
tiny network (the rest). Prints, per property, how many cases ran and how
many failed (with the first failures), and exits 1 if any did. Everything
runs in this process: an abort (SIGABRT) anywhere would end the script
without its report.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests import test_fuzz as properties  # noqa: E402

#: (name, strategy, check(example, folder), share of the time)
PROPERTIES = [
    ("image bytes -> load_image", properties.image_bytes,
     lambda data, folder: properties.check_image_bytes(data, folder), 0.5),
    ("option values -> stylize run checks", properties.command_lines(),
     lambda line, folder: properties.check_options(*line, folder), 0.3),
    ("mutated image -> real stylize run", properties.run_images,
     lambda data, folder: properties.check_run(data, folder, properties.tiny_net()), 0.2),
]

#: Random (not derandomized) examples, no shrinking, no example database: just many cases.
BATCH = settings(max_examples=200, deadline=None, database=None, derandomize=False, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))


def fuzz(strategy, check, seconds: float) -> dict:
    """Run ``check`` on examples of ``strategy`` until ``seconds`` have passed."""
    stats = {"cases": 0, "failures": 0, "first_failures": [], "slowest_s": 0.0, "slowest": ""}
    deadline = time.monotonic() + seconds

    @BATCH
    @given(strategy)
    def batch(example):
        if time.monotonic() >= deadline:
            return
        stats["cases"] += 1
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            try:
                check(example, Path(folder))
            except Exception as e:  # a failure of the property, recorded, and fuzzing goes on
                stats["failures"] += 1
                if len(stats["first_failures"]) < 5:
                    stats["first_failures"].append({"example": repr(example)[:300],
                                                    "error": "".join(traceback.format_exception_only(e))[:500]})
        took = time.monotonic() - started
        if took > stats["slowest_s"]:
            stats["slowest_s"], stats["slowest"] = round(took, 2), repr(example)[:200]

    started = time.monotonic()
    while time.monotonic() < deadline:
        batch()
    stats["seconds"] = round(time.monotonic() - started, 1)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=120.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    properties.tiny_net()  # written once, outside the timed part
    report = {}
    for name, strategy, check, share in PROPERTIES:
        report[name] = fuzz(strategy, check, args.seconds * share)
    total_cases = sum(r["cases"] for r in report.values())
    total_failures = sum(r["failures"] for r in report.values())
    print("| property | cases | failures | seconds | slowest case (s) |")
    print("|---|---|---|---|---|")
    for name, r in report.items():
        print(f"| {name} | {r['cases']} | {r['failures']} | {r['seconds']} | {r['slowest_s']} |")
    print(f"| **total** | **{total_cases}** | **{total_failures}** | "
          f"{sum(r['seconds'] for r in report.values()):.1f} | |")
    for name, r in report.items():
        for failure in r["first_failures"]:
            print(f"\nFAILED {name}: {failure['example']}\n  {failure['error']}")
    print(f"\nThe process survived all {total_cases} cases (no abort, no crash).")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
