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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fuzz import fuzz as timed  # noqa: E402
from stylize.serve.config import ServeConfig  # noqa: E402
from stylize.serve.server import Server  # noqa: E402
from tests import test_serve_fuzz as fuzz  # noqa: E402
from tests.test_serve import CONTENT, STYLE, Client  # noqa: E402
from tests.tinynet import write_tiny_net  # noqa: E402


def figures() -> dict:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1), "fds": len(os.listdir("/proc/self/fd"))}


def run(folder: Path, seconds: float) -> dict:
    """Random requests for ``seconds`` (``bench/fuzz.py``'s timed loop) against a server in ``folder``."""
    prototxt, weights = write_tiny_net(folder)
    config = ServeConfig(port=0, work=folder / "work", preview_every=0.0, threads=1, max_length=64,
                         max_iterations=30, max_styles=3, max_json_bytes=16 * 1024,
                         fixed_options={"caffe": {"prototxt": prototxt, "weights": weights}})
    server = Server(config).start()
    statuses: dict[int, int] = {}

    def check(drawn, _folder) -> None:
        status = fuzz.check(client, drawn)
        statuses[status] = statuses.get(status, 0) + 1

    try:
        client = Client(server)
        uploads = [client.uploaded(CONTENT), client.uploaded(STYLE)]
        job = client.start(*uploads, iterations=2)
        client.entries(job["id"])
        before = figures()
        stats = timed(fuzz.requests_of(uploads, [job["id"]]), check, seconds)
        return {**stats, "statuses": statuses, "before": before, "after": figures()}
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", nargs="?", type=float, default=120.0, help="how long to send requests")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        stats = run(Path(folder), options.seconds)
    print(f"{stats['cases']} requests in {stats['seconds']:g} s, {stats['failures']} failures "
          f"(slowest {stats['slowest_s']} s)")
    print("statuses: " + ", ".join(f"{status}: {count}" for status, count in sorted(stats["statuses"].items())))
    print(f"this process (server and client): before {stats['before']}, after {stats['after']}")
    for failure in stats["first_failures"]:
        print(f"\nFAILED {failure['example']}\n  {failure['error']}")
    if options.json:
        options.json.write_text(json.dumps(stats, indent=2) + "\n")
    return 1 if stats["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
