"""Can a photo tell how wide its cracks were labelled? A threshold per image, chosen from the photo.

    python benchmarks/threshold_from_photo.py [--checkpoint CKPT] [--data crack-seg.yaml]
        [--fit train] [--score val] [--every K] [--k 25 50 100 200] [--dims 32]

crack-seg's label width changes with the upload batch (benchmarks/label_boundary.py), and with
each image at its own best threshold the same maps would score far higher than at one threshold.
This asks whether that threshold can be read off the photo, with no label. Each image is described
by the model's own view of it: the mean and std of every channel of each top-level stage's output
(the U-Net stages, the Transformer tokens, the head), reduced to --dims principal components of the
--fit split. A scored image then takes the threshold that is best for its k nearest --fit images
together (their summed TP, FP, FN). k is chosen on the --fit split alone, each image scored against
the others with its own source photo left out (Roboflow's x3 copies share one), so --score is never
tuned on. A last check asks the same neighbours for the upload batch itself: the rank correlation
of an image's number with the median number of its 10 nearest --fit images, and how often both fall
in the same eighth of the numbering (chance: 1/8). Writes nothing; prints tables.
"""

from __future__ import annotations

import argparse
import re
import sys

import label_boundary as boundary  # the sibling script: run from benchmarks/
import torch
from torch import Tensor, nn

from crackseg.data.dataset import build_dataset
from crackseg.engine.checkpoint import resolve_model_ref
from crackseg.engine.setup import resolve_amp
from crackseg.errors import CrackSegError
from crackseg.inference import Predictor

LEADING_NUMBER = re.compile(r"^(\d+)")


def stages(model: nn.Module) -> list[nn.Module]:
    """The model's top-level children, a ModuleList counted stage by stage."""
    found = []
    for child in model.children():
        found.extend(child if isinstance(child, nn.ModuleList) else [child])
    return found


def channel_stats(x: Tensor) -> Tensor:
    """(B, C, H, W) feature map or (B, N, C) tokens -> (2C,) mean and std of each channel."""
    x = x.float().flatten(2).transpose(1, 2) if x.dim() == 4 else x.float()  # (B, N, C)
    x = x.flatten(0, 1)  # (B*N, C)
    return torch.cat([x.mean(0), x.std(0)])


class Describer:
    """Records channel_stats of every stage while the predictor runs; one vector per image."""

    def __init__(self, model: nn.Module):
        self.calls: dict[int, list[Tensor]] = {}
        for k, stage in enumerate(stages(model)):
            stage.register_forward_hook(self._hook(k))

    def _hook(self, k: int):
        def record(module, inputs, output):
            output = output[0] if isinstance(output, tuple) else output
            if isinstance(output, Tensor) and output.dim() in (3, 4):
                self.calls.setdefault(k, []).append(channel_stats(output))

        return record

    def take(self) -> Tensor:
        """(F,) the description of the image just predicted (windows averaged)."""
        vector = torch.cat([torch.stack(v).mean(0) for _, v in sorted(self.calls.items())])
        self.calls.clear()
        return vector


def collect(predictor: Predictor, describer: Describer, data: str, split: str, every: int):
    """-> names, (I, F) descriptions, (I, n, 3) counts at each threshold of GRID, file-name order."""
    dataset = build_dataset(data, split, resize="native", compact=True)  # uint8
    names = [item.image.name for item in dataset.items]
    order = sorted(range(len(dataset)), key=lambda i: boundary.natural_key(names[i]))[::every]
    described, counts = [], []
    for i in order:
        item = dataset[i]
        valid = item["mask"] != boundary.IGNORE
        label = (item["mask"] == 1) & valid
        image = item["image"].permute(1, 2, 0).numpy()  # (H, W, 3) uint8
        probs = torch.from_numpy(predictor.predict_probs(image))
        described.append(describer.take())
        counts.append(boundary.grid_counts(probs, label, valid))
    return [names[i] for i in order], torch.stack(described).double(), torch.stack(counts)


def nearest(query: Tensor, pool: Tensor, k: int, exclude: Tensor | None = None) -> Tensor:
    """(Q, D), (P, D) -> (Q, k) indices of the k nearest pool rows (exclude: (Q, P) bool)."""
    dist = torch.cdist(query, pool)
    if exclude is not None:
        dist = dist.masked_fill(exclude, torch.inf)
    return dist.topk(k, dim=1, largest=False).indices


def pooled_iou(counts: Tensor, chosen: Tensor) -> float | None:
    """(I, n, 3) counts, (I,) threshold index per image -> crack IoU of all images together."""
    return boundary.iou(*counts[torch.arange(len(counts)), chosen].sum(0).tolist())


def best_threshold(counts: Tensor) -> Tensor:
    """(..., n, 3) counts -> (...) index of the threshold with the highest crack IoU."""
    tp, fp, fn = counts.unbind(-1)
    return (tp / (tp + fp + fn).clamp(min=1)).argmax(dim=-1)


def neighbour_thresholds(counts: Tensor, neighbours: Tensor, chunk: int = 256) -> Tensor:
    """(P, n, 3) pool counts, (Q, k) neighbours -> (Q,) index of their jointly best threshold."""
    parts = [best_threshold(counts[rows].sum(1)) for rows in neighbours.split(chunk)]
    return torch.cat(parts)


def source_of(name: str) -> str:
    """'1604.rf.<hash>.jpg' -> '1604.jpg': Roboflow's augmented copies of one photo."""
    return boundary.ROBOFLOW_HASH.sub("", name)


