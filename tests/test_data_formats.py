"""Every supported layout, built in tmp_path, detected and read back to the expected masks."""

import json

import numpy as np
import pytest
import scipy.io
from test_data_helpers import (
    SQUARE_PIXELS_100,
    coco_json,
    make_roboflow_yolo,
    make_ultralytics,
    square_line,
    square_mask,
    write_image,
    write_label,
    write_mask,
)

from crackseg.data import build_dataset, load_index
from crackseg.data.rasterize import rle_encode


def _counts(index):
    return {k: len(v) for k, v in index.splits.items()}


def test_ultralytics_yaml_and_folder(tmp_path):
    yaml_path = make_ultralytics(tmp_path)
    for path in (yaml_path, tmp_path):
        index = load_index(path)
        assert index.format == "ultralytics" and _counts(index) == {"train": 3, "val": 2}
        assert index.class_names == ["crack"] and not index.problems
        item = index.splits["train"][0]
        assert item.load_mask().sum() == SQUARE_PIXELS_100


def test_ultralytics_without_yaml_and_negatives(tmp_path):
    make_ultralytics(tmp_path, {"train": 2, "val": 1})
    (tmp_path / "data.yaml").unlink()
    write_image(tmp_path / "images" / "train" / "clean.png")  # no label: a crack-free image
    index = load_index(tmp_path)
    assert _counts(index) == {"train": 3, "val": 1}
    clean = next(i for i in index.splits["train"] if i.image.stem == "clean")
    assert not clean.has_label and clean.load_mask().sum() == 0
    assert any("no dataset yaml" in n for n in index.notes)


def test_roboflow_yolo_export(tmp_path):
    index = load_index(make_roboflow_yolo(tmp_path))
    assert index.format == "roboflow-yolo"
    assert _counts(index) == {"train": 2, "val": 2, "test": 2}  # valid -> val
    assert index.split("valid") is index.splits["val"]
    without_yaml = tmp_path / "copy"
    make_roboflow_yolo(without_yaml)
    (without_yaml / "data.yaml").unlink()
    assert _counts(load_index(without_yaml)) == {"train": 2, "val": 2, "test": 2}


