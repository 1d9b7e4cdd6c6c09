"""The demo's last step: the bundled model next to the demo's 2-minute model on crack photos.

Real crack-seg val photos when that dataset is present (e.g. ../shared/data/crack-seg), otherwise the
demo's synthetic test images. Both models are scored on the same images at their own thresholds,
and a grid shows image | ground truth | demo model | bundled model per photo. Without a bundled model
the section says so and the demo goes on.
"""

from __future__ import annotations

from pathlib import Path

SECTION = "## The bundled model on crack photos"


def pick_photos(photos: str | Path, synthetic: str | Path, count: int, log) -> tuple[list, str]:
    """The first `count` val items (sorted) of `photos`, else of the synthetic test split."""
    from crackseg.data import load_index
    from crackseg.errors import CrackSegError

    if Path(photos).exists():
        try:
            items = load_index(photos).split("val")
            return sorted(items, key=lambda i: i.image.name)[:count], f"{photos} (val, real photos)"
        except CrackSegError as err:
            log(f"      {photos}: not usable ({err}); using synthetic test images instead")
    items = load_index(synthetic).split("test")
    where = f"synthetic test images ({photos} not found)"
    return sorted(items, key=lambda i: i.image.name)[:count], where


def score(checkpoint: str | Path, items: list) -> tuple[dict, list]:
    """Metrics over `items` at the model's own threshold, and its (H, W) uint8 predictions."""
    import torch

    from crackseg.conventions import resolve_threshold
    from crackseg.data import CrackDataset
    from crackseg.inference import Predictor
    from crackseg.metrics import SegMetrics, probs_from_logits
    from crackseg.tensors import normalize

    predictor = Predictor.from_checkpoint(checkpoint)
    threshold = resolve_threshold(None, predictor.model.config.get("threshold"))
    metrics, preds = SegMetrics(threshold=threshold), []
    dataset = CrackDataset(items, resize="native")
    with torch.inference_mode():
        for sample in dataset:
            images = normalize(sample["image"][None], predictor.mean, predictor.std)  # (1,3,H,W)
            probs = probs_from_logits(predictor(images))  # (1, H, W)
            metrics.update(probs, sample["mask"][None])
            preds.append((probs[0] >= threshold).to(torch.uint8).numpy())
    return {**metrics.compute(), "threshold": threshold}, preds


def metrics_line(scores: dict) -> str:
    shown = lambda k: "undefined" if scores[k] is None else f"{scores[k]:.3f}"
    keys = ("crack_iou", "crack_f1", "precision", "recall")
    return ", ".join(f"{k} {shown(k)}" for k in keys) + f" (threshold {scores['threshold']:.2f})"


def bundled_section(demo_checkpoint, out: Path, *, photos, synthetic, count: int, log) -> list[str]:
    """Run the comparison, write `bundled.png` into `out`; returns the report's Markdown lines."""
    from crackseg.data import CrackDataset
    from crackseg.errors import CrackSegError
    from crackseg.imageops import mosaic
    from crackseg.visualize import GT_RGB, caption, overlay, save_png
    from crackseg.weights import default_model, headline

    try:
        bundled = default_model()
    except CrackSegError:
        log("[5/5] no bundled model in this installation yet: skipping the comparison with it")
        return [SECTION, "", "No bundled model in this installation yet: nothing to compare."]
    items, where = pick_photos(photos, synthetic, count, log)
    log(f"[5/5] the bundled model {bundled.name} vs the demo model on {len(items)} {where}")
    ours, demo_preds = score(demo_checkpoint, items)
    theirs, bundled_preds = score(bundled.file, items)
    cells = []
    for item, sample, a, b in zip(items, CrackDataset(items, resize="native"), demo_preds,
                                  bundled_preds):  # fmt: skip
        image = item.load_image()  # (H, W, 3) uint8
        cells += [caption(image, item.image.stem[:14]), caption(overlay(image, sample["mask"].numpy(),
                  color=GT_RGB), "ground truth"), caption(overlay(image, a), "demo model"),
                  caption(overlay(image, b), bundled.name)]  # fmt: skip
    save_png(mosaic(cells, cols=4), out / "bundled.png")
    for name, scores in (("demo model", ours), (bundled.name, theirs)):
        log(f"      {name}: {metrics_line(scores)}")
    return [
        SECTION,
        "",
        f"{len(items)} images from {where}. The bundled model `{bundled.name}` (`{bundled.preset}`,"
        f" {bundled.dtype}, {headline(bundled)} when it was bundled) against the model this demo "
        "trained for about two minutes on synthetic cracks, each at its own threshold:",
        "",
        f"- demo model: {metrics_line(ours)}",
        f"- bundled `{bundled.name}`: {metrics_line(theirs)}",
        "",
        "image | ground truth | demo model | bundled model: ![bundled model](bundled.png)",
    ]
