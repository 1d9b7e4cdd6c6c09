"""Which images `crackseg predict` and `explain` read: an --out folder inside the searched folder
holds an earlier run's PNGs (this run's --out, or any folder a crackseg command marked), and a
later run must neither predict on them nor hide that it left them out; an empty folder is an
error that says so."""

from __future__ import annotations

import json

import pytest
from bench_scripts import tiny_checkpoint
from cli_contract import assert_user_error, run_cli
from PIL import Image

from crackseg.inputs import expand_inputs
from crackseg.outputs import OUTPUT_MARKER, mark_output


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def predicted(out) -> list[str]:
    return [row["image"] for row in json.loads((out / "predictions.json").read_text())]


def test_a_second_run_into_a_sub_folder_predicts_the_photos_again_not_the_outputs(
    capsys, checkpoint, photos
):
    out = photos / "preds"
    first = run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", out)
    assert first.code == 0, first.err
    assert len(list(out.glob("*.png"))) == 6  # mask, prob, overlay of 2 photos
    second = run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", out)
    assert second.code == 0, second.err
    assert "left out 6 images in earlier crackseg outputs" in second.err
    assert len(predicted(out)) == 2
    assert sorted(p.name for p in out.rglob("*.png")) == sorted(
        f"{i}_{kind}.png" for i in range(2) for kind in ("mask", "prob", "overlay")
    )


def test_a_glob_into_its_own_out_sub_folder_leaves_the_outputs_out(capsys, checkpoint, photos):
    out = photos / "preds"
    run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", out)
    result = run_cli(
        capsys, "predict", "--checkpoint", checkpoint, f"{photos}/**/*.png", "--out", out
    )
    assert result.code == 0, result.err
    assert "left out 6 images" in result.err
    assert len(predicted(out)) == 2


def test_an_out_folder_that_is_the_input_folder_excludes_nothing(photos):
    """The photos themselves are in it: leaving them out would predict nothing."""
    (photos / "0_mask.png").write_bytes((photos / "0.png").read_bytes())
    assert len(expand_inputs([str(photos)], exclude=photos)) == 3
    assert len(expand_inputs([f"{photos}/*.png"], exclude=photos)) == 3
    assert len(expand_inputs([str(photos / "0_mask.png")], exclude=photos)) == 1


def test_files_named_one_by_one_are_read_even_inside_out(photos):
    out = photos / "preds"
    out.mkdir()
    (out / "x.png").write_bytes((photos / "0.png").read_bytes())
    assert expand_inputs([str(out / "x.png")], exclude=out) == [out / "x.png"]
    assert len(expand_inputs([str(photos)], exclude=out)) == 2
    assert len(expand_inputs([str(photos)])) == 3


def test_a_folder_with_only_earlier_outputs_is_a_one_line_error(capsys, checkpoint, tmp_path):
    photos = tmp_path / "photos"
    (photos / "preds").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(photos / "preds" / "a_mask.png")
    result = run_cli(
        capsys, "predict", "--checkpoint", checkpoint, photos, "--out", photos / "preds"
    )
    assert_user_error(result, "photos", "only images are earlier outputs")


