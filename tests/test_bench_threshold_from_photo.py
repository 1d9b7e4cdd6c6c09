"""benchmarks/threshold_from_photo.py: the photo's description has one fixed length whatever the
input, neighbours never include what is excluded, thresholds chosen in chunks equal one pass,
Roboflow copies map to one photo, and the script prints its tables end to end."""

from __future__ import annotations

import pytest
import torch
from bench_scripts import ROOT, load_script, run_script, tiny_checkpoint

from crackseg import build_model

SCRIPT = ROOT / "benchmarks" / "threshold_from_photo.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT)  # it imports its sibling label_boundary.py


def test_channel_stats_of_maps_and_tokens(bench):
    maps = torch.randn(1, 5, 7, 9)
    stats = bench.channel_stats(maps)
    assert stats.shape == (10,)
    assert torch.allclose(stats[:5], maps.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(stats[5:], maps.std((0, 2, 3)), atol=1e-6)
    tokens = torch.randn(1, 12, 4)
    assert torch.allclose(bench.channel_stats(tokens)[:4], tokens.mean((0, 1)), atol=1e-6)


def test_description_has_one_length_and_averages_windows(bench):
    torch.manual_seed(0)
    model = build_model("unet_small", base_channels=4, depth=2).eval()
    assert len(bench.stages(model)) > len(list(model.children()))  # ModuleLists counted by stage
    describer = bench.Describer(model)
    with torch.no_grad():
        model(torch.rand(1, 3, 64, 64))
        small = describer.take()
        model(torch.rand(1, 3, 96, 128))
        model(torch.rand(1, 3, 96, 128))
        assert {len(v) for v in describer.calls.values()} == {2}  # two windows of one image
        large = describer.take()
    assert small.shape == large.shape and small.dim() == 1
    assert describer.calls == {}


def test_nearest_respects_exclusion(bench):
    pool = torch.arange(6, dtype=torch.float64)[:, None]  # (6, 1)
    exclude = torch.eye(6, dtype=torch.bool)
    found = bench.nearest(pool, pool, 2, exclude)
    assert not exclude.gather(1, found).any()
    assert set(found[0].tolist()) == {1, 2}


def test_chunked_thresholds_equal_one_pass(bench):
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 50, (20, 99, 3), generator=gen).double()
    neighbours = torch.randint(0, 20, (13, 4), generator=gen)
    once = bench.best_threshold(counts[neighbours].sum(1))
    assert torch.equal(bench.neighbour_thresholds(counts, neighbours, chunk=3), once)


def test_roboflow_copies_share_a_photo(bench):
    a, b = ("1604.rf." + h * 32 + ".jpg" for h in "ab")
    assert bench.source_of(a) == bench.source_of(b) == "1604.jpg"
    assert bench.batch_check(
        ["x.jpg"] * 10, torch.zeros(10, 2), ["y.jpg"], torch.zeros(1, 2)
    ).startswith("not numbered")
    assert bench.rank_correlation(
        torch.tensor([3.0, 1, 2]), torch.tensor([30.0, 10, 20])
    ) == pytest.approx(1.0)


def test_end_to_end_tables(synth_yaml, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt")
    proc = run_script(
        SCRIPT, "--checkpoint", ckpt, "--data", synth_yaml, "--k", "2", "4", "--dims", "3"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "--fit train 16 images, --score val 4 images" in out and "-> 3 components" in out
    for row in ("| 2 |", "| 4 |", "| stored 0.5 for every image |", "nearest train images",
                "each image's own best (oracle"):  # fmt: skip
        assert row in out, row
    assert "batch check: not numbered" in out  # synth_00001.jpg has no leading number


def test_bad_numbers_are_usage_errors(tmp_path):
    proc = run_script(SCRIPT, "--checkpoint", tmp_path / "missing.ckpt", "--k", "0")
    assert proc.returncode == 2
    assert "--every, --dims and --k: give whole numbers >= 1" in proc.stderr.splitlines()[-1]
