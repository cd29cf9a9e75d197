"""``stylize serve`` under abuse and faults (issue 27): no server path leaks, a bounded work folder with deletes,
clean 400s for what aiohttp's parsers choke on, a restart after kill -9 that tells the truth, no link followed.

Every test runs a real server on 127.0.0.1 with the tiny network (``test_serve``'s fixtures).
"""
from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import UsageError
from stylize.serve.storage import parse_size

from .test_serve import (CONTENT, STYLE, TINY_SETTINGS, Client, client, pair, raw_request,  # noqa: F401 (fixtures)
                         request_for, start_server)


def noise_png(seed: int, size: int = 256) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buffer, format="PNG")
    return buffer.getvalue()


# -- 1. no server path in anything a client receives ------------------------------------------------

def test_no_response_or_result_of_a_session_names_a_server_path(start_server, tiny_net, tmp_path):
    """Before: a result's PNG text held ``<work>/uploads/<id>.jpg``; a failed job's message held
    ``/root/.cache/stylize/models/...``. After: upload ids, names relative to the work folder, ``~``."""
    client = start_server()
    missing = Path.home() / ".cache" / "stylize" / f"h1-missing-{os.getpid()}.caffemodel"
    broken = start_server(fixed_options={"caffe": {"prototxt": tiny_net[0], "weights": str(missing)}},
                          work=tmp_path / "work2")
    received: list[bytes] = []

    def keep(response: requests.Response) -> requests.Response:
        received.append(response.content + json.dumps(dict(response.headers)).encode())
        return response

    for session in (client, broken):
        session.http.hooks["response"].append(lambda response, *args, **kwargs: keep(response))
    content, style = client.uploaded(CONTENT), client.uploaded(STYLE)
    job = client.start(content, style, iterations=4)
    events = client.entries(job["id"])
    assert events[-1]["state"] == "finished"
    received.append(json.dumps(events).encode())
    for path in ("/", "/api/plugins", "/api/uploads", f"/api/uploads/{content}/thumb.jpg", "/api/jobs",
                 f"/api/jobs/{job['id']}", f"/api/jobs/{job['id']}/result?download=1", "/api/gallery",
                 "/api/storage", f"/api/jobs/{job['id']}/preview.jpg", "/api/uploads/0/thumb.jpg"):
        assert client.get(path).status_code in (200, 400, 404)
    client.upload(b"not an image", "../../etc/notes.png")
    client.post("/api/jobs", json=request_for(content, style, init="/etc/passwd"))
    result = Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/result").content))
    assert result.text["stylize:content"] == content and result.text["stylize:style"] == style

    failing = broken.start(broken.uploaded(CONTENT), broken.uploaded(STYLE), iterations=4)
    failed = broken.entries(failing["id"])[-1]
    received.append(json.dumps(broken.get("/api/jobs").json()).encode())
    assert failed["state"] == "failed" and f"~/.cache/stylize/{missing.name}" in failed["message"]

    secrets = [str(client.server.web.work.root), str(broken.server.web.work.root), str(Path.home()),
               str(Path(tiny_net[0]).parent)]
    for body in received:
        for secret in secrets:
            assert secret.encode() not in body, (secret, body[:300])
    assert len(received) > 20


# -- 2. a bounded work folder -----------------------------------------------------------------------

def test_the_work_folder_stays_under_its_limit_pruning_the_oldest_unneeded(start_server):
    """Before: 50 uploads grew the folder without bound, nothing could be deleted. After: oldest-first
    pruning of what no queued or running job needs; the limit and usage on /api/storage."""
    limit = 2 << 20
    client = start_server(max_storage_bytes=limit)
    content, style = client.uploaded(CONTENT), client.uploaded(STYLE)
    running = client.start(content, style, iterations=5000, optimizer="adam")  # holds its two uploads
    client.wait_for_step(running["id"], 2)
    ids = []
    for seed in range(12):  # ~200 KB each: 2.4 MB in all, over the 2 MiB limit
        response = client.upload(noise_png(seed), f"noise{seed}.png")
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        report = client.get("/api/storage").json()
        assert report["limit"] == limit and report["used"] <= limit, report
    kept = {upload["id"] for upload in client.get("/api/uploads").json()["uploads"]}
    assert {content, style, ids[-1]} <= kept and ids[0] not in kept  # the oldest went first
    assert sorted(kept - {content, style}) == sorted(ids[len(ids) - len(kept) + 2:])
    for upload in set(ids) - kept:  # all of an upload goes: image, label, thumbnail
        assert not list(client.server.web.work.uploads.glob(f"{upload}*"))
    client.post(f"/api/jobs/{running['id']}/cancel")
    assert client.entries(running["id"])[-1]["state"] == "cancelled"


