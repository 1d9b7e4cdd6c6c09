"""The page end to end in real headless Chromium (Debian's `chromium`, driven by Playwright):
upload images through the file chooser, read the measurement table, see errors, download a mask.

Skips when Chromium or Playwright is missing; `.ci/run` installs Chromium so that CI runs it.
Set CRACKSEG_CHROMIUM to use another Chromium binary.
"""

import io
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from crackseg.inference import Predictor  # noqa: E402
from crackseg.serve import create_app, running  # noqa: E402

CHROMIUM = os.environ.get("CRACKSEG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CRACKSEG_CHROMIUM)",
)


class DarkIsCrack(nn.Module):
    """Logits that call every dark pixel crack, so the table's contents are known."""

    def forward(self, images):  # (B, 3, H, W) in [0, 1] -> (B, 2, H, W)
        crack = 40 * (0.5 - images.mean(dim=1, keepdim=True))
        return torch.cat([torch.zeros_like(crack), crack], dim=1)


def two_cracks() -> bytes:
    """Light grey 160x240 with a horizontal crack (100 px) and a vertical one (60 px)."""
    image = np.full((160, 240, 3), 205, np.uint8)
    image[30:34, 20:120] = 10
    image[70:130, 180:183] = 10
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def page_url():
    predictor = Predictor(DarkIsCrack(), window=64, mean=[0, 0, 0], std=[1, 1, 1])
    with running(create_app(predictor)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def test_upload_shows_overlay_table_and_mask_download(browser, page_url, tmp_path):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    js_errors = []  # uncaught exceptions, CSP violations...; the expected 415 is logged too
    page.on("pageerror", lambda err: js_errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and "415" not in msg.text
            and js_errors.append(msg.text))  # fmt: skip
    page.goto(page_url)
    sync_api.expect(page.locator("#model")).to_contain_text("DarkIsCrack")
    page.set_input_files("#files", files=[
        {"name": "wall.png", "mimeType": "image/png", "buffer": two_cracks()},
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image at all"},
    ])  # fmt: skip

    wall = page.locator(".result", has_text="wall.png")
    rows = wall.locator("table.cracks tbody tr")
    sync_api.expect(rows).to_have_count(2, timeout=30_000)
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(2)]
    assert [c[0] for c in cells] == ["1", "2"]
    lengths = sorted(float(c[1].split()[0]) for c in cells)
    assert lengths[0] == pytest.approx(60, abs=3) and lengths[1] == pytest.approx(100, abs=3)
    orientations = sorted(abs(float(c[4].rstrip("°"))) for c in cells)
    assert orientations == pytest.approx([0, 90], abs=1)
    summary = wall.locator("table.summary").inner_text()
    assert "Cracks\t2" in summary and "240 × 160 px" in summary
    assert (
        wall.locator("img.overlay").evaluate("img => img.complete && img.naturalWidth") == 240 + 72
    )

    error = page.locator(".result", has_text="notes.png").locator(".error")
    sync_api.expect(error).to_be_visible(timeout=30_000)
    assert "not a PNG, JPEG, WebP, BMP, TIFF" in error.inner_text()

    with page.expect_download() as info:
        wall.locator("a.download").click()
    assert info.value.suggested_filename == "wall_mask.png"
    mask = np.asarray(Image.open(info.value.path()))
    assert mask.shape == (160, 240) and set(np.unique(mask)) == {0, 255}
    assert (mask == 255).sum() == 4 * 100 + 60 * 3

    shot = tmp_path / "serve_page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    if os.environ.get("CRACKSEG_SCREENSHOT"):  # a copy where a person can look at it
        shutil.copy(shot, os.environ["CRACKSEG_SCREENSHOT"])
    assert not js_errors, js_errors
    page.close()
