"""Losses for thin, rare cracks: cross-entropy, Dice, focal, Tversky, clDice, Lovasz and sums.

Every loss maps `(logits (B, K, H, W), targets (B, H, W) long) -> scalar` and gives pixels labelled
`ignore_index` (IGNORE_INDEX, 255) neither loss nor gradient. Build one from a spec with
`build_loss("ce+dice+0.5*cldice")`: the spec and class weights are user input, checked there once
(CrackSegError); inside `forward` a mismatch is a programmer error (ValueError).
`terms` holds the pixel and region losses, `cldice` the skeleton loss, `lovasz` the IoU surrogate,
`spec` the parsing.
"""

from crackseg.losses.cldice import ClDiceLoss, soft_skeleton
from crackseg.losses.lovasz import LovaszLoss
from crackseg.losses.spec import LOSSES, CombinedLoss, build_loss
from crackseg.losses.terms import CrossEntropyLoss, DiceLoss, FocalLoss, TverskyLoss

__all__ = [
    "LOSSES",
    "ClDiceLoss",
    "CombinedLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "LovaszLoss",
    "TverskyLoss",
    "build_loss",
    "soft_skeleton",
]