def test_an_upload_that_cannot_fit_beside_what_running_jobs_need_is_refused(start_server):
    client = start_server(max_storage_bytes=1 << 20)
    first = client.upload(noise_png(1, 400))  # ~480 KB
    assert first.status_code == 201
    job = client.start(first.json()["id"], first.json()["id"], iterations=5000, optimizer="adam")
    client.wait_for_step(job["id"], 1)
    second = client.upload(noise_png(2, 400))
    assert second.status_code == 507 and "the work folder is full" in second.json()["error"]
    assert "--max-storage" in second.json()["error"]
    client.post(f"/api/jobs/{job['id']}/cancel")
    client.entries(job["id"])


def test_delete_endpoints_need_csrf_and_refuse_what_a_running_job_needs(client, pair):
    content, style = pair
    done = client.start(content, style, iterations=3)
    assert client.entries(done["id"])[-1]["state"] == "finished"
    running = client.start(content, style, iterations=5000, optimizer="adam")
    client.wait_for_step(running["id"], 1)
    no_csrf = requests.delete(f"{client.url}/api/jobs/{done['id']}", timeout=10)
    assert no_csrf.status_code == 403 and client.get(f"/api/jobs/{done['id']}/result").status_code == 200
    busy = client.http.delete(f"{client.url}/api/uploads/{content}", timeout=10)
    assert busy.status_code == 409 and "cancel it first" in busy.json()["error"]
    assert client.http.delete(f"{client.url}/api/jobs/{running['id']}", timeout=10).status_code == 409
    deleted = client.http.delete(f"{client.url}/api/jobs/{done['id']}", timeout=10)
    assert deleted.status_code == 200 and deleted.json()["storage"]["used"] > 0
    assert client.get(f"/api/jobs/{done['id']}/result").status_code == 404
    assert client.get(f"/api/jobs/{done['id']}").status_code == 404
    assert done["id"] not in [item["id"] for item in client.get("/api/gallery").json()["results"]]
    client.post(f"/api/jobs/{running['id']}/cancel")
    assert client.entries(running["id"])[-1]["state"] == "cancelled"
    assert client.http.delete(f"{client.url}/api/uploads/{content}", timeout=10).status_code == 200
    assert client.http.delete(f"{client.url}/api/uploads/{content}", timeout=10).status_code == 404
    assert content not in [u["id"] for u in client.get("/api/uploads").json()["uploads"]]
    assert client.http.delete(f"{client.url}/api/uploads/..%2f..%2fetc%2fpasswd", timeout=10).status_code in (400, 404)


def test_max_storage_sizes():
    here = Path(".")
    assert parse_size("500M", here) == 500 << 20 and parse_size("1.5GiB", here) == int(1.5 * (1 << 30))
    assert parse_size("2g", here) == 2 << 30 and parse_size("64", here) == 64 << 20
    assert 0 < parse_size("10%", here) < parse_size("20%", here)
    for bad in ("lots", "0%", "150%", "-1G", "10K"):
        with pytest.raises(UsageError, match="--max-storage"):
            parse_size(bad, here)


