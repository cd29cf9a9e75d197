"""Fuzz every endpoint of ``stylize serve`` for a set time with the requests of tests/test_serve_fuzz.py.

    .venv/bin/python bench/serve_fuzz.py [SECONDS] [--json FILE]

A real server on 127.0.0.1 (the tiny network, small limits so that the
jobs random requests start are cheap) receives random (not derandomized)
requests until SECONDS (default 120) have passed; each must get a status
under 500, no traceback, errors as one-line JSON (or aiohttp's own
plain-text 400 for a request its parser refuses), and the page must answer
after it. Prints the cases, the statuses seen, the failures (first five)
and the server's open descriptors and memory before and after; exits 1 on
any failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from stylize.serve.config import ServeConfig  # noqa: E402
from stylize.serve.server import Server  # noqa: E402
from tests import test_serve_fuzz as fuzz  # noqa: E402
from tests.test_serve import CONTENT, STYLE, Client  # noqa: E402
from tests.tinynet import write_tiny_net  # noqa: E402

BATCH = settings(max_examples=100, deadline=None, database=None, derandomize=False, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))


def figures() -> dict:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1), "fds": len(os.listdir("/proc/self/fd"))}


def run(folder: Path, seconds: float) -> dict:
    prototxt, weights = write_tiny_net(folder)
    config = ServeConfig(port=0, work=folder / "work", preview_every=0.0, threads=1, max_length=64,
                         max_iterations=30, max_styles=3, max_json_bytes=16 * 1024,
                         fixed_options={"caffe": {"prototxt": prototxt, "weights": weights}})
    server = Server(config).start()
    stats = {"cases": 0, "failures": 0, "statuses": {}, "first_failures": []}
    try:
        client = Client(server)
        uploads = [client.uploaded(CONTENT), client.uploaded(STYLE)]
        job = client.start(*uploads, iterations=2)
        client.entries(job["id"])
        stats["before"] = figures()
        deadline = time.monotonic() + seconds

        @BATCH
        @given(fuzz.requests_of(uploads, [job["id"]]))
        def batch(drawn):
            if time.monotonic() >= deadline:
                return
            stats["cases"] += 1
            try:
                status = fuzz.check(client, drawn)
                stats["statuses"][status] = stats["statuses"].get(status, 0) + 1
            except Exception as e:  # a failure of the property, recorded, and fuzzing goes on
                stats["failures"] += 1
                if len(stats["first_failures"]) < 5:
                    stats["first_failures"].append({"request": repr(drawn)[:300],
                                                    "error": "".join(traceback.format_exception_only(e))[:500]})

        while time.monotonic() < deadline:
            batch()
        stats["after"] = figures()
    finally:
        server.stop()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=120.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        stats = run(Path(folder), options.seconds)
    print(f"{stats['cases']} requests in {options.seconds:g} s, {stats['failures']} failures")
    print("statuses: " + ", ".join(f"{status}: {count}" for status, count in sorted(stats["statuses"].items())))
    print(f"this process (server and client): before {stats['before']}, after {stats['after']}")
    for failure in stats["first_failures"]:
        print(f"\nFAILED {failure['request']}\n  {failure['error']}")
    if options.json:
        options.json.write_text(json.dumps(stats, indent=2) + "\n")
    return 1 if stats["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
