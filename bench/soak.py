"""Soak ``stylize serve``: many tiny jobs through its queue with uploads, cancels, resumes and deletes; its memory and
open file descriptors along the way.

    .venv/bin/python bench/soak.py [--jobs 200] [--max-storage 2M] [--json FILE]

A real ``stylize serve`` process (the tiny network fixed with ``--set``,
``--max-storage 2M`` so that pruning runs all along) and a client
doing what pages do: every job uploads a new content and style image; every 10th job
from the 4th is cancelled once running and resumed; every 10th from the 8th
is queued behind another and cancelled while it waits; every 20th a
finished job and an upload are deleted. Each job's event stream is read to
its end. After each job the server's resident memory (VmRSS), open file
descriptors and threads are read from /proc. Prints the samples every
``--every`` jobs and the figures: first and last after warm-up, most,
and the growth per 100 jobs (a least-squares slope); exits 1 if any job
ended otherwise than expected or a request failed.

tests/test_soak.py runs 24 jobs of the same.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {"backend": "caffe", "length": 48, "scales": 1, "tol": 0, "content_layers": "conv2",
            "style_layers": "conv1,conv2", "iterations": 6}
#: Jobs before the figures count (imports, first network load, caches filling).
WARM_UP = 10


def png(seed: int, size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buffer, format="PNG")
    return buffer.getvalue()


def process_figures(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(fields["Threads"])}


class Page:
    """What a page does over HTTP, against one server."""

    def __init__(self, url: str):
        self.url, self.http = url, requests.Session()
        page = self.http.get(url, timeout=60).text
        self.http.headers["X-Stylize-CSRF"] = page.split('name="stylize-csrf" content="')[1].split('"')[0]
        self.failures: list[str] = []

    def call(self, method: str, path: str, expect: int | tuple = 200, **kwargs):
        response = self.http.request(method, self.url + path, timeout=120, **kwargs)
        if response.status_code not in ((expect,) if isinstance(expect, int) else expect):
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response

    def upload(self, data: bytes, name: str) -> str | None:
        response = self.call("POST", "api/uploads", 201, files={"file": (name, data, "image/png")})
        return response.json().get("id") if response.status_code == 201 else None

    def start(self, content: str, style: str) -> str | None:
        response = self.call("POST", "api/jobs", 201, json={"content": content, "styles": [
            {"upload": style, "weight": 1.0}], "settings": SETTINGS})
        return response.json().get("id") if response.status_code == 201 else None

    def until(self, job: str, want=lambda entry: entry.get("type") == "state" and entry.get("state") in (
            "finished", "failed", "cancelled", "interrupted")) -> dict | None:
        """Read the job's event stream until an entry ``want``s it (default: its final state); that entry."""
        with self.http.get(f"{self.url}api/jobs/{job}/events", stream=True, timeout=120) as response:
            for line in response.iter_lines():
                if line.startswith(b"data: "):
                    entry = json.loads(line[6:])
                    if want(entry):
                        return entry
        return None


def soak(folder: Path, jobs: int, max_storage: str = "2M", every: int = 25, echo=print) -> dict:
    from tests.tinynet import write_tiny_net

    prototxt, weights = write_tiny_net(folder)
    server = subprocess.Popen(
        [sys.executable, "-c", "from stylize.cli.main import cli; cli()", "serve", "--port", "0", "--work",
         str(folder / "work"), "--threads", "1", "--preview-every", "0.05", "--max-storage", max_storage,
         "--set", f"caffe.prototxt={prototxt}", "--set", f"caffe.weights={weights}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples, outcomes = [], {}
    started = time.monotonic()
    try:
        url = server.stdout.readline().split()[-1]
        page = Page(url)
        finished: list[str] = []
        for number in range(jobs):  # new uploads for every job: older ones are pruned as the folder fills
            content = page.upload(png(number), f"content-{number}.png")
            style = page.upload(png(10_000 + number, 48), f"style-{number}.png")
            job = page.start(content, style)
            if job is None:
                continue
            if number % 10 == 3:  # cancelled once running, then resumed
                page.until(job, lambda entry: entry.get("type") == "step")
                page.call("POST", f"api/jobs/{job}/cancel", (200, 409))
                page.until(job)
                page.call("POST", f"api/jobs/{job}/resume", (200, 409))
            elif number % 10 == 7:  # a second job queued behind it, cancelled while it waits
                waiting = page.start(content, style)
                if waiting is not None:
                    page.call("POST", f"api/jobs/{waiting}/cancel", (200, 409))
                    outcome = page.until(waiting)
                    outcomes[outcome and outcome["state"]] = outcomes.get(outcome and outcome["state"], 0) + 1
            outcome = page.until(job)
            state = outcome and outcome["state"]
            outcomes[state] = outcomes.get(state, 0) + 1
            if state == "finished":
                finished.append(job)
            if number % 20 == 19 and finished:
                page.call("DELETE", f"api/jobs/{finished.pop(0)}", (200, 404))
                page.call("DELETE", f"api/uploads/{content}", (200, 404))
            sample = {"job": number + 1, **process_figures(server.pid),
                      "storage_mib": round(page.call("GET", "api/storage").json()["used"] / 2**20, 2)}
            samples.append(sample)
            if (number + 1) % every == 0 or number + 1 == jobs:
                echo(f"job {sample['job']:4d}: rss {sample['rss_mib']} MiB, {sample['fds']} fds, "
                     f"{sample['threads']} threads, work folder {sample['storage_mib']} MiB")
        failures = page.failures
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    return {"jobs": jobs, "outcomes": outcomes, "failures": failures, "samples": samples,
            "seconds": round(time.monotonic() - started, 1), **figures(samples)}


def figures(samples: list[dict]) -> dict:
    """First and last after warm-up, most, and growth per 100 jobs, of memory and descriptors."""
    kept = samples[WARM_UP:] or samples
    jobs = np.array([s["job"] for s in kept], float)
    found = {}
    for key in ("rss_mib", "fds", "threads"):
        values = np.array([s[key] for s in kept], float)
        slope = float(np.polyfit(jobs, values, 1)[0]) * 100 if len(kept) > 2 else 0.0
        found[key] = {"after_warm_up": kept[0][key], "last": kept[-1][key], "most": max(values.tolist()),
                      "per_100_jobs": round(slope, 2)}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--max-storage", default="2M")
    parser.add_argument("--every", type=int, default=25, help="print a sample every N jobs")
    parser.add_argument("--json", type=Path, help="also write the samples and figures to this file")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        report = soak(Path(folder), options.jobs, options.max_storage, options.every)
    print(f"\n{report['jobs']} jobs in {report['seconds']} s; outcomes {report['outcomes']}; "
          f"{len(report['failures'])} failed requests")
    for key in ("rss_mib", "fds", "threads"):
        print(f"{key}: {report[key]}")
    for failure in report["failures"][:5]:
        print("FAILED", failure)
    if options.json:
        options.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
