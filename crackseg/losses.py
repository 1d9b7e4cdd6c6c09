"""Segmentation losses for thin, rare cracks: cross-entropy, Dice, focal, Tversky and weighted sums.

Every loss maps `(logits (B, K, H, W), targets (B, H, W) long) -> scalar` and gives pixels labelled
`ignore_index` (IGNORE_INDEX, 255) neither loss nor gradient. Build one from a spec with
`build_loss("ce+dice")`: the spec and class weights are user input, checked there once
(CrackSegError); inside `forward` a mismatch is a programmer error (ValueError).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackseg.conventions import IGNORE_INDEX
from crackseg.errors import CrackSegError


def _check_inputs(logits: Tensor, targets: Tensor) -> None:
    if logits.ndim != 4 or targets.ndim != 3 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected logits (B, K, H, W) and targets (B, H, W), got {tuple(logits.shape)} and "
            f"{tuple(targets.shape)}; drop a channel axis from targets with targets[:, 0]"
        )
    if logits.shape[2:] != targets.shape[1:]:
        raise ValueError(
            f"logits are {tuple(logits.shape[2:])} but targets are {tuple(targets.shape[1:])}; "
            "upsample the logits to the target size before the loss"
        )
    if logits.shape[1] < 2:
        raise ValueError(f"need K >= 2 classes (background, crack), got K={logits.shape[1]}")


def _upcast(logits: Tensor) -> Tensor:
    """Half-precision logits (autocast) to float32 for a stable softmax; float64 stays."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _pixel_weights(
    targets: Tensor, valid: Tensor, class_weights: Tensor | None, num_classes: int
) -> Tensor:
    """Per-pixel weight (B, H, W): the class weight of its label, 0 on ignored pixels."""
    if class_weights is None:
        return valid.float()
    if class_weights.numel() != num_classes:  # build_loss(num_classes=...) checks user input
        raise ValueError(
            f"class_weights has {class_weights.numel()} values but the logits have "
            f"{num_classes} classes; give one weight per class"
        )
    safe = targets.masked_fill(~valid, 0)
    return class_weights.to(targets.device)[safe] * valid


class CrossEntropyLoss(nn.Module):
    """Pixel-wise cross-entropy, mean over non-ignored pixels (weighted mean with class weights).

    Equals `F.cross_entropy(logits, targets, weight, ignore_index=...)`, except that a batch whose
    pixels are all ignored gives 0 instead of NaN.
    """

    def __init__(self, *, class_weights: Tensor | None = None, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(logits, targets)
        valid = targets != self.ignore_index  # (B, H, W)
        w = _pixel_weights(targets, valid, self.class_weights, logits.shape[1])
        logits = _upcast(logits)
        weight = None if self.class_weights is None else self.class_weights.to(logits.dtype)
        total = F.cross_entropy(
            logits, targets, weight=weight, ignore_index=self.ignore_index, reduction="sum"
        )
        return total / w.sum().clamp_min(1e-12)


class FocalLoss(nn.Module):
    """Focal loss `-w_y (1 - p_y)^gamma log p_y` (Lin et al. 2017), averaged like cross-entropy.

    Down-weights easy background pixels; gamma=0 gives exactly `CrossEntropyLoss`.
    """

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        class_weights: Tensor | None = None,
        ignore_index: int = IGNORE_INDEX,
    ):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(logits, targets)
        valid = targets != self.ignore_index  # (B, H, W)
        safe = targets.masked_fill(~valid, 0).unsqueeze(1)  # (B, 1, H, W)
        log_p = F.log_softmax(_upcast(logits), dim=1).gather(1, safe).squeeze(1)  # (B, H, W)
        # Clamp so a saturated p_y = 1 with gamma < 1 gives 0, not an infinite gradient.
        focal = -((1 - log_p.exp()).clamp_min(1e-12) ** self.gamma) * log_p
        w = _pixel_weights(targets, valid, self.class_weights, logits.shape[1])
        return (focal * w).sum() / w.sum().clamp_min(1e-12)


