"""Shared fixtures: one tiny synthetic dataset per session (the real loader path)."""

import numpy as np
import pytest
from PIL import Image

from crackseg.data import synthesize
from crackseg.weights import ENV_DIR


@pytest.fixture(scope="session")
def synth_yaml(tmp_path_factory):
    """24 synthetic 64x64 images in the Ultralytics layout: train 16, val 4, test 4."""
    return synthesize(tmp_path_factory.mktemp("synth"), 24, seed=0, image_size=64,
                      splits=(0.67, 0.165, 0.165))  # fmt: skip


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """An empty folder of bundled models that crackseg reads instead of the package's own."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(ENV_DIR, str(folder))
    return folder


@pytest.fixture
def photos(tmp_path):
    """A folder `photos` of two 40x48 noise PNGs, 0.png and 1.png (a test may add more)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder
