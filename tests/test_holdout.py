"""A validation split carved from train by source photo when a dataset ships none."""

from pathlib import Path

from crackseg.data.holdout import with_holdout
from crackseg.data.sources import roboflow_source, source_group
from crackseg.data.types import DatasetIndex, Item

HASH = "0123456789abcdef0123456789abcdef"


def test_source_group_follows_roboflow_and_tile_names():
    assert source_group("1604.rf.7229a9adfa1c9ec285d55c965172ea32") == "1604"
    assert source_group("wall_03_1_2") == "wall_03"
    assert source_group("plain") == "plain"


def test_one_rule_for_same_source_photo_in_holdout_and_inspector():
    # the two regexes used to disagree here: holdout said 'IMG_12_jpg', the inspector 'IMG_12'
    copies = [f"IMG_12_jpg.rf.{HASH}", f"IMG_12.rf.{HASH}", f"IMG_12-png.rf.{HASH}"]
    assert {source_group(c) for c in copies} == {"IMG_12"}
    assert {roboflow_source(c) for c in copies} == {"IMG_12"}
    assert roboflow_source("IMG_12_1_2") is None and source_group("IMG_12_1_2") == "IMG_12"
    assert roboflow_source(f"x.rf.{HASH[:-1]}") is None  # not a Roboflow md5: no source id


def test_holdout_keeps_copies_of_one_photo_together_and_is_stable():
    stems = [f"photo{p}_{r}_{c}" for p in range(40) for r in range(2) for c in range(2)]
    index = DatasetIndex(Path("."), "mask-folders", {"train": [Item(Path(f"{s}.png")) for s in stems]},
                         ["crack"])  # fmt: skip
    split = with_holdout(index, 0.2)
    train = {source_group(i.image.stem) for i in split.splits["train"]}
    val = {source_group(i.image.stem) for i in split.splits["val"]}
    assert not train & val and len(train) + len(val) == 40
    assert 8 <= len(val) <= 16  # 20-40 % of 40 photos
    assert len(split.splits["train"]) + len(split.splits["val"]) == 160
    assert [i.image for i in with_holdout(index, 0.2).splits["val"]] == [
        i.image for i in split.splits["val"]
    ]
    assert "held out" in split.notes[-1]
    assert with_holdout(split, 0.2) is split  # a dataset with a val split is left alone
