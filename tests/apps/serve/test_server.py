"""``aioir serve`` over plain HTTP (no browser): the page, uploads, results, one-line errors,
host and origin checks. The server runs the shipped default model on a free loopback port."""

from __future__ import annotations

import http.client
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from aioir.color import BT601_LUMA
from aioir.errors import ImageReadError
from aioir.io import load_image
from aioir.restore import Restorer
from serve_helpers import noisy16, sample, write_sample


def request(
    server: Any,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def upload(server: Any, file: Path, name: str | None = None, **query: str) -> tuple[int, Any]:
    params = "&".join(f"{k}={quote(v)}" for k, v in {"name": name or file.name, **query}.items())
    status, _, body = request(server, "POST", f"/api/jobs?{params}", file.read_bytes())
    return status, json.loads(body)


def wait_done(server: Any, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = request(server, "GET", f"/api/jobs/{job_id}")
        assert status == 200, body
        job = json.loads(body)
        if job["state"] in ("done", "failed", "expired"):
            return job
        assert time.monotonic() < deadline, f"job still {job['state']} after {timeout} s"
        time.sleep(0.05)


def result(server: Any, job_id: str, strength: float, tmp_path: Path, suffix: str) -> Path:
    status, headers, body = request(server, "GET", f"/api/jobs/{job_id}/result?strength={strength}")
    assert status == 200, body
    assert headers["Content-Disposition"].startswith("attachment;")
    out = tmp_path / f"result-{strength}{suffix}"
    out.write_bytes(body)
    return out


# ------------------------------------------------------------------ the page
def test_page_is_one_self_contained_file(served):
    status, headers, body = request(served, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "<script>" in page and "<style>" in page
    # nothing from anywhere else: no absolute URL, no external script/style/font/image
    assert not re.search(r"https?:|//[a-z0-9]", page, re.IGNORECASE)
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"(?!data:)", page)
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


def test_models_are_listed_with_the_limits(served):
    status, _, body = request(served, "GET", "/api/models")
    listing = json.loads(body)
    assert status == 200
    assert listing["models"][0] == {"key": "default", "label": "default (shipped)"}
    assert listing["default"] == "default" and listing["paths"] is True
    assert ".png" in listing["suffixes"] and ".tif" in listing["suffixes"]


# ------------------------------------------------------------------ restoring
@pytest.mark.parametrize(
    ("name", "bit_depth", "options"),
    [
        ("photo16.png", 16, {}),
        ("gray16.tif", 16, {"grayscale": True}),
        ("alpha.png", 8, {"alpha": "ramp"}),
    ],
)
def test_result_keeps_format_and_equals_the_restorer(
    served, reference, tmp_path, name, bit_depth, options
):
    pixels = noisy16((64, 40))
    if bit_depth == 8:
        pixels = (pixels // 257).astype(np.uint8)
    if options.get("alpha") == "ramp":
        options = {"alpha": np.linspace(0, 255, 64 * 40).reshape(40, 64).astype(np.uint8)}
    source = write_sample(tmp_path / name, pixels, **options)
    status, job = upload(served, source)
    assert status == 202, job
    assert (job["width"], job["height"]) == (64, 40) and job["result_name"].endswith(source.suffix)
    assert wait_done(served, job["id"])["state"] == "done"
    data = load_image(source)
    changes = []
    for strength in (1.0, 0.4):
        out = load_image(result(served, job["id"], strength, tmp_path, source.suffix))
        assert out.bit_depth == bit_depth and out.rgb.shape == (40, 64, 3)
        assert out.grayscale == data.grayscale and (out.alpha is None) == (data.alpha is None)
        if out.alpha is not None:
            np.testing.assert_array_equal(out.alpha, data.alpha)
        expected = Restorer(reference.model, strength=strength).restore_data(data)
        if data.grayscale:
            expected = np.repeat((expected @ np.asarray(BT601_LUMA))[:, :, None], 3, axis=2)
        level = 1 / (2**bit_depth - 1)
        assert np.abs(out.rgb - expected).max() <= 1.01 * level
        changes.append(np.abs(out.rgb - data.rgb).mean())
    # the model did change the noisy photo (the gray one least: v5 changes it by 0.003 on
    # average, the colour one by 0.038), by the strength asked for
    assert changes[0] > 0.002
    assert changes[1] == pytest.approx(0.4 * changes[0], rel=0.05, abs=2 * level)
    status, _, body = request(served, "GET", f"/api/jobs/{job['id']}/result?strength=2")
    assert (
        status == 400 and json.loads(body)["error"] == "strength must be between 0 and 1, not 2.0"
    )


def test_jpeg_comes_back_as_jpeg(served, reference, tmp_path):
    source = write_sample(tmp_path / "wine.jpg", sample("wine", (72, 48)))
    status, job = upload(served, source)
    assert status == 202
    assert wait_done(served, job["id"])["state"] == "done"
    path = result(served, job["id"], 1.0, tmp_path, ".jpg")
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    out = load_image(path)
    assert out.rgb.shape == (48, 72, 3) and out.bit_depth == 8
    expected = reference.restore_data(load_image(source))
    assert np.abs(out.rgb - expected).mean() < 4 / 255  # written as JPEG, quality 95


# ------------------------------------------------------------------ errors
def _cli_message(path: Path) -> str:
    """What ``aioir restore`` prints for this file (after ``failed:``), as the user named it."""
    with pytest.raises(ImageReadError) as exc:
        load_image(path)
    return str(exc.value).replace(str(path), path.name)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.jpg", b"shopping list: milk, eggs\n"),
        ("anim.gif", b"GIF89a...."),
        ("cut.png", "truncate"),
        ("empty.png", b""),
    ],
)
def test_bad_file_gets_the_cli_one_line_message(served, tmp_path, name, content):
    path = tmp_path / name
    if content == "truncate":
        whole = write_sample(tmp_path / "whole.png", sample("life", (40, 30))).read_bytes()
        content = whole[: len(whole) // 2]
    path.write_bytes(content)
    status, answer = upload(served, path)
    assert status == 400
    message = answer["error"]
    assert message == _cli_message(path)
    assert message.startswith(f"{name}: ") and "\n" not in message
    assert str(tmp_path) not in message and "aioir-serve-" not in message


def test_a_bad_model_choice_is_refused(served, tmp_path):
    source = write_sample(tmp_path / "a.png", sample("life", (24, 16)))
    status, answer = upload(served, source, model="nonsense")
    assert status == 400 and answer["error"].startswith("a.png: unknown model 'nonsense'")
    status, answer = upload(served, source, path=str(tmp_path))
    assert status == 400 and "not a saved model" in answer["error"]
    status, answer = upload(served, source, path=str(tmp_path / "missing"))
    assert status == 400 and "no such model file or folder" in answer["error"]


def test_other_hosts_and_origins_are_refused(served, tmp_path):
    # DNS rebinding: a request that names another host
    status, _, _ = request(served, "GET", "/", headers={"Host": f"evil.example:{served.port}"})
    assert status == 403
    # cross-site upload from another page open in the browser
    body = write_sample(tmp_path / "x.png", sample("life", (16, 16))).read_bytes()
    status, _, answer = request(
        served, "POST", "/api/jobs?name=x.png", body, {"Origin": "http://evil.example"}
    )
    assert status == 403 and b"evil.example" in answer
    same_origin = {"Origin": f"http://127.0.0.1:{served.port}"}
    status, _, answer = request(served, "POST", "/api/jobs?name=x.png", body, same_origin)
    assert status == 202
    job_id = json.loads(answer)["id"]
    status, _, _ = request(served, "DELETE", f"/api/jobs/{job_id}", None, {"Origin": "null"})
    assert status == 403
    status, _, _ = request(served, "DELETE", f"/api/jobs/{job_id}", None, same_origin)
    assert status == 204
    assert request(served, "GET", f"/api/jobs/{job_id}")[0] == 404


def test_unknown_paths(served):
    assert request(served, "GET", "/etc/passwd")[0] == 404
    assert request(served, "GET", "/api/jobs/nope")[0] == 404
    assert request(served, "GET", "/api/jobs/nope/result")[0] == 404
    assert request(served, "GET", "/api/jobs/nope/before.png")[0] == 404
