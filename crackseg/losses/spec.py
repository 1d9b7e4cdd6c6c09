"""Loss specs such as "ce+dice+0.5*cldice": parsing, checking (CrackSegError), the weighted sum."""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from crackseg.conventions import IGNORE_INDEX
from crackseg.errors import CrackSegError
from crackseg.losses.cldice import ClDiceLoss
from crackseg.losses.lovasz import LovaszLoss
from crackseg.losses.terms import CrossEntropyLoss, DiceLoss, FocalLoss, TverskyLoss

LOSSES = {
    "ce": CrossEntropyLoss,
    "cldice": ClDiceLoss,
    "dice": DiceLoss,
    "focal": FocalLoss,
    "lovasz": LovaszLoss,
    "tversky": TverskyLoss,
}
_OPTIONS = {
    "ce": (),
    "cldice": ("iterations", "smooth"),
    "dice": ("smooth",),
    "focal": ("gamma",),
    "lovasz": (),
    "tversky": ("alpha", "beta", "smooth"),
}
_USES_CLASS_WEIGHTS = ("ce", "focal")  # region losses (dice, tversky, cldice) are balanced already


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
    """Build a weighted sum of losses from a spec such as "ce+dice", "ce+dice+0.5*cldice" or a
    dict {"ce": 1.0, "focal": {"weight": 1, "gamma": 2}, "cldice": {"weight": 0.5, "iterations": 5}}.

    Weights must be >= 0 (a 0-weighted term is still logged in `last_terms`). `class_weights`
    (one per class) weight the pixel-wise terms ce and focal; dice, tversky, cldice ignore them.
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