def _region_sums(logits: Tensor, targets: Tensor, ignore_index: int) -> tuple[Tensor, ...]:
    """Soft TP, FP, FN over the whole batch for each non-background class.  # 3 x (K-1,)

    Summing over the batch (not per image) keeps images without cracks from producing 0/0.
    """
    _check_inputs(logits, targets)
    valid = (targets != ignore_index).unsqueeze(1)  # (B, 1, H, W)
    probs = F.softmax(_upcast(logits), dim=1)[:, 1:] * valid  # (B, K-1, H, W)
    classes = torch.arange(1, logits.shape[1], device=targets.device).view(1, -1, 1, 1)
    onehot = (targets.unsqueeze(1) == classes).float()  # (B, K-1, H, W), 0 on ignored pixels
    tp = (probs * onehot).sum(dim=(0, 2, 3))
    fp = (probs * (1 - onehot)).sum(dim=(0, 2, 3))
    fn = ((1 - probs) * onehot).sum(dim=(0, 2, 3))
    return tp, fp, fn


class TverskyLoss(nn.Module):
    """Soft Tversky loss `1 - (TP + s) / (TP + alpha FP + beta FN + s)` (Salehi et al. 2017).

    beta > alpha trades precision for recall, useful when thin cracks get missed. Computed over the
    whole batch on the crack probability (every non-background class for K > 2, then averaged).
    The smooth term `s` keeps the loss defined (0) for a batch with no crack and no predicted crack;
    it is negligible next to the thousands of crack pixels of a typical batch.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.3,
        beta: float = 0.7,
        smooth: float = 1.0,
        ignore_index: int = IGNORE_INDEX,
    ):
        super().__init__()
        if min(alpha, beta, smooth) < 0:
            raise ValueError(f"alpha, beta, smooth must be >= 0, got {alpha}, {beta}, {smooth}")
        self.alpha, self.beta, self.smooth = float(alpha), float(beta), float(smooth)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        tp, fp, fn = _region_sums(logits, targets, self.ignore_index)
        index = (tp + self.smooth) / (tp + self.alpha * fp + self.beta * fn + self.smooth)
        return 1 - index.mean()


class DiceLoss(TverskyLoss):
    """Soft Dice loss `1 - (2 TP + s) / (2 TP + FP + FN + s)` on the crack class, over the batch.

    Equal to the Tversky loss with alpha = beta = 0.5 and smooth s/2; see it for the smooth term.
    """

    def __init__(self, *, smooth: float = 1.0, ignore_index: int = IGNORE_INDEX):
        super().__init__(alpha=0.5, beta=0.5, smooth=smooth / 2, ignore_index=ignore_index)


LOSSES = {"ce": CrossEntropyLoss, "dice": DiceLoss, "focal": FocalLoss, "tversky": TverskyLoss}
_OPTIONS = {
    "ce": (),
    "dice": ("smooth",),
    "focal": ("gamma",),
    "tversky": ("alpha", "beta", "smooth"),
}
_USES_CLASS_WEIGHTS = ("ce", "focal")  # region losses (dice, tversky) are class-balanced already


class CombinedLoss(nn.Module):
    """Weighted sum of named loss terms; `last_terms` has each unweighted term of the last call."""

    def __init__(self, terms: dict[str, tuple[float, nn.Module]]):
        super().__init__()
        self.weights = {name: float(w) for name, (w, _) in terms.items()}
        self.terms = nn.ModuleDict({name: module for name, (_, module) in terms.items()})
        self._last: dict[str, Tensor] = {}

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Shapes: logits (B, K, H, W), targets (B, H, W) long -> scalar."""
        values = {name: term(logits, targets) for name, term in self.terms.items()}
        self._last = {name: v.detach() for name, v in values.items()}
        return sum(self.weights[name] * v for name, v in values.items())

    @property
    def last_terms(self) -> dict[str, float]:
        """Unweighted value of each term in the last forward (reading it syncs the device once)."""
        return {name: float(v) for name, v in self._last.items()}

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{name}" for name, w in self.weights.items())


_TERM = re.compile(r"^\s*(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE]-?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z_]+)\s*$")


