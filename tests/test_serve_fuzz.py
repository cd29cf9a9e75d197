"""HTTP fuzz of every endpoint of ``stylize serve`` (issue 27): no 5xx, no traceback, the page answers throughout.

Hypothesis draws whole requests: a method and an endpoint of the API with
its path segments fuzzed (real upload and job ids, traversal, NUL, very
long, non-ASCII), a query, headers (the CSRF value or not, Host, Origin,
Sec-Fetch-Site, Last-Event-ID, Content-Type...) and a body (JSON values
nested and odd, near-valid job requests that really run, multipart uploads
with fuzzed file names, field names and bytes, raw bytes). Each is sent
exactly as drawn (``http.client``) to a real server on 127.0.0.1 running
the tiny network, with small limits so that the jobs it starts are cheap.
The suite runs a fixed, derandomized set (``EXAMPLES``) bounded in time;
``bench/serve_fuzz.py`` runs random ones for a set time and prints counts.
"""
from __future__ import annotations

import http.client
import io
import json
import time
import urllib.parse

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from .test_serve import CONTENT, STYLE, TINY_SETTINGS, Client, start_server  # noqa: F401 (fixture)

#: Examples in the suite, and the most seconds they may take together.
EXAMPLES, SECONDS = 120, 150
ENDPOINTS = [
    ("GET", "/"), ("GET", "/static/{name}"), ("GET", "/api/plugins"), ("GET", "/api/uploads"),
    ("POST", "/api/uploads"), ("GET", "/api/uploads/{upload}/thumb.jpg"), ("DELETE", "/api/uploads/{upload}"),
    ("GET", "/api/storage"), ("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/jobs/{job}"),
    ("GET", "/api/jobs/{job}/events"), ("GET", "/api/jobs/{job}/preview.jpg"), ("GET", "/api/jobs/{job}/result"),
    ("POST", "/api/jobs/{job}/cancel"), ("POST", "/api/jobs/{job}/resume"), ("DELETE", "/api/jobs/{job}"),
    ("GET", "/api/gallery"),
]
METHODS = ["GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS", "PATCH"]
ODD_SEGMENTS = ["..", "%2e%2e", "..%2f..%2fetc%2fpasswd", "%00", "a" * 5000, "%ff%fe", "\u00e9t\u00e9", "0" * 32 + ".png",
                "0" * 16, "app.js", "index.html", "style.css", "", "%0d%0aX-Evil:%201"]
ASCII = "".join(chr(code) for code in range(33, 127))
#: Header values: mostly printable (they reach the handlers), sometimes any byte but CR and LF (aiohttp's parser).
VALUE = st.one_of(*[st.text(alphabet=ASCII + " ", max_size=40)] * 4, st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=255, blacklist_characters="\r\n"), max_size=40))
MOSTLY = st.sampled_from([True] * 9 + [False])
TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255, blacklist_characters="\r\n"), max_size=40)


def _png(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
        buffer, format="PNG")
    return buffer.getvalue()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=20)


