"""Run every bad-input case of tests/bad_input_cases.py and print a markdown table.

    .venv/bin/python bench/bad_inputs.py [--out FILE.md]

Columns: the case, the exit code, the one-line message (temporary paths
shortened to ``$TMP``), what is at the output path afterwards, and whether
anything else (a temporary file) was left beside it. The same cases, with
the same expectations, are asserted by tests/test_bad_inputs.py.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bad_input_cases import CASES, Workspace, run_case  # noqa: E402
from tests.tinynet import write_tiny_net  # noqa: E402

OUTPUT = {"absent": "absent", "written": "written", "untouched": "earlier file untouched"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    rows, failures = [], 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stylize-bad-inputs-") as tmp:
        net = Path(tmp) / "net"
        net.mkdir()
        prototxt, weights = write_tiny_net(net)
        for number, case in enumerate(CASES):
            root = Path(tmp) / f"case{number:02d}"
            root.mkdir()
            outcome = run_case(case, Workspace(root, prototxt, weights).setup())
            message = outcome.stderr.strip().replace(str(root), "$TMP").replace(tmp, "$TMP") or "(none)"
            ok = (outcome.exit_code == case.exit_code and outcome.output == case.output
                  and not outcome.strays and outcome.stderr.count("\n") <= 1 and "Traceback" not in outcome.stderr)
            failures += not ok
            output = OUTPUT[outcome.output] + (" (last good image kept)" if case.category == "numerics" else "")
            rows.append([case.category, case.name, str(outcome.exit_code), f"`{message}`", output,
                         ", ".join(outcome.strays) or "none", "yes" if ok else "**NO**"])
    header = ["category", "input", "exit", "message (stderr)", "output file afterwards", "stray files",
              "as expected"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines.append("")
    lines.append(f"{len(CASES)} cases in {time.monotonic() - started:.1f} s; {failures} not as expected.")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
