"""The files `crackseg explain` writes: explain an image (core) and draw the pictures (render)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crackseg.explain.core import explain
from crackseg.explain.render import explanation_grid, rollout_panel
from crackseg.explain.types import Explanation
from crackseg.visualize import save_png


def write_explanation(
    expl: Explanation,
    image: np.ndarray,
    out: str | Path,
    stem: str,
    *,
    layers: str = "all",
    cell: int = 224,
) -> list[Path]:
    """Write <stem>_attention.png and <stem>_rollout.png (attention), or <stem>_saliency.png, and
    with a Segmenter's saliency also <stem>_saliency.png; returns the paths written."""
    out = Path(out)
    written = []
    if expl.kind == "attention":
        grid = explanation_grid(expl, image, layers=layers, cell=cell)
        written.append(save_png(grid, out / f"{stem}_attention.png"))
        written.append(save_png(rollout_panel(expl, image), out / f"{stem}_rollout.png"))
    if expl.saliency is not None:
        only = Explanation(kind="saliency", model_name=expl.model_name,
                           image_size=expl.image_size, saliency=expl.saliency, probs=expl.probs,
                           threshold=expl.threshold)  # fmt: skip
        panel = explanation_grid(only, image, cell=max(cell, 320))
        written.append(save_png(panel, out / f"{stem}_saliency.png"))
    return written


def explain_file(
    checkpoint: str | Path | None,
    image_path: str | Path,
    out: str | Path,
    *,
    device: str = "cpu",
    layers: str = "all",
    saliency: bool | None = None,
    smoothgrad: int = 0,
    threshold: float | None = None,
    cell: int = 224,
) -> tuple[Explanation, list[Path]]:
    """Load a checkpoint (None: the bundled model), explain one image file, write PNGs to `out`."""
    from crackseg.data import read_image
    from crackseg.engine.checkpoint import load_model

    model = load_model(checkpoint, device=device)
    image = read_image(image_path)  # (H, W, 3) uint8
    expl = explain(model, image, saliency=saliency, smoothgrad=smoothgrad, threshold=threshold)
    return expl, write_explanation(
        expl, image, out, Path(image_path).stem, layers=layers, cell=cell
    )