def requests_of(uploads: list[str], jobs: list[str]):
    """A strategy of raw requests: (method, path, headers, body) against a server holding ``uploads`` and ``jobs``."""
    segment = st.one_of(st.sampled_from(uploads + jobs), st.sampled_from(ODD_SEGMENTS),
                        TEXT.map(lambda text: urllib.parse.quote(text, safe="")))
    settings_ = st.fixed_dictionaries({}, optional={
        "iterations": st.integers(1, 30) | st.integers(-5, 40), "length": st.integers(16, 64) | st.integers(-5, 80), "ratio": st.floats(allow_nan=True),
        "optimizer": st.sampled_from(["lbfgs", "adam", "nope"]), "losses": st.lists(st.sampled_from(
            ["gram", "tv", "affine", "temporal", "x"]), max_size=3), "init": st.sampled_from(["content", "noise", "/etc/passwd"]
                                                                                             + uploads),
        "seed": st.integers(-1, 5) | st.none(), "scales": st.integers(0, 3), "bit_depth": st.sampled_from([8, 16, 7]),
        "options": st.dictionaries(st.sampled_from(["caffe", "adam", "tv", "zz"]), st.dictionaries(
            st.sampled_from(["prototxt", "lr", "weight", "pooling"]), JSON, max_size=2), max_size=2)})
    job_request = st.fixed_dictionaries({
        "content": st.sampled_from(uploads) | segment,
        "styles": st.lists(st.fixed_dictionaries({"upload": st.sampled_from(uploads) | JSON, "weight": JSON}),
                           max_size=3),
        "settings": settings_.map(lambda given: {**TINY_SETTINGS, "iterations": 3, **given}),
    }, optional={"content_mask": JSON, "style_masks": JSON, "preset": st.text(max_size=8), "extra": JSON})
    multipart = st.tuples(VALUE, st.sampled_from(["file", "file", "File", "", "other"]),
                          st.sampled_from([_png(), _png(20), b"", b"GIF89a", _png(12)[:40]]) | st.binary(max_size=200),
                          st.sampled_from(["xX", "", "a" * 80])).map(_multipart)
    body = st.one_of(st.none(), JSON.map(lambda value: ("application/json", json.dumps(value).encode())),
                     job_request.map(lambda value: ("application/json", json.dumps(value).encode())),
                     multipart, st.binary(max_size=300).map(lambda raw: ("application/octet-stream", raw)),
                     st.integers(1, 3000).map(lambda depth: ("application/json", b"[" * depth + b"]" * depth)))
    headers = st.fixed_dictionaries({}, optional={
        "Origin": st.sampled_from(["http://evil.example", "null"]) | VALUE, "Sec-Fetch-Site": st.sampled_from(
            ["cross-site", "same-site", "none", "same-origin"]), "Last-Event-ID": VALUE | st.integers(-3, 10**14).map(str),
        "Authorization": VALUE, "Cookie": VALUE, "Accept": VALUE, "Range": st.sampled_from(["bytes=0-3", "bytes=9-1", "x"]),
        "If-Modified-Since": VALUE, "Content-Type": st.sampled_from(["application/json", "multipart/form-data",
                                                                    "text/plain", "multipart/form-data; boundary="])})
    endpoint = st.one_of(st.sampled_from(ENDPOINTS), st.tuples(st.sampled_from(METHODS),
                                                                st.sampled_from([e[1] for e in ENDPOINTS])))
    query = st.sampled_from(["", "?download=1", "?after=3", "?after=x", "?token=abc", "?" + "q=1&" * 200]) | \
        TEXT.map(lambda text: "?" + urllib.parse.quote(text, safe="=&"))
    valid = st.fixed_dictionaries({
        "content": st.sampled_from(uploads),
        "styles": st.lists(st.fixed_dictionaries({"upload": st.sampled_from(uploads),
                                                  "weight": st.floats(0.1, 2)}), min_size=1, max_size=2),
        "settings": st.fixed_dictionaries({"iterations": st.integers(1, 8), "length": st.integers(16, 64),
                                           "optimizer": st.sampled_from(["lbfgs", "adam"]),
                                           "losses": st.sampled_from([["gram"], ["gram", "tv"]]),
                                           "init": st.sampled_from(["content", "noise"]),
                                           "seed": st.integers(0, 9)}).map(lambda given: {**TINY_SETTINGS, **given})})
    segments = st.lists(segment, min_size=3, max_size=3)
    anything = st.tuples(endpoint, segments, query, headers, body, MOSTLY, MOSTLY)
    # Shaped like the page's own requests, so that many get past the checks and really run or store something.
    job = st.tuples(st.just(("POST", "/api/jobs")), segments, st.just(""), st.just({}),
                    (valid | job_request).map(lambda value: ("application/json", json.dumps(value).encode())),
                    st.just(True), st.just(True))
    upload = st.tuples(st.just(("POST", "/api/uploads")), segments, st.just(""), st.just({}), multipart,
                       st.just(True), st.just(True))
    return st.one_of(anything, job, upload)


