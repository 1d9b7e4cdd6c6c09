"""Human-readable output for metrics: a printed table and a precision-recall PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Display order and labels; keys not listed are printed after these, in their own order.
_LABELS = {
    "crack_iou": "crack IoU",
    "crack_f1": "crack F1 (Dice)",
    "precision": "precision",
    "recall": "recall",
    "miou": "mean IoU",
    "background_iou": "background IoU",
    "pixel_acc": "pixel accuracy",
    "ods_f1": "ODS F1",
    "ods_threshold": "ODS threshold",
    "ois_f1": "OIS F1",
    "tol_f1": "tolerance F1",
    "tol_precision": "tolerance precision",
    "tol_recall": "tolerance recall",
    "labelled_pixels": "labelled pixels",
    "images": "images",
    "ois_images": "images in OIS",
}
_COUNTS = ("labelled_pixels", "images", "ois_images")
UNDEFINED = "undefined"  # how a metric with a zero denominator (None) is printed


def format_table(metrics: dict, *, title: str | None = None, digits: int = 4) -> str:
    """Two aligned columns (metric, value): scores with `digits` decimals, counts as integers,
    and `undefined` for a metric that is None (computed from nothing, see `SegMetrics`)."""
    keys = [k for k in _LABELS if k in metrics] + [k for k in metrics if k not in _LABELS]
    rows = []
    for key in keys:
        value = metrics[key]
        if value is None:
            text = UNDEFINED
        elif isinstance(value, (int, np.integer)) or key in _COUNTS:
            text = str(int(value))
        elif isinstance(value, (float, np.floating)):
            text = f"{float(value):.{digits}f}"
        else:
            text = str(value)
        rows.append((_LABELS.get(key, key), text))
    width = max([len("metric")] + [len(name) for name, _ in rows])
    vwidth = max([len("value")] + [len(text) for _, text in rows])
    lines = [title] if title else []
    lines.append(f"{'metric':<{width}}  {'value':>{vwidth}}")
    lines.append(f"{'-' * width}  {'-' * vwidth}")
    lines += [f"{name:<{width}}  {text:>{vwidth}}" for name, text in rows]
    return "\n".join(lines)


def threshold_hint(metrics: dict, used: float, min_gain: float = 0.005) -> str | None:
    """A line that says so when another threshold gives a clearly better crack F1 on this data.

    Datasets draw cracks at different widths, so the best threshold moves with them (the bundled
    model's: 0.60 on crack-seg val, 0.83 on masonry walls, 0.18 on pavement val); the user who
    has a few labelled photos of their own can read theirs off `evaluate`."""
    best, f1 = metrics.get("ods_threshold"), metrics.get("ods_f1")
    at_used = metrics.get("crack_f1")
    if best is None or f1 is None or at_used is None or f1 - at_used < min_gain:
        return None
    return (f"best-F1 threshold on this data: {best:.2f} (F1 {f1:.3f} against {at_used:.3f} at "
            f"{used:.2f}); pass --threshold {best:.2f} to predict or serve for photos like these")  # fmt: skip


def plot_pr_curve(
    path: str | Path,
    precision: np.ndarray,
    recall: np.ndarray,
    thresholds: np.ndarray,
    *,
    scores: dict | None = None,
    title: str = "Crack precision-recall",
) -> Path:
    """Save a PR curve PNG with iso-F1 contours; marks the ODS point when `scores` has it.

    Thresholds where nothing is predicted (precision undefined) are left out of the line.
    Uses matplotlib's object API with the Agg canvas, so no display and no global backend change.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(5, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for f in np.arange(0.1, 1.0, 0.1):  # iso-F1 lines: p = f r / (2 r - f), p <= 1 from r = f/(2-f)
        r = np.linspace(f / (2 - f), 1, 200)
        ax.plot(r, f * r / (2 * r - f), color="0.85", lw=0.8, zorder=1)
        ax.text(1.01, f / (2 - f), f"F1={f:.1f}", color="0.6", fontsize=6, va="center")
    defined = (recall > 0) | (precision > 0)
    ax.plot(recall[defined], precision[defined], color="tab:blue", lw=2, zorder=2, label="PR")
    if scores is not None and scores.get("ods_threshold") is not None:
        j = int(np.argmin(np.abs(thresholds - scores["ods_threshold"])))
        label = f"ODS F1={scores['ods_f1']:.3f} @ t={thresholds[j]:.2f}"
        ax.scatter([recall[j]], [precision[j]], color="tab:red", zorder=3, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="recall", ylabel="precision", title=title)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.savefig(path)
    return path