def test_an_empty_folder_says_it_holds_no_images(capsys, checkpoint, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli(
        capsys, "predict", "--checkpoint", checkpoint, tmp_path / "empty", "--out", tmp_path / "o"
    )
    assert_user_error(result, "empty", "holds no image files")
    assert not (tmp_path / "o").exists()


def test_explain_leaves_its_own_outputs_out_too(capsys, checkpoint, photos):
    out = photos / "explained"
    first = run_cli(capsys, "explain", "--checkpoint", checkpoint, photos, "--out", out)
    assert first.code == 0, first.err
    made = sorted(p.name for p in out.rglob("*.png"))
    assert made
    second = run_cli(capsys, "explain", "--checkpoint", checkpoint, photos, "--out", out)
    assert second.code == 0, second.err
    assert f"left out {len(made)} images in earlier crackseg outputs" in second.err
    assert sorted(p.name for p in out.rglob("*.png")) == made


def test_explain_after_predict_leaves_the_predictions_out(capsys, checkpoint, photos):
    """The case a user meets: predict into photos/preds, then explain the same folder."""
    run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", photos / "preds")
    assert (photos / "preds" / OUTPUT_MARKER).is_file()
    result = run_cli(capsys, "explain", "--checkpoint", checkpoint, photos, "--out", photos / "ex")
    assert result.code == 0, result.err
    assert f"left out 6 images in earlier crackseg outputs: {photos / 'preds'} (6)" in result.err
    assert sorted({p.name.split("_")[0] for p in (photos / "ex").rglob("*.png")}) == ["0", "1"]


def test_a_run_into_a_new_out_folder_leaves_every_earlier_one_out(capsys, checkpoint, photos):
    for out in ("a", "b"):
        run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", photos / out)
    result = run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", photos / "c")
    assert result.code == 0, result.err
    assert "left out 12 images in earlier crackseg outputs" in result.err
    assert f"{photos / 'a'} (6), {photos / 'b'} (6)" in result.err
    assert len(predicted(photos / "c")) == 2
    assert len(expand_inputs([f"{photos}/**/*.png"])) == 2  # a glob below them too


def test_an_output_folder_named_by_the_user_is_read(photos):
    """Only folders below the searched one are left out: `predict photos/preds` means it."""
    out = photos / "preds"
    mark_output(out, "predict")
    (out / "x_mask.png").write_bytes((photos / "0.png").read_bytes())
    assert expand_inputs([str(out)]) == [out / "x_mask.png"]
    assert expand_inputs([str(photos)]) == [photos / "0.png", photos / "1.png"]


def test_an_unmarked_sub_folder_is_read(photos):
    """Photos sorted into sub-folders by the user are inputs, not outputs."""
    (photos / "wall").mkdir()
    (photos / "wall" / "w.png").write_bytes((photos / "0.png").read_bytes())
    assert len(expand_inputs([str(photos)])) == 3


def test_an_out_path_that_is_a_file_is_a_one_line_error(capsys, checkpoint, photos, tmp_path):
    (tmp_path / "taken").write_text("x")
    for command in ("predict", "explain"):
        result = run_cli(
            capsys, command, "--checkpoint", checkpoint, photos, "--out", tmp_path / "taken"
        )
        assert_user_error(result, "taken", "is a file, not a folder")


def test_outputs_written_among_the_photos_do_not_hide_them_later(capsys, checkpoint, photos):
    """--out equal to the photo folder: it is not marked, so a search of the folder above still
    finds the photos (and, as before, the outputs written beside them)."""
    run_cli(capsys, "predict", "--checkpoint", checkpoint, photos, "--out", photos)
    assert not (photos / OUTPUT_MARKER).exists()
    found = expand_inputs([str(photos.parent)])
    assert photos / "0.png" in found and photos / "1.png" in found


def test_a_new_or_empty_out_folder_is_marked_once(photos):
    out = photos / "preds"
    mark_output(out, "predict")
    text = (out / OUTPUT_MARKER).read_text()
    assert text.startswith("Written by crackseg predict.")
    mark_output(out, "explain")  # a later run into it keeps the first marker
    assert (out / OUTPUT_MARKER).read_text() == text


def test_train_and_evaluate_outputs_are_left_out_of_a_later_search(capsys, synth_yaml, tmp_path):
    """A run folder (samples/*.png, curves.png) and an evaluation (pr_curve.png) beside the
    user's photos are not predicted as photos."""
    photo = tmp_path / "site" / "wall.png"
    photo.parent.mkdir()
    Image.new("RGB", (40, 30), "grey").save(photo)
    run = tmp_path / "site" / "runs" / "tiny"
    tiny = ["--model", "unet_small", "--model-arg", "base_channels=4", "--model-arg", "depth=2",
            "--image-size", "64", "--batch-size", "4", "--workers", "0", "--epochs", "1"]  # fmt: skip
    assert run_cli(capsys, "train", "--data", synth_yaml, "--out", run, *tiny).code == 0
    evaluated = run_cli(capsys, "evaluate", "--checkpoint", run / "last.ckpt", "--data",
                        synth_yaml, "--out", tmp_path / "site" / "eval")  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    assert (run / OUTPUT_MARKER).is_file() and (
        tmp_path / "site" / "eval" / OUTPUT_MARKER
    ).is_file()
    assert any(run.rglob("*.png")) and (tmp_path / "site" / "eval" / "pr_curve.png").is_file()
    assert expand_inputs([str(tmp_path / "site")]) == [photo]