def _parse_string(spec: str) -> dict[str, dict]:
    """'0.5*ce+dice' -> {'ce': {'weight': 0.5}, 'dice': {'weight': 1.0}}."""
    parsed: dict[str, dict] = {}
    for part in spec.lower().split("+"):
        match = _TERM.match(part)
        if match is None:
            raise CrackSegError(
                f"loss spec {spec!r}: cannot read term {part.strip()!r}; write terms like "
                f"'ce', '0.5*dice' joined by '+', with names from {sorted(LOSSES)}"
            )
        name = match["name"]
        if name in parsed:
            raise CrackSegError(f"loss spec {spec!r}: term {name!r} appears twice; give it once")
        parsed[name] = {"weight": float(match["w"]) if match["w"] else 1.0}
    return parsed


def _parse_dict(spec: dict) -> dict[str, dict]:
    """{'ce': 1.0, 'focal': {'gamma': 2}} -> {'ce': {'weight': 1.0}, 'focal': {...}}."""
    parsed: dict[str, dict] = {}
    for name, value in spec.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
            raise CrackSegError(
                f"loss spec term {name!r}: expected a weight or a mapping of options, got {value!r}"
            )
        options = dict(value) if isinstance(value, dict) else {"weight": value}
        options.setdefault("weight", 1.0)
        parsed[str(name).lower()] = options
    return parsed


def build_loss(
    spec: str | dict = "ce+dice",
    *,
    class_weights: list[float] | None = None,
    num_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> CombinedLoss:
    """Build a weighted sum of losses from a spec such as "ce+dice", "0.5*ce+1.0*dice" or a dict
    {"ce": 1.0, "focal": {"weight": 1, "gamma": 2}, "tversky": {"alpha": 0.3, "beta": 0.7}}.

    Weights must be >= 0 (a 0-weighted term is still logged in `last_terms`). `class_weights`
    (one per class) weight the pixel-wise terms ce and focal; dice and tversky ignore them.
    With `num_classes`, their count is checked here too. Every problem with the spec or the
    weights is a CrackSegError raised here, before training, never from `forward`.
    """
    if isinstance(spec, str):
        parsed = _parse_string(spec)
    elif isinstance(spec, dict):
        parsed = _parse_dict(spec)
    else:
        raise CrackSegError(f"loss spec must be a string like 'ce+dice' or a mapping, got {spec!r}")
    if not parsed:
        raise CrackSegError(f"loss spec {spec!r} has no terms; valid names are {sorted(LOSSES)}")
    weights = None
    if class_weights is not None:
        weights = torch.as_tensor([float(w) for w in class_weights], dtype=torch.float32)
        if weights.ndim != 1 or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise CrackSegError(
                f"class_weights {class_weights!r}: give one weight >= 0 per class, not all 0"
            )
        if num_classes is not None and weights.numel() != num_classes:
            raise CrackSegError(
                f"class_weights {class_weights!r}: {weights.numel()} values, but the model "
                f"predicts {num_classes} classes; give one weight per class (background first)"
            )
    terms: dict[str, tuple[float, nn.Module]] = {}
    for name, options in parsed.items():
        if name not in LOSSES:
            raise CrackSegError(
                f"loss spec {spec!r}: unknown loss {name!r}; valid names are {sorted(LOSSES)}"
            )
        options = dict(options)
        weight = options.pop("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise CrackSegError(f"loss {name!r}: weight must be a number >= 0, got {weight!r}")
        unknown = sorted(set(options) - set(_OPTIONS[name]))
        if unknown:
            valid = ", ".join(("weight",) + _OPTIONS[name])
            raise CrackSegError(f"loss {name!r}: unknown options {unknown}; valid options: {valid}")
        extra = {"class_weights": weights} if name in _USES_CLASS_WEIGHTS else {}
        try:
            module = LOSSES[name](ignore_index=ignore_index, **options, **extra)
        except (TypeError, ValueError) as err:
            raise CrackSegError(f"loss {name!r}: bad option value in {options}: {err}") from None
        terms[name] = (float(weight), module)
    return CombinedLoss(terms)
