"""The web app: JSON API in-process (httpx over ASGI), limits and error messages, 20 concurrent
requests against a live uvicorn server, and the `crackseg serve` command."""

import asyncio
import base64
import io
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

import crackseg  # noqa: E402
from crackseg.cli import main  # noqa: E402
from crackseg.engine.checkpoint import model_payload, save_checkpoint  # noqa: E402
from crackseg.inference import Predictor  # noqa: E402
from crackseg.serve import Limits, create_app, running  # noqa: E402


class DarkIsCrack(nn.Module):
    """Logits that call every dark pixel (brightness < 0.5) crack: exact, known masks."""

    def forward(self, images):  # (B, 3, H, W) in [0, 1] -> (B, 2, H, W)
        crack = 40 * (0.5 - images.mean(dim=1, keepdim=True))
        return torch.cat([torch.zeros_like(crack), crack], dim=1)


def dark_app(**kw):
    return create_app(Predictor(DarkIsCrack(), window=64, mean=[0, 0, 0], std=[1, 1, 1]), **kw)


def png(image: np.ndarray, fmt: str = "PNG", **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def noise_image(height=40, width=40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


def line_image(height=96, width=128, row=40) -> np.ndarray:
    """Light grey with one black horizontal line: 3 px thick, 80 px long, from x = 20."""
    image = np.full((height, width, 3), 200, np.uint8)
    image[row : row + 3, 20:100] = 0
    return image


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def call(app, method: str, url: str, **kw) -> httpx.Response:
    """One request to `app` in-process (no sockets)."""

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, url, **kw)

    return asyncio.run(go())


def post(app, data: bytes, name="line.png", ctype="image/png", **fields) -> httpx.Response:
    return call(app, "POST", "/api/predict", files={"file": (name, data, ctype)}, data=fields)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained unet_small checkpoint (the real loading path, no training)."""
    model = crackseg.build_model("unet_small", base_channels=4, depth=2)
    config = {"image_size": 64, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
              "threshold": 0.4}  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint({**model_payload(model), "config": config}, path)


def test_predict_returns_mask_overlay_and_measurements():
    r = post(dark_app(), png(line_image()))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["filename"], body["width"], body["height"], body["threshold"]) == (
        "line.png", 128, 96, 0.5)  # fmt: skip
    mask = decode(body["mask_png_base64"])
    expected = np.zeros((96, 128), np.uint8)
    expected[40:43, 20:100] = 255
    np.testing.assert_array_equal(mask, expected)
    assert body["crack_fraction"] == pytest.approx(240 / (96 * 128))
    assert decode(body["overlay_png_base64"]).shape == (96, 128 + 72, 3)  # + the colour bar
    m = body["measurements"]
    assert m["count"] == 1 and m["image"] == "line.png"
    crack = m["cracks"][0]
    assert crack["length_px"] == pytest.approx(80, abs=3)
    assert crack["mean_width_px"] == pytest.approx(3, abs=0.6)
    assert crack["orientation_deg"] == pytest.approx(0, abs=1)
    assert (crack["bbox_x"], crack["bbox_y"], crack["bbox_w"], crack["bbox_h"]) == (20, 40, 80, 3)
    assert body["seconds"] > 0


def test_mm_per_px_from_server_and_form_field():
    app = dark_app(mm_per_px=0.5)
    m = post(app, png(line_image())).json()["measurements"]
    assert m["mm_per_px"] == 0.5
    assert m["total_length_mm"] == pytest.approx(m["total_length_px"] * 0.5, abs=0.01)
    m = post(app, png(line_image()), mm_per_px="0.1").json()["measurements"]
    assert m["mm_per_px"] == 0.1
    for bad in ("-1", "0", "abc", "nan"):
        r = post(app, png(line_image()), mm_per_px=bad)
        assert r.status_code == 422 and "mm_per_px must be a positive number" in r.json()["error"]


def test_no_cracks_gives_an_empty_table():
    body = post(dark_app(), png(np.full((50, 70, 3), 230, np.uint8))).json()
    assert body["measurements"]["count"] == 0 and body["crack_fraction"] == 0
    assert decode(body["mask_png_base64"]).max() == 0


def test_content_is_sniffed_not_the_name_or_type():
    r = post(dark_app(), png(line_image()), name="notes.txt", ctype="text/plain")
    assert r.status_code == 200 and r.json()["measurements"]["count"] == 1
    r = post(dark_app(), b"just some text, not pixels", name="photo.png")
    assert r.status_code == 415
    assert "not a PNG, JPEG, WebP, BMP, TIFF" in r.json()["error"]
    r = post(dark_app(), b"%PDF-1.7\n...", name="scan.jpg")
    assert r.status_code == 415 and "PDF" in r.json()["error"]


def test_jpeg_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    data = png(line_image(), "JPEG", quality=95, exif=exif)
    body = post(dark_app(), data, name="phone.jpg").json()
    assert (body["width"], body["height"]) == (96, 128)
    assert body["measurements"]["cracks"][0]["orientation_deg"] == pytest.approx(90, abs=1)


def png_with_size(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header claims width x height (the IDAT is tiny): a bomb."""
    data = bytearray(png(np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # IHDR CRC
    return bytes(data)


@pytest.mark.parametrize("size", [(5000, 5000), (100_000, 100_000)])
def test_too_many_pixels_is_refused_before_decoding(size):
    r = post(dark_app(), png_with_size(*size), name="bomb.png")
    assert r.status_code == 413
    assert "bomb.png" in r.json()["error"]


def test_pixel_and_byte_limits():
    app = dark_app(limits=Limits(max_upload_bytes=2000, max_pixels=64 * 64))
    r = post(app, png(line_image(64, 64)))
    assert r.status_code == 200, r.text
    r = post(app, png(line_image(64, 65)))
    assert r.status_code == 413 and "megapixels" in r.json()["error"]
    r = post(app, png(noise_image()))  # ~4.8 KB of incompressible pixels
    assert r.status_code == 413 and "upload" in r.json()["error"]


@pytest.mark.parametrize(
    "kw, status, message",
    [
        ({"files": {"file": ("empty.png", b"")}}, 422, "empty"),
        ({"files": {"file": ("cut.png", png(noise_image())[:2000])}}, 422, "corrupt or truncated"),
        ({"files": {"image": ("a.png", png(line_image()))}}, 422, "missing multipart field 'file'"),
        ({"files": {"x": ("a.png", b"1")}, "data": {"file": "a.png"}}, 422, "is text, not a file"),
        ({"json": {"file": "a.png"}}, 415, "multipart/form-data"),
        ({"files": [("file", ("a.png", b"1")), ("file", ("b.png", b"2"))]}, 422, "Too many files"),
        ({"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}, 422,
         "could not read the multipart form"),
    ],
)  # fmt: skip
def test_bad_requests_get_4xx_json_with_a_message(kw, status, message):
    r = call(dark_app(), "POST", "/api/predict", **kw)
    assert r.status_code == status
    assert message in r.json()["error"]


def test_unknown_routes_and_methods_are_json_too():
    for method, url, status in [("GET", "/nope", 404), ("GET", "/api/predict", 405)]:
        r = call(dark_app(), method, url)
        assert r.status_code == status
        assert "POST /api/predict" in r.json()["error"]


def test_page_and_health(checkpoint):
    app = create_app(Predictor.from_checkpoint(checkpoint))
    health = call(app, "GET", "/api/health").json()
    assert health["status"] == "ok" and health["model"] == "unet_small"
    assert health["device"] == "cpu" and health["threshold"] == 0.4  # from the checkpoint
    assert health["formats"][:5] == ["PNG", "JPEG", "WebP", "BMP", "TIFF"]  # the page lists them
    page = call(app, "GET", "/")
    assert page.status_code == 200 and 'type="file"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert call(app, "GET", asset).status_code == 200, asset


def test_checkpoint_predicts_at_the_upload_size(checkpoint):
    app = create_app(Predictor.from_checkpoint(checkpoint), threshold=0.6)
    data = png(line_image(100, 150), "JPEG")
    body = post(app, data, name="a.jpg").json()
    assert (body["width"], body["height"], body["threshold"]) == (150, 100, 0.6)
    assert decode(body["mask_png_base64"]).shape == (100, 150)


class CountsCallers(DarkIsCrack):
    """DarkIsCrack that records how many threads run it at the same time."""

    def __init__(self):
        super().__init__()
        self.active, self.most, self.guard = 0, 0, threading.Lock()

    def forward(self, images):
        with self.guard:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.02)  # long enough for overlapping calls to meet here
        with self.guard:
            self.active -= 1
        return super().forward(images)


def test_the_model_runs_one_image_at_a_time():
    model = CountsCallers()
    app = create_app(Predictor(model, window=64, mean=[0, 0, 0], std=[1, 1, 1]))

    async def eight():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            files = {"file": ("a.png", png(line_image()))}
            return await asyncio.gather(
                *(client.post("/api/predict", files=files) for _ in range(8))
            )

    assert [r.status_code for r in asyncio.run(eight())] == [200] * 8
    assert model.most == 1


def test_byte_limit_on_a_live_server_declared_or_streamed():
    app = dark_app(limits=Limits(max_upload_bytes=100_000))
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    with running(app) as base_url:
        r = httpx.post(f"{base_url}/api/predict", files={"file": ("big.png", bytes(400_000))})
        assert r.status_code == 413 and "0.1 MiB limit" in r.json()["error"]
        chunks = iter([head] + [bytes(50_000)] * 8)  # chunked: no Content-Length to check
        r = httpx.post(f"{base_url}/api/predict", content=chunks,
                       headers={"content-type": "multipart/form-data; boundary=b"})  # fmt: skip
        assert r.status_code == 413 and "0.1 MiB limit" in r.json()["error"]


def test_twenty_concurrent_requests_all_succeed(checkpoint):
    """Different sizes per request, so a mixed-up answer would show."""
    app = create_app(Predictor.from_checkpoint(checkpoint))
    sizes = [(64 + 4 * i, 96 + 2 * i) for i in range(20)]  # (H, W)
    uploads = [png(line_image(h, w, row=h // 2)) for h, w in sizes]

    async def one(client, i):
        start = time.perf_counter()
        r = await client.post("/api/predict", files={"file": (f"img{i}.png", uploads[i])})
        return r, time.perf_counter() - start

    async def all_at_once(base_url):
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
            start = time.perf_counter()
            results = await asyncio.gather(*(one(client, i) for i in range(20)))
            return results, time.perf_counter() - start

    with running(app) as base_url:
        results, total = asyncio.run(all_at_once(base_url))
    for i, (r, _) in enumerate(results):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["filename"] == f"img{i}.png"
        assert (body["height"], body["width"]) == sizes[i]
        assert decode(body["mask_png_base64"]).shape == sizes[i]
    latencies = np.array([t for _, t in results])
    print(f"20 concurrent requests: {total:.2f} s in all, per request p50 "
          f"{np.percentile(latencies, 50):.3f} s, p95 {np.percentile(latencies, 95):.3f} s")  # fmt: skip


def test_cli_serves_and_reports_bad_input(checkpoint, tmp_path, capsys):
    assert main(["serve", "--checkpoint", str(tmp_path / "missing.pt"), "--port", "0"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--checkpoint", str(checkpoint), "--port", str(port)]) == 2
        assert "cannot listen there" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", str(checkpoint), "--max-upload-mb", "0"]) == 2

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "crackseg",
        "serve",
        "--checkpoint",
        str(checkpoint),
        "--port",
        "0",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        first = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first
        for _ in range(100):  # the socket is bound before uvicorn starts accepting
            try:
                health = httpx.get(f"{url.group()}/api/health").json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert health["model"] == "unet_small"
    finally:
        proc.terminate()
        proc.wait(10)
