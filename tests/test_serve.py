"""``stylize serve``: every endpoint through a real HTTP client, a server on 127.0.0.1 running real jobs.

Jobs run the tiny random-weights Caffe network (``tests/tinynet.py``), fixed
for every job the way an operator fixes files (``stylize serve --set
caffe.prototxt=...``), so a run takes a fraction of a second. The browser
test (``test_serve_browser.py``) runs the real VGG19.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
from PIL import Image

from stylize import Job, events
from stylize.core.run import checkpoint as checkpoints
from stylize.core import plugins
from stylize.core.errors import UsageError
from stylize.core.contracts.options import LOSS_OPTIONS, declared
from stylize.core.request.settings import Settings
from stylize.serve import preview_server
from stylize.serve.config import ServeConfig, is_loopback
from stylize.serve.server import Server

IMAGES = Path(__file__).resolve().parent.parent / "examples" / "images"
CONTENT, STYLE = IMAGES / "astronaut.jpg", IMAGES / "the_scream.jpg"
#: tol 0: these tests count, time and cancel runs by their iterations, which a tiny network's
#: converged objective would otherwise end early.
TINY_SETTINGS = {"backend": "caffe", "length": 48, "scales": 1, "tol": 0, "content_layers": "conv2",
                 "style_layers": "conv1,conv2"}


class Client:
    """A requests session for one server: the page's CSRF header on every request, SSE read as JSON."""

    def __init__(self, server: Server):
        self.server = server
        self.url = server.url.split("?")[0].rstrip("/")
        self.http = requests.Session()
        page = self.http.get(self.url + "/", timeout=10)
        self.csrf = re.search(r'name="stylize-csrf" content="([^"]+)"', page.text).group(1)
        self.http.headers["X-Stylize-CSRF"] = self.csrf

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.http.post(self.url + path, timeout=30, **kwargs)

    def upload(self, path_or_bytes, name: str | None = None) -> requests.Response:
        data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
        name = name or (path_or_bytes.name if isinstance(path_or_bytes, Path) else "upload.bin")
        return self.post("/api/uploads", files={"file": (name, data, "application/octet-stream")})

    def uploaded(self, path: Path) -> str:
        response = self.upload(path)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def start(self, content: str, style: str, **settings) -> dict:
        response = self.post("/api/jobs", json=request_for(content, style, **settings))
        assert response.status_code == 201, response.text
        return response.json()

    def events(self, job_id: str, last_event_id: int | None = None):
        """(id, entry) for each event of the job's stream, until the server ends it."""
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        with self.http.get(f"{self.url}/api/jobs/{job_id}/events", stream=True, timeout=60,
                           headers=headers) as response:
            assert response.status_code == 200 and response.headers["Content-Type"] == "text/event-stream"
            event_id = None
            for line in response.iter_lines():
                if line.startswith(b"id: "):
                    event_id = int(line[4:])
                elif line.startswith(b"data: "):
                    yield event_id, json.loads(line[6:])
                elif not line:
                    event_id = None

    def entries(self, job_id: str, **kwargs) -> list[dict]:
        return [entry for _, entry in self.events(job_id, **kwargs)]

    def wait_for_step(self, job_id: str, step: int) -> None:
        for _, entry in self.events(job_id):
            if entry["type"] == "step" and entry["step"] >= step:
                return
        raise AssertionError(f"job {job_id} ended before iteration {step}")

    def job(self, job_id: str) -> dict:
        return self.get(f"/api/jobs/{job_id}").json()


def request_for(content: str, style: str, **settings) -> dict:
    return {"content": content, "styles": [{"upload": style, "weight": 1.0}],
            "settings": {**TINY_SETTINGS, "iterations": 12, **settings}}


@pytest.fixture
def start_server(tmp_path, tiny_net):
    """``start_server(**config)``: a Server on 127.0.0.1 (a free port) running the tiny network; stopped after."""
    prototxt, weights = tiny_net
    started = []

    def start(**overrides) -> Client:
        config = ServeConfig(port=0, work=tmp_path / "work", preview_every=0.0, threads=1,
                             fixed_options={"caffe": {"prototxt": prototxt, "weights": weights}})
        for key, value in overrides.items():
            setattr(config, key, value)
        server = Server(config).start()
        started.append(server)
        return Client(server) if not config.token else server
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def client(start_server) -> Client:
    return start_server()