def _multipart(parts: tuple[str, str, bytes, str]) -> tuple[str, bytes]:
    filename, field, data, boundary = parts
    boundary = boundary or "b"
    head = f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\r\n"
    return f"multipart/form-data; boundary={boundary}", head.encode("latin-1") + data + f"\r\n--{boundary}--\r\n".encode()


def send(port: int, csrf: str, drawn) -> tuple[int, bytes, str, str]:
    """Send one drawn request exactly as drawn; (status, body, what was sent, for messages)."""
    (method, template), segments, query, headers, body, with_csrf, good_host = drawn
    path = urllib.parse.quote(template.format(name=segments[0], upload=segments[1], job=segments[2]) + query,
                              safe=ASCII)  # a request line is ASCII: the rest as UTF-8, %-encoded
    headers = dict(headers)
    if body is not None:
        headers.setdefault("Content-Type", body[0])
    if with_csrf:
        headers["X-Stylize-CSRF"] = csrf
    headers["Host"] = f"127.0.0.1:{port}" if good_host else "evil.example"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value.encode("latin-1") if isinstance(value, str) else value)
        raw = None if body is None else body[1]
        if raw is not None:
            connection.putheader("Content-Length", str(len(raw)))
        connection.endheaders(raw)
        response = connection.getresponse()
        return (response.status, response.read(), response.getheader("Content-Type", ""),
                f"{method} {path[:120]} {sorted(headers)}")
    finally:
        connection.close()


def check(client: Client, drawn) -> int:
    """The property: no 5xx, no traceback, errors as one-line JSON, and the page still answers. The status."""
    status, body, kind, sent = send(client.server.port, client.csrf, drawn)
    assert status < 500, (status, body[:300], sent)
    assert b"Traceback" not in body and b"File \"/" not in body, (body[:300], sent)
    if status >= 400 and kind.startswith("application/json") and body:  # (HEAD: no body)
        error = json.loads(body)["error"]
        assert isinstance(error, str) and "\n" not in error, (error, sent)
    elif status >= 400 and body:  # a request aiohttp's own parser refuses before any handler: its plain-text 400
        assert status == 400 and kind.startswith("text/plain") and len(body) < 400, (status, body[:300], sent)
    assert client.get("/").status_code == 200, f"the page stopped answering after {sent}"
    return status


def session(start_server) -> tuple[Client, list[str], list[str]]:
    """A server with small limits, two uploads and one finished job to aim at."""
    client = start_server(max_length=64, max_iterations=30, max_styles=3, max_json_bytes=16 * 1024)
    uploads = [client.uploaded(CONTENT), client.uploaded(STYLE)]
    job = client.start(*uploads, iterations=2)
    assert client.entries(job["id"])[-1]["state"] == "finished"
    return client, uploads, [job["id"]]


def test_every_endpoint_under_fuzzed_requests_never_fails_the_server(start_server):
    client, uploads, jobs = session(start_server)
    statuses: dict[int, int] = {}
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(requests_of(uploads, jobs))
    def one(drawn):
        if time.monotonic() - started > SECONDS:
            return  # bounded in time as well as in count: the rest of the examples pass at once
        status = check(client, drawn)
        statuses[status] = statuses.get(status, 0) + 1

    one()
    assert sum(statuses.values()) >= EXAMPLES // 2, statuses  # most ran before the time bound
    assert {200, 201, 400, 404} <= set(statuses), statuses  # jobs and uploads accepted, and refused
    for job in client.get("/api/jobs").json()["jobs"]:  # whatever the fuzz queued ends
        if job["state"] in ("queued", "running"):
            client.post(f"/api/jobs/{job['id']}/cancel")
