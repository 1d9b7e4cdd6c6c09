"""A validation split carved from train by source photo when a dataset ships none."""

from pathlib import Path

from crackseg.data.holdout import source_group, with_holdout
from crackseg.data.index import DatasetIndex, Item


def test_source_group_follows_roboflow_and_tile_names():
    assert source_group("1604.rf.7229a9adfa1c9ec285d55c965172ea32") == "1604"
    assert source_group("wall_03_1_2") == "wall_03"
    assert source_group("plain") == "plain"


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