@pytest.fixture
def pair(client) -> tuple[str, str]:
    """The bundled content and style images, uploaded."""
    return client.uploaded(CONTENT), client.uploaded(STYLE)


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def raw_request(client: Client, method: str, path: str, headers: dict | None = None,
                body: bytes | None = None) -> tuple[int, bytes]:
    """A request sent exactly as written (requests would normalize ``..`` and fill in headers)."""
    connection = http.client.HTTPConnection("127.0.0.1", client.server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host="Host" in (headers or {}))
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- the page and its files -------------------------------------------------------------------

def test_the_page_its_files_and_its_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert 'name="stylize-mode" content="full"' in page.text and "{{" not in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["X-Frame-Options"] == "DENY"
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(kind)
        assert response.content == (Path(__file__).parent.parent / "stylize/serve/static" / name).read_bytes()
    missing = client.get("/static/index.html")  # served only at /, with its CSRF value filled in
    assert missing.status_code == 404 and missing.json() == {"error": "not found"}
    assert client.get("/api/nothing").status_code == 404


def test_plugins_lists_every_installed_plugin_with_its_declared_options(client, tiny_net):
    catalogue = client.get("/api/plugins").json()
    for kind, group in (("backends", "stylize.backends"), ("losses", "stylize.losses"),
                        ("optimizers", "stylize.optimizers")):
        assert [plugin["name"] for plugin in catalogue[kind]] == plugins.names(group)
        for plugin in catalogue[kind]:
            own = declared(plugins.load(group, plugin["name"])) or {}
            generic = [option.name for option in LOSS_OPTIONS] if kind == "losses" else []
            # A third-party plugin's options appear as it declares them, defaults included: nothing here names them.
            assert [option["name"] for option in plugin["options"]] == generic + [n for n in own if n not in generic]
            for option in plugin["options"]:
                if option["name"] in own:
                    assert option["default"] == own[option["name"]].default
                    assert option["path"] == own[option["name"]].path
    adam = next(p for p in catalogue["optimizers"] if p["name"] == "adam")
    assert {o["name"]: o["default"] for o in adam["options"]}["lr"] == 10.0
    caffe = {o["name"]: o for o in next(p for p in catalogue["backends"] if p["name"] == "caffe")["options"]}
    assert caffe["prototxt"]["path"] and caffe["prototxt"]["fixed"] == Path(tiny_net[0]).name  # fixed by the server, shown by name
    assert catalogue["defaults"]["backend"] == "caffe-vgg19" and catalogue["defaults"]["losses"] == ["gram"]
    assert catalogue["presets"]["photo"]["losses"] == ["gram", "affine"]
    qualities = catalogue["qualities"]  # each sets the same fields, normal back to the defaults
    assert list(qualities) == ["draft", "normal", "best"] and qualities["normal"]["iterations"] == Settings.iterations
    assert qualities["draft"]["iterations"] < Settings.iterations < qualities["best"]["iterations"]
    assert {len(values) for values in qualities.values()} == {len(qualities["draft"])}
    assert {"content", "style", "noise", "fast"} <= set(catalogue["inits"]) and "file" not in catalogue["inits"]
    assert {"fast", "file", "noise"} <= {p["name"] for p in catalogue["starts"] if p["options"]}  # each offered
    assert catalogue["limits"]["max_length"] == 2048


# -- uploads ----------------------------------------------------------------------------------

