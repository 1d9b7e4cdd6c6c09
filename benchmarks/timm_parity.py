"""Parity of our ViT with timm's `vision_transformer`, checked across two virtual environments.

timm is not a dependency of crackseg, so the check runs in two steps:

    .venv-peers/bin/python benchmarks/timm_parity.py export /tmp/parity   # timm side
    .venv/bin/python benchmarks/timm_parity.py check /tmp/parity          # crackseg side

`export` builds each timm model with random weights (seeded), saves its state dict (.safetensors),
a fixed input and timm's `forward_features` output, at 224 and, after timm's own checkpoint filter
resamples the position grid, at 416. `check` loads the same files with `build_model(pretrained=...)`
and prints the max abs difference (the bar is 1e-4).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

PAIRS = {  # our preset -> (timm model, extra kwargs)
    "vit_tiny_patch16": ("vit_tiny_patch16_224", {}),
    "vit_small_patch16": ("vit_small_patch16_224", {}),
    "vit_base_patch16": ("vit_base_patch16_224", {}),
    "vit_tiny_patch8": ("vit_tiny_patch16_224", {"patch_size": 8}),
    "vit_small_patch8": ("vit_small_patch8_224", {}),
    "vit_base_patch8": ("vit_base_patch8_224", {}),
}


def export(out: Path) -> None:
    import timm
    from timm.models.vision_transformer import checkpoint_filter_fn

    out.mkdir(parents=True, exist_ok=True)
    for ours, (name, kw) in PAIRS.items():
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=False, num_classes=0, **kw).eval()
        for p in model.parameters():  # random but non-trivial weights everywhere
            p.data.normal_(0, 0.05)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(out / f"{ours}.safetensors"))
        big = timm.create_model(name, pretrained=False, num_classes=0, img_size=416, **kw).eval()
        big.load_state_dict(checkpoint_filter_fn(state, big))
        x224, x416 = torch.randn(2, 3, 224, 224), torch.randn(1, 3, 416, 416)
        with torch.no_grad():
            tensors = {"x224": x224, "y224": model.forward_features(x224),
                       "x416": x416, "y416": big.forward_features(x416)}  # fmt: skip
        save_file(tensors, str(out / f"{ours}.io.safetensors"))
        print(f"exported {ours} <- timm {name} {kw} (timm {timm.__version__})")


def check(out: Path) -> int:
    import warnings

    from crackseg.models import build_model

    worst = 0.0
    for ours in PAIRS:
        io = load_file(str(out / f"{ours}.io.safetensors"))
        weights = out / f"{ours}.safetensors"
        row = []
        for size in (224, 416):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = build_model(ours, image_size=size, pretrained=weights).eval()
            with torch.no_grad():
                diff = (model.forward_features(io[f"x{size}"]) - io[f"y{size}"]).abs().max().item()
            row.append(f"{size}: {diff:.2e}")
            worst = max(worst, diff) if size == 224 else worst
        print(f"{ours:20} max |ours - timm|  " + "   ".join(row))
    print(f"worst at the native size: {worst:.2e} ({'PASS' if worst <= 1e-4 else 'FAIL'} at 1e-4)")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    mode, folder = sys.argv[1], Path(sys.argv[2])
    sys.exit(export(folder) if mode == "export" else check(folder))
