"""Work per request is bounded: photos over the pixel budget are downscaled for the model only,
a full server answers 503 with Retry-After, and /api/health says how busy it is."""

import asyncio
import threading

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from test_serve import DarkIsCrack, decode, line_image, png, post  # noqa: E402

from crackseg.inference import Predictor  # noqa: E402
from crackseg.serve import Limits, create_app  # noqa: E402


class SeesShapes(DarkIsCrack):
    """DarkIsCrack that records the (H, W) of every batch it is given."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, images):
        self.shapes.append(tuple(images.shape[-2:]))
        return super().forward(images)


def test_a_photo_over_the_pixel_budget_is_downscaled_for_the_model_only():
    model = SeesShapes()
    predictor = Predictor(model, window=256, mean=[0, 0, 0], std=[1, 1, 1])
    app = create_app(predictor, limits=Limits(max_predict_pixels=48 * 64))
    body = post(app, png(line_image(96, 128))).json()
    assert model.shapes == [(48, 64)]  # a quarter of the pixels: half the side
    assert body["predict_scale"] == 0.5
    assert decode(body["mask_png_base64"]).shape == (96, 128)  # the mask at the upload's size
    model.shapes.clear()
    body = post(app, png(line_image(48, 64))).json()  # within the budget: untouched
    assert model.shapes == [(48, 64)] and body["predict_scale"] == 1.0


class WaitsForRelease(DarkIsCrack):
    """DarkIsCrack that blocks every forward pass until `release` is set."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def forward(self, images):
        assert self.release.wait(30), "the test never released the model"
        return super().forward(images)


def test_a_full_server_answers_503_with_retry_after_and_health_says_how_busy():
    model = WaitsForRelease()
    predictor = Predictor(model, window=128, mean=[0, 0, 0], std=[1, 1, 1])
    app = create_app(predictor, limits=Limits(in_flight=1, queue=1))
    upload = {"file": ("a.png", png(line_image()))}

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = asyncio.create_task(client.post("/api/predict", files=upload))
            second = asyncio.create_task(client.post("/api/predict", files=upload))
            for _ in range(3000):  # until one is analysed and the other waits for the slot
                load = (await client.get("/api/health")).json()["load"]
                if (load["in_flight"], load["queued"]) == (1, 1):
                    break
                await asyncio.sleep(0.01)
            third = await client.post("/api/predict", files=upload)
            model.release.set()
            return load, third, await first, await second, (await client.get("/api/health"))

    load, third, first, second, after = asyncio.run(scenario())
    assert load == {**load, "in_flight": 1, "queued": 1, "capacity": 2}
    assert third.status_code == 503
    assert int(third.headers["retry-after"]) >= 1
    assert "busy" in third.json()["error"] and "capacity 2" in third.json()["error"]
    assert (first.status_code, second.status_code) == (200, 200)
    load = after.json()["load"]
    assert (load["in_flight"], load["queued"]) == (0, 0) and load["seconds_per_image"] > 0


def test_limits_are_checked():
    with pytest.raises(ValueError, match="limits"):
        Limits(in_flight=0)