def test_an_upload_is_kept_under_a_server_chosen_name_with_a_thumbnail(client):
    response = client.upload(CONTENT.read_bytes(), "../../holiday/../astronaut.jpg")
    assert response.status_code == 201
    upload = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", upload["id"]) and upload["name"] == "astronaut.jpg"
    assert (upload["width"], upload["height"], upload["format"]) == (512, 512, "JPEG")
    work = client.server.web.work
    assert (work.uploads / upload["id"]).read_bytes() == CONTENT.read_bytes()
    assert client.get("/api/uploads").json()["uploads"] == [upload]
    thumb = client.get(upload["thumb"])
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 320)
    assert files_under(work.incoming) == [] and not list(work.root.parent.glob("holiday*"))


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG file whose header declares ``width`` x ``height`` (a decompression bomb's signature)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


BAD_UPLOADS = {
    "text file": (b"name,value\nphoto,3\n" * 20, "notes.csv", 400, "not an image file"),
    "truncated image": (CONTENT.read_bytes()[:20000], "cut.jpg", 400, "damaged or truncated"),
    "oversized declared dimensions": (png_declaring(100_000, 100_000), "bomb.png", 400,
                                      "declares more pixels than this server accepts"),
    "dimensions over the server's limit": (png_declaring(8000, 6000), "big.png", 400,
                                           "declares 8000x6000 pixels, more than the 40,000,000"),
    "empty file": (b"", "empty.png", 400, "empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_a_bad_upload_is_refused_with_a_clear_message_and_nothing_written(client, case):
    data, name, status, words = BAD_UPLOADS[case]
    response = client.upload(data, name)
    assert response.status_code == status and words in response.json()["error"], response.text
    assert response.json()["error"].startswith(name)  # named as the user knows it, not by a server path
    assert files_under(client.server.web.work.uploads) == [] and files_under(client.server.web.work.incoming) == []
    assert client.get("/api/uploads").json() == {"uploads": []}


def test_a_huge_body_is_refused_before_it_is_read_or_while_streaming(start_server):
    client = start_server(max_upload_bytes=1 << 20)
    work = client.server.web.work
    # Declared too large: refused from the header alone (the body is never sent).
    status, body = raw_request(client, "POST", "/api/uploads", {
        "Host": f"127.0.0.1:{client.server.port}", "X-Stylize-CSRF": client.csrf,
        "Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(10 << 30)})
    assert status == 413 and b"10,737,418,240 bytes" in body
    # No length declared (chunked): counted while streaming, cut off at the limit.
    big = CONTENT.read_bytes() * 40  # 3 MB

    def chunks():
        boundary = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n\r\n"
        yield boundary
        for start in range(0, len(big), 1 << 16):
            yield big[start:start + (1 << 16)]
        yield b"\r\n--b--\r\n"
    try:
        response = client.post("/api/uploads", data=chunks(),
                               headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert response.status_code == 413 and "more than 1,048,576 bytes" in response.json()["error"]
    except requests.ConnectionError:
        pass  # the server may close the connection before the client has sent it all; what matters is below
    assert files_under(work.uploads) == [] and files_under(work.incoming) == []
    # Other requests take at most max_json_bytes.
    response = client.post("/api/jobs", data=b"{" + b" " * (70 * 1024) + b"}",
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "at most 65,536" in response.json()["error"]


def test_an_upload_must_be_multipart_with_a_file_field(client):
    response = client.post("/api/uploads", data=CONTENT.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 415 and "multipart/form-data" in response.json()["error"]
    response = client.post("/api/uploads", files={"picture": ("a.jpg", CONTENT.read_bytes())})
    assert response.status_code == 400 and "field named \"file\"" in response.json()["error"]
    assert files_under(client.server.web.work.root) == []


# -- paths ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/..%2fserver.py", "/static/%2e%2e%2fserver.py", "/static/..%5cserver.py",
    "/static/%2e%2e/%2e%2e/__init__.py", "/../../../../etc/passwd", "/static//etc/passwd",
    "/api/uploads/..%2f..%2f..%2fetc%2fpasswd/thumb.jpg", "/api/uploads/../../etc/passwd/thumb.jpg",
    "/api/jobs/..%2f..%2fetc%2fpasswd/result", "/api/jobs/../../../etc/passwd", "/api/jobs/%2e%2e/result",
    "/api/jobs/0123456789abcdef/result", "/api/jobs/0123456789abcdef/../../jobs/x/result",
])
def test_path_traversal_is_refused(client, path):
    status, body = raw_request(client, "GET", path, {"Host": f"127.0.0.1:{client.server.port}"})
    assert status in (400, 404), (status, body[:200])
    assert b"root:" not in body and b"import" not in body and b"\x89PNG" not in body


def test_a_job_names_images_only_by_upload_id(client, pair):
    content, style = pair
    for bad in ("../../../etc/passwd", "/etc/passwd", str(CONTENT), f"../uploads/{content}", content + "/.",
                content.upper(), {"path": "/etc/passwd"}):
        response = client.post("/api/jobs", json=request_for(bad, style))
        assert response.status_code == 400, (bad, response.text)
        assert "is not an upload id" in response.json()["error"]
    response = client.post("/api/jobs", json=request_for(content, style, init="/etc/passwd"))
    assert response.status_code == 400  # the installed starts (plugins: more may be there) or an upload
    assert re.search(r"choose (\w+, )*content, (\w+, )*noise, (\w+, )*style or an uploaded image", response.text)
    response = client.post("/api/jobs", json=request_for(content, "0" * 32 + ".png"))
    assert response.status_code == 404 and "upload the image again" in response.json()["error"]
    assert client.get("/api/jobs").json() == {"jobs": []}


# -- jobs --------------------------------------------------------------------------------------

def test_a_full_job_through_the_event_stream(client, pair):
    job = client.start(*pair, iterations=8)
    assert job["state"] == "queued" and job["position"] == 1 and job["label"] == "astronaut.jpg \u00d7 the_scream.jpg"
    stream = list(client.events(job["id"]))
    kinds = [entry["type"] for _, entry in stream]
    assert kinds[:2] == ["state", "state"] and [e["state"] for _, e in stream[:2]] == ["queued", "running"]
    assert kinds.index("started") < kinds.index("level") < kinds.index("step")
    steps = [entry for _, entry in stream if entry["type"] == "step"]
    assert [s["step"] for s in steps] == list(range(1, 9)) and {s["total"] for s in steps} == {8}
    assert all(set(s["terms"]) == {"content", "gram"} and s["loss"] > 0 for s in steps)
    previews = [entry for event_id, entry in stream if entry["type"] == "preview"]
    assert len(previews) >= 2 and all(event_id is None for event_id, e in stream if e["type"] == "preview")
    for preview in previews:  # JPEG images of the run at its size
        image = Image.open(io.BytesIO(base64.b64decode(preview["jpeg"])))
        assert image.format == "JPEG" and image.size == (48, 48) == (preview["width"], preview["height"])
    ids = [event_id for event_id, entry in stream if entry["type"] != "preview"]
    assert ids == list(range(1, len(ids) + 1))  # numbered, for Last-Event-ID
    final = stream[-1][1]
    assert final["type"] == "state" and final["state"] == "finished"
    assert final["result"] == f"/api/jobs/{job['id']}/result"
    summary = client.job(job["id"])
    assert summary["state"] == "finished" and summary["step"] == 8 and summary["result"] == final["result"]
    replay = client.entries(job["id"])  # a page opened after the end: the final image, then the final state
    assert replay[-1] == final and replay[-2]["type"] == "preview" and replay[-2]["step"] == 8
    result = client.get(final["result"] + "?download=1")
    assert result.status_code == 200 and result.headers["Content-Type"] == "image/png"
    assert result.headers["Content-Disposition"] == f'attachment; filename="stylize-{job["id"]}.png"'
    image = Image.open(io.BytesIO(result.content))
    assert image.size == (48, 48) and json.loads(image.text["stylize:settings"])["iterations"] == 8
    preview = client.get(f"/api/jobs/{job['id']}/preview.jpg")
    assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).format == "JPEG"
    assert not checkpoints.path_for(client.server.web.work.result(job["id"])).exists()


def test_cancel_keeps_a_checkpoint_and_resume_continues_from_it(client, pair):
    job = client.start(*pair, iterations=400, optimizer="adam")
    client.wait_for_step(job["id"], 12)  # past the first checkpoint (every 10)
    response = client.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    final = client.entries(job["id"])[-1]
    assert final["state"] == "cancelled" and final["checkpoint"] and final["step"] >= 12
    output = client.server.web.work.result(job["id"])
    assert not output.exists() and checkpoints.path_for(output).exists()
    summary = client.job(job["id"])
    assert summary["resumable"] and "checkpoint at iteration" in summary["message"]
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 409  # already over
    response = client.post(f"/api/jobs/{job['id']}/resume")
    assert response.status_code == 200 and response.json()["state"] == "queued"
    stream = client.entries(job["id"])
    started = next(entry for entry in stream if entry["type"] == "started")
    assert started["first_step"] == final["step"]
    assert [e["step"] for e in stream if e["type"] == "step"][0] == final["step"] + 1
    assert stream[-1]["state"] == "finished" and output.exists()
    assert client.post(f"/api/jobs/{job['id']}/resume").status_code == 409


def test_the_queue_runs_one_job_at_a_time_in_order(client, pair):
    first = client.start(*pair, iterations=3000, optimizer="adam")  # runs until cancelled
    client.wait_for_step(first["id"], 1)
    second, third = client.start(*pair), client.start(*pair, iterations=6)
    assert (second["position"], third["position"]) == (1, 2)
    states = {job["id"]: (job["state"], job["position"]) for job in client.get("/api/jobs").json()["jobs"]}
    assert states == {first["id"]: ("running", None), second["id"]: ("queued", 1), third["id"]: ("queued", 2)}
    assert client.post(f"/api/jobs/{second['id']}/cancel").json()["state"] == "cancelled"  # leaves the queue
    assert client.job(third["id"])["position"] == 1  # moved up
    assert client.job(first["id"])["state"] == "running"  # still the only one running
    client.post(f"/api/jobs/{first['id']}/cancel")
    stream = client.entries(third["id"])
    assert [(e["state"], e["position"]) for e in stream if e["type"] == "state"] == [
        ("queued", 2), ("queued", 1), ("running", None), ("finished", None)]
    jobs = {job["id"]: job for job in client.get("/api/jobs").json()["jobs"]}
    assert jobs[first["id"]]["state"] == "cancelled" and jobs[second["id"]]["state"] == "cancelled"
    assert jobs[second["id"]]["message"] == "cancelled before it started" and jobs[second["id"]]["step"] == 0
    assert jobs[first["id"]]["ended"] <= jobs[third["id"]]["ended"]
    assert [job["id"] for job in client.get("/api/jobs").json()["jobs"]] == [first["id"], second["id"], third["id"]]


def test_a_reloaded_page_reattaches_and_replays_the_events(client, pair):
    job = client.start(*pair, iterations=300, optimizer="adam")  # Adam runs every iteration asked for
    seen = []
    for event_id, entry in client.events(job["id"]):  # the page, until a "reload" closes its stream
        seen.append((event_id, entry))
        if entry["type"] == "step" and entry["step"] >= 3:
            break
    again = list(client.events(job["id"]))  # the reloaded page: everything from the start, then live
    logged = [(i, e) for i, e in again if e["type"] != "preview"]
    assert [i for i, _ in logged] == list(range(1, len(logged) + 1))
    assert [e for i, e in seen if e["type"] != "preview"] == [e for _, e in logged[:len(seen) - sum(
        1 for _, e in seen if e["type"] == "preview")]]
    assert [e["step"] for _, e in logged if e["type"] == "step"] == list(range(1, 301))
    assert logged[-1][1]["state"] == "finished"
    assert again[0][1]["type"] == "state" and any(e["type"] == "preview" for _, e in again)
    # A browser reconnecting by itself sends Last-Event-ID and gets only what it has not seen.
    later = client.entries(job["id"], last_event_id=10)
    assert [e["seq"] for e in later if e["type"] != "preview"] == list(range(11, len(logged) + 1))
    assert client.get(f"/api/jobs/{job['id']}/events", headers={"Last-Event-ID": "x"}).status_code == 400


def test_bad_job_requests_are_refused_with_a_message_and_nothing_queued(client, pair):
    content, style = pair
    cases = [
        (request_for(content, style, losses=["gramm"]), 400, "unknown loss 'gramm'; did you mean 'gram'?"),
        (request_for(content, style, options={"caffe": {"prototxt": "/etc/passwd"}}), 400,
         "caffe.prototxt is a file path on the server: set it when starting the server"),
        (request_for(content, style, options={"lbfgs": {"histroy": 5}}), 400, "has no option 'histroy'"),
        (request_for(content, style, options={"lbfgs": {"history": "many"}}), 400, "lbfgs.history='many'"),
        (request_for(content, style, options={"adam": {"lr": 1}}), 400, "options given for 'adam'"),
        (request_for(content, style, iterations="12"), 400, "iterations: expected a whole number"),
        (request_for(content, style, iterations=True), 400, "iterations: expected a whole number"),
        (request_for(content, style, length=5000), 400, "length 5000: this server takes at most 2048"),
        (request_for(content, style, iterations=0), 400, "iterations must be at least 1"),
        (request_for(content, style, gpu=0), 400, "unknown or server-only setting 'gpu'"),
        (request_for(content, style, output="/tmp/x.png"), 400, "unknown or server-only setting 'output'"),
        (request_for(content, style, ratio=float("inf")), 400, "ratio: expected a finite number"),
        ({**request_for(content, style), "styles": []}, 400, "give at least one style image"),
        ({**request_for(content, style), "styles": [{"upload": style}] * 9}, 400, "at most 8"),
        ({**request_for(content, style), "preset": "painterly"}, 400, "unknown preset 'painterly'"),
        ({**request_for(content, style), "output": "x.png"}, 400, "unknown field(s) in the job request: output"),
        ({**request_for(content, style), "content_mask": content}, 400, "one style mask per style image"),
        (["not", "an", "object"], 400, "a job request is a JSON object"),
    ]
    for body, status, words in cases:
        text = json.dumps(body, allow_nan=True)
        response = client.post("/api/jobs", data=text, headers={"Content-Type": "application/json"})
        assert response.status_code == status and words in response.json()["error"], (body, response.text)
    response = client.post("/api/jobs", data="{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    response = client.post("/api/jobs", data="content=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert client.get("/api/jobs").json() == {"jobs": []} and files_under(client.server.web.work.results) == []


def test_a_message_names_uploads_by_their_label_not_their_server_path(client):
    thin = io.BytesIO()
    Image.new("RGB", (400, 8), "gray").save(thin, format="PNG")
    content, style = client.upload(thin.getvalue(), "strip.png").json()["id"], client.uploaded(STYLE)
    response = client.post("/api/jobs", json=request_for(content, style))
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert "strip.png" in message and "16 px on the short side" in message
    assert str(client.server.web.work.root) not in message


# -- safety of the server itself ------------------------------------------------------------------

def test_a_non_loopback_bind_without_a_token_is_refused(tmp_path):
    for host in ("0.0.0.0", "::", "192.0.2.1", ""):
        with pytest.raises(UsageError, match="needs a token"):
            Server(ServeConfig(host=host, port=0, work=tmp_path))
    with pytest.raises(UsageError, match="at least 16 characters"):
        Server(ServeConfig(host="0.0.0.0", port=0, token="short", work=tmp_path))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.3.2.1")
    assert not any(is_loopback(host) for host in ("0.0.0.0", "", "::", "192.0.2.1", "no-such-host.invalid"))
    assert not (tmp_path / "uploads").exists()  # refused before anything was made


def test_the_token_is_checked_on_every_request(start_server):
    token = "t" * 24
    server = start_server(token=token)
    url = f"http://127.0.0.1:{server.port}"
    for path in ("/", "/static/app.js", "/api/jobs", "/api/plugins"):
        response = requests.get(url + path, timeout=10)
        assert response.status_code == 401 and "needs its token" in response.json()["error"]
    wrong = {"Authorization": "Bearer " + "x" * 24}
    assert requests.get(url + "/api/jobs", headers=wrong, timeout=10).status_code == 401
    assert requests.get(url + "/api/jobs?token=" + "x" * 24, timeout=10).status_code == 401
    assert requests.get(url + "/api/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    browser = requests.Session()
    first = browser.get(server.url, timeout=10)  # the printed URL: ?token=..., which sets a cookie
    assert first.status_code == 200 and server.url.endswith(f"?token={token}")
    cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert browser.get(url + "/api/jobs", timeout=10).status_code == 200  # the cookie from then on


def test_cross_site_requests_are_refused(client, pair):
    body = json.dumps(request_for(*pair))
    port = client.server.port
    headers = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json"}
    csrf = {"X-Stylize-CSRF": client.csrf}
    cases = [
        (headers, "cross-site request refused"),  # a page elsewhere cannot know the CSRF value
        ({**headers, "X-Stylize-CSRF": "guess"}, "cross-site request refused"),
        ({**headers, **csrf, "Origin": "http://evil.example"}, "Origin 'http://evil.example' is not this server"),
        ({**headers, **csrf, "Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site"),
        ({**headers, **csrf, "Host": "evil.example"}, "unexpected Host 'evil.example'"),  # DNS rebinding
        ({**headers, **csrf, "Host": f"rebind.example:{port}"}, "a guard against DNS rebinding"),
        ({**headers, "Content-Type": "application/x-www-form-urlencoded"}, "cross-site request refused"),
    ]
    for sent, words in cases:
        status, answer = raw_request(client, "POST", "/api/jobs", sent, body.encode())
        assert status == 403 and words in json.loads(answer)["error"], (sent, answer)
    status, _ = raw_request(client, "GET", "/api/jobs", {"Host": "evil.example"})
    assert status == 403  # reading is refused to a foreign name too
    status, _ = raw_request(client, "POST", f"/api/jobs/{'0' * 16}/cancel", {"Host": f"127.0.0.1:{port}"}, b"")
    assert status == 403
    status, _ = raw_request(client, "POST", "/api/jobs", {**headers, **csrf,
                                                          "Origin": f"http://127.0.0.1:{port}"}, body.encode())
    assert status == 201  # the page itself
    status, _ = raw_request(client, "POST", "/api/jobs", {**headers, **csrf, "Host": f"localhost:{port}"},
                            body.encode())
    assert status == 201
    assert len(client.get("/api/jobs").json()["jobs"]) == 2


# -- gallery, run again, stop and restart ------------------------------------------------------------

def test_the_gallery_reads_settings_from_the_png_and_runs_them_again(client, pair):
    job = client.start(*pair, iterations=6, ratio=3e3, options={"tv": {"weight": 5.0}}, losses=["gram", "tv"])
    assert client.entries(job["id"])[-1]["state"] == "finished"
    (item,) = client.get("/api/gallery").json()["results"]
    assert item["id"] == job["id"] and item["url"] == f"/api/jobs/{job['id']}/result"
    assert item["content"]["name"] == "astronaut.jpg" and [s["name"] for s in item["styles"]] == ["the_scream.jpg"]
    settings = item["settings"]
    assert (settings["iterations"], settings["ratio"], settings["length"]) == (6, 3e3, 48)
    assert settings["losses"] == ["gram", "tv"]
    assert settings["options"] == {"tv": {"weight": 5.0}}  # the server's file paths are not shown
    again = client.post("/api/jobs", json=item["request"])  # "run again with these settings"
    assert again.status_code == 201, again.text
    assert client.entries(again.json()["id"])[-1]["state"] == "finished"
    results = client.get("/api/gallery").json()["results"]
    assert [r["id"] for r in results] == [again.json()["id"], job["id"]]  # newest first
    assert results[0]["settings"] == results[1]["settings"]  # what "compare" lays side by side
    first, second = (Image.open(client.server.web.work.result(r["id"])) for r in results)
    assert first.text["stylize:settings"] == second.text["stylize:settings"]


def test_stopping_keeps_checkpoints_and_a_restarted_server_resumes(start_server, pair, client):
    running = client.start(*pair, iterations=400, optimizer="adam")
    client.wait_for_step(running["id"], 12)
    waiting = client.start(*pair, iterations=6)
    client.server.stop()  # Ctrl-C: the running job is cancelled after its iteration, its checkpoint kept
    work = client.server.web.work
    saved = json.loads(work.record(running["id"]).read_text())
    assert saved["state"] == "interrupted" and saved["checkpoint"] and saved["step"] >= 12
    assert checkpoints.path_for(work.result(running["id"])).exists()
    assert json.loads(work.record(waiting["id"]).read_text())["state"] == "queued"
    restarted = start_server()  # the same work folder
    jobs = {job["id"]: job for job in restarted.get("/api/jobs").json()["jobs"]}
    assert jobs[running["id"]]["state"] == "interrupted" and jobs[running["id"]]["resumable"]
    assert "checkpoint at iteration" in jobs[running["id"]]["message"]
    assert jobs[waiting["id"]]["state"] == "interrupted" and jobs[waiting["id"]]["resumable"]
    assert restarted.entries(running["id"]) == [{"type": "state", "job": running["id"], "state": "interrupted",
                                                  "message": jobs[running["id"]]["message"]}]
    assert restarted.post(f"/api/jobs/{running['id']}/resume").status_code == 200
    stream = restarted.entries(running["id"])
    assert next(e for e in stream if e["type"] == "started")["first_step"] == saved["step"]
    assert stream[-1]["state"] == "finished"
    assert restarted.post(f"/api/jobs/{waiting['id']}/resume").status_code == 200
    assert restarted.entries(waiting["id"])[-1]["state"] == "finished"


# -- the command line and the preview of one run ----------------------------------------------------

STYLIZE = [sys.executable, "-c", "from stylize.cli.main import cli; cli()"]


def test_stylize_serve_prints_its_url_and_stops_on_ctrl_c(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "STYLIZE_SERVE_TOKEN"}
    process = subprocess.Popen([*STYLIZE, "serve", "--port", "0", "--work", str(tmp_path / "work")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"stylize serve: (http://127\.0\.0\.1:\d+/)\n", line)
        if not match:
            process.kill()
            raise AssertionError(f"printed {line!r}; stderr: {process.communicate()[1]}")
        assert requests.get(match.group(1), timeout=10).status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert "stopping" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    refused = subprocess.run([*STYLIZE, "serve", "--host", "0.0.0.0", "--token", "short", "--work",
                              str(tmp_path / "other")], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "at least 16 characters" in refused.stderr
    assert not (tmp_path / "other").exists()


def test_preview_server_serves_the_page_of_one_cli_run(tiny_net, tmp_path):
    prototxt, weights = tiny_net
    output = tmp_path / "out.png"
    job = Job(CONTENT, STYLE, output=output, iterations=40, tol=0, length=48, scales=1, backend="caffe", threads=1,
              content_layers=["conv2"], style_layers=["conv1", "conv2"],
              options={"caffe": {"prototxt": prototxt, "weights": weights}})
    printed, received, streamed = [], [], []
    with preview_server(job, echo=printed.append, preview_every=0.0) as page:
        assert printed == [f"live preview: {page.url}"] and page.every == 0.0
        base = page.url.rstrip("/")
        html = requests.get(base + "/", timeout=10).text
        job_id = re.search(r'name="stylize-job" content="([0-9a-f]{16})"', html).group(1)
        assert 'name="stylize-mode" content="preview"' in html
        assert requests.get(base + "/api/plugins", timeout=10).status_code == 404  # one run: no app around it
        assert requests.post(base + "/api/jobs", json={}, timeout=10).status_code in (403, 404, 405)
        ready = threading.Event()

        def watch():
            with requests.get(f"{base}/api/jobs/{job_id}/events", stream=True, timeout=60) as response:
                ready.set()
                for line in response.iter_lines():
                    if line.startswith(b"data: "):
                        streamed.append(json.loads(line[6:]))
        watcher = threading.Thread(target=watch)
        watcher.start()
        ready.wait(10)
        job.run(page.watch(received.append), preview_every=page.every)
        watcher.join(30)
        assert requests.get(f"{base}/api/jobs/{job_id}/result", timeout=10).content == output.read_bytes()
    assert [type(e).__name__ for e in received][:3] == ["FirstImage", "Started", "LevelStarted"]  # the CLI's got all
    assert isinstance(received[-1], events.Finished)
    kinds = [entry["type"] for entry in streamed]
    assert "started" in kinds and kinds.count("step") == 40 and kinds.count("preview") >= 2
    assert streamed[-1]["state"] == "finished"
    with pytest.raises(requests.ConnectionError):  # gone with the run
        requests.get(base + "/", timeout=5)
    with preview_server(job, enabled=False) as off:  # without --preview: nothing started, nothing changed
        handler = received.append
        assert off.url is None and off.every is None and off.watch(handler) is handler


def test_old_jobs_keep_only_their_end_so_memory_stays_bounded(client, pair, monkeypatch):
    monkeypatch.setattr("stylize.serve.jobs.KEEP_LOGS", 1)
    first = client.start(*pair, iterations=5)
    assert client.entries(first["id"])[-1]["state"] == "finished"
    assert sum(e["type"] == "step" for e in client.entries(first["id"])) == 5  # the latest job: all of it
    second = client.start(*pair, iterations=5)
    assert client.entries(second["id"])[-1]["state"] == "finished"
    deadline = time.monotonic() + 10  # the worker trims logs just after a job's last event
    while len(old := client.entries(first["id"])) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["type"] for e in old] == ["state"] and old[0]["state"] == "finished"
    assert client.get(f"/api/jobs/{first['id']}/result").status_code == 200  # its result stays


def test_a_job_with_semantic_masks(client, pair):
    def mask(size: tuple[int, int]) -> bytes:
        image = Image.new("RGB", size, "red")
        image.paste((0, 0, 255), (0, size[1] // 2, size[0], size[1]))  # two regions: top red, bottom blue
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    content_mask = client.upload(mask((512, 512)), "content-mask.png").json()["id"]
    style_mask = client.upload(mask((503, 640)), "style-mask.png").json()["id"]
    request = {**request_for(*pair), "content_mask": content_mask, "style_masks": [style_mask]}
    job = client.post("/api/jobs", json=request)
    assert job.status_code == 201, job.text
    assert client.entries(job.json()["id"])[-1]["state"] == "finished"
    response = client.post("/api/jobs", json={**request, "style_masks": [None]})
    assert response.status_code == 400 and "one style mask per style image" in response.json()["error"]
