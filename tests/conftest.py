"""Shared fixtures: one tiny synthetic dataset per session (the real loader path)."""

import pytest

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