def rank_correlation(a: Tensor, b: Tensor) -> float:
    ra, rb = (x.argsort().argsort().double() for x in (a, b))
    return torch.corrcoef(torch.stack([ra, rb]))[0, 1].item()


def batch_check(fit_names: list[str], fit_z: Tensor, names: list[str], z: Tensor) -> str:
    """Whether the photo's nearest --fit images come from its own part of the numbering."""
    numbers = [LEADING_NUMBER.match(n) for n in fit_names + names]
    if not all(numbers) or len(fit_names) < 10:
        return "not numbered (or under 10 --fit images): no batch check"
    ids = torch.tensor([float(m.group(1)) for m in numbers], dtype=torch.float64)
    fit_ids, own = ids[: len(fit_names)], ids[len(fit_names) :]
    guessed = fit_ids[nearest(z, fit_z, 10)].median(dim=1).values  # (Q,)
    edges = torch.quantile(fit_ids, torch.linspace(0, 1, 9, dtype=torch.float64)[1:-1])
    same = (torch.bucketize(own, edges) == torch.bucketize(guessed, edges)).double().mean().item()
    return (f"rank correlation of an image's number with its 10 nearest --fit images' median "
            f"{rank_correlation(own, guessed):.3f}; same eighth of the numbering {same:.2f} "
            f"(chance 0.125)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the bundled model")
    parser.add_argument("--data", default=str(boundary.CRACK_SEG))
    parser.add_argument("--fit", default="train", help="split the neighbours come from")
    parser.add_argument("--score", default="val", help="split that is scored")
    parser.add_argument("--every", type=int, default=1, help="use every K-th --fit image")
    parser.add_argument("--k", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--dims", type=int, default=32, help="principal components kept")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if min(args.every, args.dims, *args.k) < 1:
        parser.error(f"--every, --dims and --k: give whole numbers >= 1 (got {args.every}, "
                     f"{args.dims}, {args.k})")  # fmt: skip
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    predictor = Predictor.from_checkpoint(resolve_model_ref(args.checkpoint), device=cpu,
                                          amp_dtype=resolve_amp("auto", cpu))  # fmt: skip
    stored = predictor.model.config.get("threshold") or 0.5
    describer = Describer(predictor.model)
    fit_names, fit_x, fit_counts = collect(predictor, describer, args.data, args.fit, args.every)
    names, x, counts = collect(predictor, describer, args.data, args.score, 1)

    mean, std = fit_x.mean(0), fit_x.std(0) + 1e-6
    centred = (fit_x - mean) / std
    dims = min(args.dims, *centred.shape)
    axes = torch.linalg.svd(centred - centred.mean(0), full_matrices=False).Vh[:dims].T  # (F, D)
    fit_z, z = centred @ axes, ((x - mean) / std) @ axes

    photo = {name: j for j, name in enumerate(dict.fromkeys(map(source_of, fit_names)))}
    photo_of = torch.tensor([photo[source_of(n)] for n in fit_names])  # (P,)
    own_photo = photo_of[:, None] == photo_of[None, :]  # (P, P)
    k_rows, best_k = [], None
    for k in sorted(set(args.k)):
        if k > len(fit_names) - own_photo.sum(1).max().item():
            continue  # not enough other photos to take k neighbours
        chosen = neighbour_thresholds(fit_counts, nearest(fit_z, fit_z, k, own_photo))
        score = pooled_iou(fit_counts, chosen)
        k_rows.append((k, score))
        if score is not None and (best_k is None or score > best_k[1]):
            best_k = (k, score)
    fixed = int(best_threshold(fit_counts.sum(0)))  # the --fit split's best single threshold
    stored_index = int(torch.argmin((boundary.GRID - stored).abs()))

    print(f"{args.data}: --fit {args.fit} {len(fit_names)} images, --score {args.score} "
          f"{len(names)} images; {fit_x.shape[1]} channel statistics -> {dims} components")  # fmt: skip
    print(f"\n| k nearest ({args.fit}, own photo left out) | {args.fit} crack IoU |\n|---|---|")
    one = torch.full((len(fit_names),), fixed)
    print(f"| one threshold for all, {boundary.GRID[fixed].item():.2f} | "
          f"{boundary.show(pooled_iou(fit_counts, one))} |")  # fmt: skip
    for k, score in k_rows:
        print(f"| {k} | {boundary.show(score)} |")
    print(f"\n| {args.score}: threshold | crack IoU |\n|---|---|")
    one = torch.full((len(names),), stored_index)
    print(f"| stored {stored} for every image | {boundary.show(pooled_iou(counts, one))} |")
    one = torch.full((len(names),), fixed)
    print(f"| {args.fit}'s best, {boundary.GRID[fixed].item():.2f}, for every image | "
          f"{boundary.show(pooled_iou(counts, one))} |")  # fmt: skip
    if best_k is not None:
        chosen = neighbour_thresholds(fit_counts, nearest(z, fit_z, best_k[0]))
        q = torch.quantile(
            boundary.GRID[chosen], torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
        )
        print(f"| best for its {best_k[0]} nearest {args.fit} images (p10/p50/p90 "
              f"{q[0]:.2f}/{q[1]:.2f}/{q[2]:.2f}) | {boundary.show(pooled_iou(counts, chosen))} |")  # fmt: skip
    print(f"| each image's own best (oracle: reads the labels) | "
          f"{boundary.show(boundary.own_threshold_iou(counts)[0])} |")  # fmt: skip
    print(f"\nbatch check: {batch_check(fit_names, fit_z, names, z)}")


if __name__ == "__main__":
    try:
        main()
    except CrackSegError as err:  # a missing checkpoint or dataset: one line, no traceback
        sys.exit(str(err))
