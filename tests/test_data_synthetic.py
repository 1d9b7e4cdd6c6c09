"""Synthetic cracks: exact geometry (render_crack) and the generated Ultralytics-layout dataset."""

import numpy as np
import pytest

from crackseg.data.synthetic import render_crack


@pytest.mark.parametrize("kind", ["straight", "curved", "branching"])
@pytest.mark.parametrize("width", [1, 3, 8])
def test_render_crack_area_matches_length_times_width(kind, width):
    mask, length, true_width = render_crack(kind, width=width, size=256, seed=3)
    assert mask.dtype == np.uint8 and mask.shape == (256, 256)
    assert set(np.unique(mask)) == {0, 1}
    assert true_width == width and length > 100
    # a band of half-width w/2 around a centreline of length L has area L*w + the round caps
    expected = length * width + np.pi * width**2 / 4
    assert mask.sum() == pytest.approx(expected, rel=0.05)


def test_render_crack_is_seeded():
    a = render_crack("branching", width=2, size=128, seed=7)
    b = render_crack("branching", width=2, size=128, seed=7)
    c = render_crack("branching", width=2, size=128, seed=8)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert not np.array_equal(a[0], c[0])


def test_render_crack_stays_inside_and_branches():
    mask, length, _ = render_crack("branching", width=4, size=256, seed=0)
    assert mask[0].sum() == mask[-1].sum() == mask[:, 0].sum() == mask[:, -1].sum() == 0
    straight_mask, straight_length, _ = render_crack("straight", width=4, size=256, seed=0)
    assert length > straight_length * 1.1  # branches add length


def test_synthesize_writes_ultralytics_layout_with_exact_labels(tmp_path):
    import json

    from crackseg.data import build_dataset, load_index, synthesize

    yaml_path = synthesize(tmp_path / "synth", 20, seed=1, image_size=96)
    index = load_index(yaml_path)
    assert index.format == "ultralytics" and not index.problems
    assert {k: len(v) for k, v in index.splits.items()} == {"train": 14, "val": 3, "test": 3}
    records = json.loads((tmp_path / "synth" / "cracks.json").read_text())["images"]
    kinds, scenes = set(), set()
    for split, items in index.splits.items():
        for item in items:
            rec = records[f"images/{split}/{item.image.name}"]
            # the loader's polygon fill gives back exactly the rendered crack pixels
            assert item.load_mask().sum() == rec["crack_pixels"]
            for crack in rec["cracks"]:
                assert 1 <= crack["width_px"] <= 8 and crack["length_px"] > 0.15 * 96
                assert crack["length_px"] == pytest.approx(
                    sum(s["length_px"] for s in crack["segments"]), abs=0.01
                )
                kinds.add(crack["kind"])
            scenes.update(rec["scene"])
    assert kinds == {"curved", "branching"}
    assert {"joint", "scratch"} <= scenes  # crack-like distractors that are not labelled
    sample = build_dataset(yaml_path, "val", image_size=96)[0]
    assert sample["image"].shape == (3, 96, 96)


def test_synthesize_is_seeded_and_refuses_foreign_folders(tmp_path):
    from crackseg.data import synthesize
    from crackseg.errors import CrackSegError

    a = synthesize(tmp_path / "a", 4, seed=3, image_size=64).parent
    b = synthesize(tmp_path / "b", 4, seed=3, image_size=64).parent
    for f in sorted(a.rglob("*.txt")):
        assert f.read_bytes() == (b / f.relative_to(a)).read_bytes()
    synthesize(a, 3, seed=3, image_size=64)  # rewriting a synthetic set replaces it
    assert len(list(a.rglob("*.jpg"))) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("precious")
    with pytest.raises(CrackSegError, match="not empty"):
        synthesize(tmp_path / "mine", 2)