def test_yaml_path_key_list_and_txt_sources(tmp_path):
    data = tmp_path / "somewhere"
    make_ultralytics(data, {"a": 2, "b": 1})
    (data / "val.txt").write_text("./images/b/b0.png\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"path: {data}\ntrain: [images/a]\nval: val.txt\nnames: [crack]\n")
    assert _counts(load_index(cfg)) == {"train": 2, "val": 1}


def test_multiclass_yolo_maps_crack_classes(tmp_path):
    yaml_path = make_ultralytics(
        tmp_path, {"train": 1}, "path: .\ntrain: images/train\nnames: [spalling, crack]\n"
    )
    write_label(
        tmp_path / "labels/train/train0.txt",
        [square_line(1), square_line(0, [0, 0, 0.1, 0, 0.1, 0.1, 0, 0.1])],
    )
    mask = load_index(yaml_path).splits["train"][0].load_mask()
    assert mask.sum() == SQUARE_PIXELS_100 and set(np.unique(mask)) == {0, 1}


def _coco_fixture(tmp_path):
    split = tmp_path / "valid"
    for i in range(3):
        write_image(split / f"im{i}.jpg", seed=i)
    poly = [25, 25, 75, 25, 75, 75, 25, 75]
    rle_mask = square_mask(value=1)
    annotations = [
        {"id": 1, "image_id": 0, "category_id": 1, "segmentation": [poly], "iscrowd": 0},
        {
            "id": 2,
            "image_id": 1,
            "category_id": 1,
            "segmentation": rle_encode(rle_mask),
            "iscrowd": 1,
        },
        {
            "id": 3,
            "image_id": 1,
            "category_id": 1,
            "segmentation": rle_encode(rle_mask, compressed=False),
        },
    ]
    images = [{"id": i, "file_name": f"im{i}.jpg", "width": 100, "height": 100} for i in range(3)]
    coco_json(split / "_annotations.coco.json", images, annotations)
    return rle_mask


def test_roboflow_coco_polygons_rle_and_supercategory(tmp_path):
    rle_mask = _coco_fixture(tmp_path)
    index = load_index(tmp_path)
    assert index.format == "roboflow-coco" and _counts(index) == {"val": 3}
    assert index.class_names == ["crack"]  # Roboflow's super-category (id 0) is dropped
    im0, im1, im2 = index.splits["val"]
    assert im0.load_mask().sum() == SQUARE_PIXELS_100
    assert np.array_equal(im1.load_mask(), rle_mask)
    assert im2.load_mask().sum() == 0 and im2.has_label  # listed, no annotation: no crack
    assert _counts(load_index(tmp_path / "valid" / "_annotations.coco.json")) == {"val": 3}


def test_mask_folders_layouts(tmp_path):
    m = square_mask()
    # masks/ next to images/, with train/val split folders
    for split in ("train", "val"):
        write_image(tmp_path / "a" / split / "images" / "x.jpg")
        write_mask(tmp_path / "a" / split / "masks" / "x.png", m)
    # DeepCrack: train_img / train_lab
    write_image(tmp_path / "b" / "train_img" / "1.jpg")
    write_mask(tmp_path / "b" / "train_lab" / "1.png", m)
    write_image(tmp_path / "b" / "test_img" / "2.jpg")
    write_mask(tmp_path / "b" / "test_lab" / "2.png", m // 255)  # {0, 1} masks
    # x.jpg + x_mask.png side by side, no split
    write_image(tmp_path / "c" / "p.jpg")
    write_mask(tmp_path / "c" / "p_mask.png", m, "1")  # 1-bit
    # CRACK500: x.jpg and x.png in one folder
    write_image(tmp_path / "d" / "traincrop" / "q.jpg")
    write_mask(tmp_path / "d" / "traincrop" / "q.png", m)
    # CrackForest: image/ + groundTruth/*.mat (1 background, 2 crack)
    write_image(tmp_path / "e" / "image" / "001.jpg")
    seg = (m // 255 + 1).astype(np.uint8)
    gt = {"Segmentation": seg, "Boundaries": seg * 0}  # a MATLAB struct
    (tmp_path / "e" / "groundTruth").mkdir()
    scipy.io.savemat(tmp_path / "e" / "groundTruth" / "001.mat", {"groundTruth": gt})
    expected = {"a": {"train": 1, "val": 1}, "b": {"train": 1, "test": 1}, "c": {"train": 1}}
    expected |= {"d": {"train": 1}, "e": {"train": 1}}
    for name, counts in expected.items():
        index = load_index(tmp_path / name)
        assert index.format == "mask-folders" and _counts(index) == counts, name
        for items in index.splits.values():
            assert np.array_equal(items[0].load_mask(), m // 255), name


def test_roboflow_semantic_masks_with_classes_csv(tmp_path):
    split = tmp_path / "train"
    write_image(split / "a_jpg.rf.0.jpg")
    mask = np.zeros((100, 100), np.uint8)
    mask[10:20] = 1  # crack
    mask[50:60] = 2  # another class: not crack
    write_mask(split / "a_jpg.rf.0_mask.png", mask)
    (split / "_classes.csv").write_text(
        "Pixel Value, Class\n0, background\n1, crack\n2, spalling\n"
    )
    index = load_index(tmp_path)
    assert index.format == "roboflow-masks" and index.class_names == ["crack", "spalling"]
    assert index.splits["train"][0].load_mask().sum() == 1000


@pytest.mark.parametrize(
    "resize, shape", [("stretch", (64, 64)), ("letterbox", (64, 64)), ("native", (50, 100))]
)
def test_build_dataset_resize_modes(tmp_path, resize, shape):
    make_ultralytics(tmp_path, {"train": 1})
    write_image(tmp_path / "images/train/train0.png", hw=(50, 100))
    ds = build_dataset(tmp_path, "train", image_size=64, resize=resize)
    sample = ds[0]
    assert sample["image"].shape == (3, *shape) and sample["image"].dtype.is_floating_point
    assert sample["mask"].shape == shape and str(sample["mask"].dtype) == "torch.int64"
    assert sample["image"].min() >= 0 and sample["image"].max() <= 1
    values = set(sample["mask"].unique().tolist())
    assert values <= {0, 1, 255} and 1 in values
    if resize == "letterbox":  # 100x50 -> 64x32 centred: 16 rows of padding above and below
        assert (sample["mask"][:16] == 255).all() and (sample["mask"][16:48] != 255).all()
    assert sample["path"].endswith("train0.png")


def test_index_and_dataset_pickle(tmp_path):
    import pickle

    ds = build_dataset(make_ultralytics(tmp_path), "val", image_size=32, augment="default")
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone[1]["mask"].numpy(), ds[1]["mask"].numpy())
    json.dumps(repr(clone))
