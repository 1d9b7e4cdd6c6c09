"""Load timm `vision_transformer` weights (.safetensors or .pth) into our ViT, safely.

Our ViT uses timm's parameter names; the only layout difference is the patch projection, a Linear
here and a Conv2d in timm (same numbers, (c p1 p2) order), so loading is a reshape plus, when the
image size differs, a resampling of the learned position grid.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from crackseg.errors import CrackSegError
from crackseg.models.posembed import resample_pos_embed
from crackseg.models.vit import VisionTransformer

WRAPPER_KEYS = ("state_dict", "model", "model_state", "module")
PREFIXES = ("module.", "model.", "encoder.", "backbone.")


@dataclass
class LoadReport:
    """What loading did: keys missing from the file, keys in the file we do not use, resampling."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    resampled_pos_embed: tuple[tuple[int, int], tuple[int, int]] | None = None

    def __str__(self) -> str:
        lines = [f"missing keys ({len(self.missing)}): {', '.join(self.missing) or '-'}"]
        lines.append(
            f"unexpected keys ({len(self.unexpected)}): {', '.join(self.unexpected) or '-'}"
        )
        if self.resampled_pos_embed:
            old, new = self.resampled_pos_embed
            lines.append(f"pos_embed resampled from grid {old} to {new}")
        return "\n".join(lines)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read tensors from .safetensors or .pth/.pt/.bin with `weights_only=True` (no pickle code)."""
    path = Path(path)
    if not path.is_file():
        raise CrackSegError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file or unsafe pickle: say which file
        raise CrackSegError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from err
    while isinstance(state, dict) and len(state) and all(k in WRAPPER_KEYS for k in state):
        state = next(state[k] for k in WRAPPER_KEYS if k in state)  # unwrap {"model": {...}}
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CrackSegError(f"{path}: not a state dict of tensors")
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_vit_weights(
    model: VisionTransformer, weights: str | Path | dict[str, Tensor], *, strict: bool = False
) -> LoadReport:
    """Copy timm-layout ViT weights into `model`, reshaping the patch projection and resampling
    `pos_embed` to the model's grid. Missing encoder keys are an error; a head of another size and
    keys we do not use are reported (an error too with `strict=True`)."""
    source = str(weights) if not isinstance(weights, dict) else "state dict"
    state = dict(read_state_dict(weights) if not isinstance(weights, dict) else weights)
    own = model.state_dict()
    report = LoadReport()
    w = state.get("patch_embed.proj.weight")
    if w is not None and w.ndim == 4:  # timm Conv2d (D, C, P, P) -> our Linear (D, C*P*P)
        state["patch_embed.proj.weight"] = w.flatten(1)
    pe = state.get("pos_embed")
    if pe is not None and "pos_embed" in own and pe.shape != own["pos_embed"].shape:
        n_old = pe.shape[1] - model.num_prefix_tokens
        side = int(round(n_old**0.5))
        if side * side != n_old:
            raise CrackSegError(f"{source}: pos_embed has {n_old} grid tokens, not a square grid")
        state["pos_embed"] = resample_pos_embed(pe, model.grid_size, (side, side))
        report.resampled_pos_embed = ((side, side), tuple(model.grid_size))
    for key, value in list(state.items()):
        if key in own and own[key].shape != value.shape:
            if key.startswith("head."):  # another number of classes: keep our fresh head
                del state[key]
                continue
            raise CrackSegError(
                f"{source}: {key} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(own[key].shape)} (wrong preset? check embed_dim / patch_size)"
            )
    report.missing = sorted(k for k in own if k not in state)
    report.unexpected = sorted(k for k in state if k not in own)
    encoder_missing = [k for k in report.missing if not k.startswith("head.")]
    if encoder_missing or (strict and (report.missing or report.unexpected)):
        raise CrackSegError(f"{source}: weights do not fit this ViT\n{report}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    if report.unexpected or report.missing:
        warnings.warn(f"loaded {source} with differences:\n{report}", stacklevel=2)
    return report


def to_timm_state_dict(model: VisionTransformer) -> dict[str, Tensor]:
    """Our ViT's weights in timm's layout (Conv2d patch projection), e.g. to save for timm."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    P, C = model.patch_size, model.patch_embed.proj.in_features // model.patch_size**2
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"].reshape(-1, C, P, P)
    return state