def test_a_bad_max_storage_is_one_line_before_anything_starts(tmp_path):
    result = subprocess.run([sys.executable, "-c", "from stylize.cli.main import cli; cli()", "serve", "--port", "0",
                             "--work", str(tmp_path / "work"), "--max-storage", "lots"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.splitlines() == [
        "stylize: error: --max-storage 'lots': give a size such as 500M, 2G or 1.5GiB, or a share of the free disk "
        "space such as 30%"]
    assert not (tmp_path / "work").exists()


# -- 5. what aiohttp's parsers raise is a 400, never a 500 with a traceback -------------------------------

def _multipart(filename: str) -> tuple[dict, bytes]:
    boundary = "xXxBOUNDARYxXx"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode("latin-1") + noise_png(0, 8) + f"\r\n--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body


@pytest.mark.parametrize("filename", ["a" * 100_000, "bad\x00name.png", "esc\x1b[31m.png"])
def test_a_hostile_upload_filename_is_a_400(client, filename):
    """Before: HTTP 500 with a traceback (aiohttp LineTooLong / InvalidHeader). After: the server's JSON 400."""
    headers, body = _multipart(filename)
    status, answer = raw_request(client, "POST", "/api/uploads", {**headers, "Host": f"127.0.0.1:{client.server.port}",
                                                                  "X-Stylize-CSRF": client.csrf}, body)
    assert status == 400, answer[:300]
    assert b"Traceback" not in answer and json.loads(answer)["error"].startswith("malformed multipart body (")
    assert len(json.loads(answer)["error"]) < 300


def test_json_nested_ten_thousand_deep_is_a_400(client):
    """Before: RecursionError in json.loads, HTTP 500. After: 400 with one line."""
    response = client.post("/api/jobs", data="[" * 10_000 + "]" * 10_000, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json() == {"error": "the request body is JSON nested too deeply"}


# -- 6. a restart after kill -9 tells the checkpoint's real iteration ----------------------------------------

def serve_process(tiny_net, work: Path, **popen) -> tuple[subprocess.Popen, str, requests.Session]:
    """A real ``stylize serve`` process on the tiny network; its URL and a session with the page's CSRF header."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from stylize.cli.main import cli; cli()", "serve", "--port", "0", "--work", str(work),
         "--threads", "1", "--set", f"caffe.prototxt={tiny_net[0]}", "--set", f"caffe.weights={tiny_net[1]}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **popen)
    url = process.stdout.readline().split()[-1]
    page = requests.Session()
    page.headers["X-Stylize-CSRF"] = page.get(url, timeout=30).text.split(
        'name="stylize-csrf" content="')[1].split('"')[0]
    return process, url, page


def test_after_kill_9_a_restarted_server_names_the_checkpoint_it_resumes_from(start_server, tiny_net, tmp_path):
    """Before: "its checkpoint at iteration 0 is kept" while the resume started at 10. After: the same number."""
    work = tmp_path / "work"
    process, url, page = serve_process(tiny_net, work)
    try:
        ids = [page.post(url + "api/uploads", files={"file": (p.name, p.read_bytes())}, timeout=30).json()["id"]
               for p in (CONTENT, STYLE)]
        job = page.post(url + "api/jobs", json=request_for(*ids, iterations=5000, optimizer="adam"), timeout=30).json()
        checkpoint = checkpoints.path_for(work / "results" / f"{job['id']}.png")
        deadline = time.monotonic() + 120
        while checkpoints.step_of(checkpoint) is None:  # its first checkpoint, at iteration 10
            assert time.monotonic() < deadline, "no checkpoint in 120 s"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    step = checkpoints.step_of(checkpoint)
    restarted = start_server()
    record = restarted.job(job["id"])
    assert record["state"] == "interrupted" and record["step"] == step
    assert record["message"] == f"the server stopped before this job finished; its checkpoint at iteration {step} is kept"
    assert restarted.post(f"/api/jobs/{job['id']}/resume").status_code == 200
    stream = restarted.events(job["id"])
    started = next(entry for _, entry in stream if entry["type"] == "started")
    stream.close()  # not to the end: the job has 5000 iterations
    assert started["first_step"] == step
    restarted.post(f"/api/jobs/{job['id']}/cancel")


# -- 8. a link planted in the work folder is not followed ------------------------------------------------

def test_a_symlink_in_the_work_folder_is_not_served_or_listed(client, pair, tmp_path):
    """Before: ``results/<id>.png`` -> any file the server can read was served as image/png. After: 404."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's private notes")
    work = client.server.web.work
    fake_job = "0123456789abcdef"
    (work.results / f"{fake_job}.png").symlink_to(secret)
    upload_id = "0" * 32 + ".png"
    (work.uploads / upload_id).symlink_to(secret)
    Path(f"{work.uploads / pair[0]}.jpg").unlink()
    Path(f"{work.uploads / pair[0]}.jpg").symlink_to(secret)
    for path in (f"/api/jobs/{fake_job}/result", f"/api/uploads/{pair[0]}/thumb.jpg",
                 f"/api/uploads/{upload_id}/thumb.jpg"):
        response = client.get(path)
        assert response.status_code == 404 and b"private" not in response.content, path
    assert upload_id not in [u["id"] for u in client.get("/api/uploads").json()["uploads"]]
    assert fake_job not in [r["id"] for r in client.get("/api/gallery").json()["results"]]
    refused = client.post("/api/jobs", json=request_for(upload_id, pair[1]))
    assert refused.status_code == 404 and "private" not in refused.text


def test_an_upload_of_undeclared_length_is_counted_once_it_is_here(start_server):
    client = start_server(max_storage_bytes=1 << 20)
    first = client.upload(noise_png(1, 400))  # ~480 KB, held by a running job
    job = client.start(first.json()["id"], first.json()["id"], iterations=5000, optimizer="adam")
    client.wait_for_step(job["id"], 1)
    headers, body = _multipart("big.png")
    body = body.replace(noise_png(0, 8), noise_png(2, 400))

    def chunks():  # chunked transfer: no Content-Length to refuse it by
        for start in range(0, len(body), 65536):
            yield body[start:start + 65536]
    response = client.post("/api/uploads", data=chunks(), headers=headers)
    assert response.status_code == 507 and "the work folder is full" in response.json()["error"]
    assert [u["id"] for u in client.get("/api/uploads").json()["uploads"]] == [first.json()["id"]]
    assert client.get("/api/storage").json()["used"] <= 1 << 20
    client.post(f"/api/jobs/{job['id']}/cancel")
    client.entries(job["id"])


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_the_servers_disk_refusing_a_checkpoint_is_a_warning_on_the_page_and_the_job_finishes(tiny_net, tmp_path):
    """A real fault: the server process may write no file over 20 KB; a 48 px checkpoint is 27 KB, its result 7."""
    process, url, page = serve_process(tiny_net, tmp_path / "work", preexec_fn=_file_size_limit(20_000))
    try:
        ids = [page.post(url + "api/uploads", files={"file": (f"{n}.png", noise_png(n, 64))}, timeout=30).json()["id"]
               for n in (1, 2)]
        refused = page.post(url + "api/uploads", files={"file": ("big.png", noise_png(3, 200))}, timeout=30)
        assert refused.status_code == 507
        assert refused.json()["error"] == ("big.png: the server could not store it (File too large); delete some "
                                           "uploads or results, or try later")
        job = page.post(url + "api/jobs", json=request_for(*ids, iterations=12), timeout=30).json()["id"]
        with page.get(f"{url}api/jobs/{job}/events", stream=True, timeout=60) as stream:
            entries = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith(b"data: ")]
        assert [e["message"] for e in entries if e["type"] == "warning"] == [
            f"could not write the checkpoint at iteration 10 to {job}.png.checkpoint.npz (File too large); "
            "the run goes on"]
        assert entries[-1]["state"] == "finished" and page.get(f"{url}api/jobs/{job}/result", timeout=30).ok
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)


