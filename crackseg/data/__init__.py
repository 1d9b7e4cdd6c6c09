"""Crack datasets: every format users export, read into one index; torch datasets; synthetic cracks.

index = load_index("data/crack-seg")            # format auto-detected, problems reported
train = build_dataset(index, "train", augment="default")
yaml_path = synthesize("runs/synth", 200)       # Ultralytics layout with exact masks
"""

from crackseg.data.dataset import CrackDataset, batch_to_float, build_dataset
from crackseg.data.index import load_index
from crackseg.data.io import read_image, read_mask
from crackseg.data.synth_dataset import synthesize
from crackseg.data.types import DatasetIndex, Item, Problem

__all__ = [
    "CrackDataset",
    "DatasetIndex",
    "batch_to_float",
    "Item",
    "Problem",
    "build_dataset",
    "load_index",
    "read_image",
    "read_mask",
    "synthesize",
]