def test_a_damaged_checkpoint_is_replaced_by_the_previous_one_said_on_the_page(client, pair):
    job = client.start(*pair, iterations=5000, optimizer="adam")
    client.wait_for_step(job["id"], 22)
    client.post(f"/api/jobs/{job['id']}/cancel")
    assert client.entries(job["id"])[-1]["state"] == "cancelled"
    path = checkpoints.path_for(client.server.web.work.result(job["id"]))
    previous = checkpoints.load(checkpoints.previous_for(path)).step
    path.write_bytes(path.read_bytes()[:64])
    assert client.post(f"/api/jobs/{job['id']}/resume").status_code == 200
    entries = client.events(job["id"])
    before_running = []  # what the page reads before the run starts
    for _, entry in entries:
        if entry["type"] in ("started", "step"):
            break
        before_running.append(entry)
    entries.close()
    assert [(e["type"], e.get("message")) for e in before_running if e["type"] == "warning"] == [
        ("warning", f"{path.name} is damaged; resuming from the previous checkpoint, at iteration {previous}")]
    assert entry["type"] == "started" and entry["first_step"] == previous
    client.post(f"/api/jobs/{job['id']}/cancel")
    client.entries(job["id"])


def test_a_running_jobs_page_gets_only_the_warnings_of_its_own_thread():
    """The checkpoint logger is the process's: a job made meanwhile on another thread (a resume reading a
    damaged checkpoint) must not put its warning in the running job's log; that job publishes its own."""
    import logging
    import threading

    from stylize.serve.jobs import _Warnings

    class Record:
        published: list = []

        def publish(self, entry):
            self.published.append(entry)

        def clean(self, message):
            return message

    record = Record()
    log = logging.getLogger(checkpoints.__name__)
    handler = _Warnings(record)
    log.addHandler(handler)
    try:
        other = threading.Thread(target=log.warning, args=("stylize: warning: another job's checkpoint",))
        other.start()
        other.join()
        log.warning("stylize: warning: this job's checkpoint")
    finally:
        log.removeHandler(handler)
    assert record.published == [{"type": "warning", "message": "this job's checkpoint"}]
