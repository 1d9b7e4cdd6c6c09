"""`crackseg data inspect`: what is in a dataset, what is wrong with it, and a picture of it.

Every image is decoded (corrupt files are found here, not mid-training), every mask is built at
the image's resolution, and images are hashed twice: MD5 of the file (exact duplicates) and a
64-bit perceptual hash (near-duplicates across splits: leakage that inflates validation scores).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from crackseg.conventions import CRACK, IGNORE_INDEX
from crackseg.data.index import load_index
from crackseg.data.io import read_mask_checked
from crackseg.data.sources import roboflow_source
from crackseg.data.types import DatasetIndex, Item
from crackseg.errors import CrackSegError

NEAR_DUPLICATE_BITS = 4  # perceptual-hash distance (of 64 bits) that counts as a near-duplicate
_T = Image.Transpose
_D4 = (
    None,
    _T.FLIP_LEFT_RIGHT,
    _T.FLIP_TOP_BOTTOM,
    _T.ROTATE_90,
    _T.ROTATE_180,
    _T.ROTATE_270,
    _T.TRANSPOSE,
    _T.TRANSVERSE,
)


def scan_item(item: Item) -> dict:
    """Decode one image and its mask: size, crack fraction, hashes, or the error met."""
    import imagehash

    out: dict = {"path": str(item.image)}
    try:
        image = item.load_image()  # (H, W, 3)
        h, w = image.shape[:2]
        out["size"] = f"{w}x{h}"
        out["md5"] = hashlib.md5(item.image.read_bytes()).hexdigest()
        thumb = Image.fromarray(image).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
        out["phash"] = [
            int(str(imagehash.phash(thumb if op is None else thumb.transpose(op))), 16)
            for op in _D4
        ]
        if item.mask_file is not None and item.crack_values is None:
            out["mask_note"] = read_mask_checked(item.mask_file)[1]
        mask = item.load_mask((h, w))
        valid = mask != IGNORE_INDEX
        out["crack_fraction"] = float((mask == CRACK).sum() / max(valid.sum(), 1))
        out["ignore_fraction"] = float((~valid).mean())
    except CrackSegError as err:
        out["error"] = str(err)
    return out


def _scan_all(items: list[Item], workers: int) -> list[dict]:
    if workers <= 1 or len(items) < 64:
        return [scan_item(i) for i in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(scan_item, items, chunksize=64))


def inspect_dataset(
    path: str | Path,
    *,
    strict: bool = False,
    workers: int = 2,
    grid: str | Path | None = None,
    samples: int = 16,
) -> dict:
    """A JSON-able summary of a dataset (see `format_report`); writes a sample grid PNG if asked.

    Steps: index the dataset, decode every item, count per split, (strict) refuse any problem,
    then duplicates and problems across the whole dataset."""
    index = load_index(path, strict=strict)
    by_split = _scan_splits(index, workers)
    scans = [scan for split_scans in by_split.values() for scan in split_scans]
    skipped = Counter((p.split, p.kind) for p in index.problems if p.skipped)
    per_split = {
        split: _split_counts(items, by_split[split], skipped, split)
        for split, items in index.splits.items()
    }
    if strict:
        _refuse_scan_problems(scans)
    summary = {
        "path": str(index.root),
        "format": index.format,
        "class_names": index.class_names,
        "splits": per_split,
        "duplicates": _duplicates([s for s in scans if "error" in s or "md5" in s]),
        "problems": _problems(index, scans),
        "notes": index.notes,
    }
    if grid:
        summary["grid"] = str(write_grid(index, Path(grid), samples))
    for s in scans:
        s.pop("item", None)
    return summary


def _scan_splits(index: DatasetIndex, workers: int) -> dict[str, list[dict]]:
    """split -> one scan per item (see `scan_item`), each tagged with its split and item."""
    items = [(split, item) for split, its in index.splits.items() for item in its]
    scans = _scan_all([item for _, item in items], workers)
    by_split: dict[str, list[dict]] = {split: [] for split in index.splits}
    for (split, item), scan in zip(items, scans, strict=True):
        scan["split"], scan["item"] = split, item
        by_split[split].append(scan)
    return by_split


def _split_counts(items: list[Item], scans: list[dict], skipped: Counter, split: str) -> dict:
    """The per-split row of the report: labels, empty labels, orphans, unreadable, crack px."""
    ok = [s for s in scans if "error" not in s]
    frac = np.array([s["crack_fraction"] for s in ok]) if ok else np.zeros(0)
    return {
        "images": len(items),
        "labels": sum(i.has_label for i in items),
        "without_label": sum(not i.has_label for i in items),
        "empty_labels": sum(
            i.has_label and not (i.polygons or i.rles or i.mask_file) for i in items
        ),
        "labels_without_images": skipped[(split, "label-without-image")],
        # decoding failed here, or the file was skipped while indexing (e.g. a folder `x.jpg`)
        "unreadable": len(scans) - len(ok) + skipped[(split, "unreadable-image")],
        "sizes": dict(Counter(s["size"] for s in ok).most_common()),
        "crack_fraction": _stats(frac),
        "images_with_crack": int((frac > 0).sum()),
        "nonbinary_masks": sum(bool(s.get("mask_note")) for s in ok),
    }


def _refuse_scan_problems(scans: list[dict]) -> None:
    """strict mode: an unreadable file or a non-binary mask found by decoding is an error."""
    found = [s for s in scans if "error" in s or s.get("mask_note")]
    if found:
        first = found[0].get("error") or f"{found[0]['item'].mask_file}: {found[0]['mask_note']}"
        raise CrackSegError(
            f"{first} ({len(found)} such files; strict mode: every problem is an error)"
        )


def _stats(values: np.ndarray) -> dict:
    if not len(values):
        return {"mean": None, "min": None, "max": None}
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


def _duplicates(scans: list[dict]) -> dict:
    """Exact duplicates (same bytes) within and across splits; near-duplicates across splits,
    also when flipped or rotated by 90 degrees (Roboflow's augmented copies)."""
    ok = [s for s in scans if "md5" in s]
    groups = defaultdict(list)
    for s in ok:
        groups[s["md5"]].append(s)
    exact_within = sum(len(g) - 1 for g in groups.values() if len({s["split"] for s in g}) == 1)
    exact_across = [
        [s["path"] for s in g] for g in groups.values() if len({s["split"] for s in g}) > 1
    ]
    splits = sorted({s["split"] for s in ok})
    near, pairs = 0, []
    for a_i, a in enumerate(splits):
        for b in splits[a_i + 1 :]:
            sa = [s for s in ok if s["split"] == a]
            sb = [s for s in ok if s["split"] == b]
            ha = np.array([s["phash"][0] for s in sa], np.uint64)  # (A,)
            hb = np.array([s["phash"] for s in sb], np.uint64).reshape(len(sb), 8)  # (B, 8)
            for start in range(0, len(ha), 256):  # bounded memory: 256 x B x 8 at a time
                xor = ha[start : start + 256, None, None] ^ hb[None]  # (a, B, 8)
                dist = np.bitwise_count(xor).min(axis=2)  # closest flip/rotation of each B image
                for i, j in zip(*np.nonzero(dist <= NEAR_DUPLICATE_BITS), strict=True):
                    if sa[start + i]["md5"] != sb[j]["md5"]:
                        near += 1
                        pairs.append([sa[start + i]["path"], sb[j]["path"], int(dist[i, j])])
    sources = defaultdict(set)
    for s in ok:
        if (src := roboflow_source(Path(s["path"]).stem)) is not None:
            sources[src].add(s["split"])
    return {
        "exact_within_splits": exact_within,
        "exact_across_splits": len(exact_across),
        "exact_across_examples": exact_across[:10],
        "near_across_splits": near,
        "near_threshold_bits": NEAR_DUPLICATE_BITS,
        "near_examples": sorted(pairs, key=lambda p: p[2])[:10],
        "source_photos_in_several_splits": sum(len(v) > 1 for v in sources.values()),
    }


def _problems(index: DatasetIndex, scans: list[dict]) -> dict:
    listed = [str(p) for p in index.problems]
    listed += [s["error"] + " (found by inspect)" for s in scans if "error" in s]
    listed += [f"{s['item'].mask_file}: {s['mask_note']}" for s in scans if s.get("mask_note")]
    kinds = Counter(p.kind for p in index.problems)
    kinds.update("unreadable-image" for s in scans if "error" in s)
    kinds.update("nonbinary-mask" for s in scans if s.get("mask_note"))
    return {
        "counts": dict(kinds),
        "skipped_items": sum(p.skipped for p in index.problems),
        "messages": listed[:50],
        "more": max(len(listed) - 50, 0),
    }


def write_grid(index: DatasetIndex, path: Path, samples: int = 16, tile: int = 192) -> Path:
    """A PNG of evenly spaced samples from each split, crack pixels red, ignore pixels yellow."""
    from crackseg.data.transforms import letterbox_geometry, resize_pair
    from crackseg.visualize import caption, overlay, save_png

    per_split = max(samples // max(len(index.splits), 1), 1)
    tiles = []
    for split, items in index.splits.items():
        for item in [
            items[int(i)] for i in np.linspace(0, len(items) - 1, min(per_split, len(items)))
        ]:
            try:
                image = item.load_image()  # (H, W, 3)
                mask = item.load_mask(image.shape[:2])  # (H, W)
            except CrackSegError:
                continue
            _, top, left, nh, nw = letterbox_geometry(*mask.shape, tile)
            image, padded = resize_pair(image, mask, tile, "letterbox")  # (tile, tile, 3)
            mask = np.zeros_like(padded)  # the letterbox border is drawn as is, not as ignore
            mask[top : top + nh, left : left + nw] = padded[top : top + nh, left : left + nw]
            shown = overlay(image, mask, color=(255, 0, 0), alpha=0.55, ignore_color=(255, 220, 0))
            tiles.append(caption(shown, f"{split}: {item.image.name[:22]}", scale=0.35))
    if not tiles:
        raise CrackSegError(f"{index.root}: no readable image to draw in the sample grid.")
    cols = min(4, len(tiles))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[r : r + cols], axis=1) for r in range(0, len(tiles), cols)]
    try:
        return save_png(np.concatenate(rows, axis=0), path)
    except (OSError, ValueError) as err:
        raise CrackSegError(
            f"{path}: cannot write the sample grid ({err}). Pick another --grid path."
        ) from None


def format_report(s: dict) -> str:
    """The summary as the lines `crackseg data inspect` prints."""
    lines = [f"{s['path']}: {s['format']} dataset, classes {s['class_names']}"]
    head = (
        f"  {'split':<6} {'images':>6} {'labels':>6} {'no-label':>8} {'empty':>5} {'orphan':>6} "
        f"{'bad':>4}  crack px mean [min, max]  sizes"
    )
    lines.append(head)
    for name, d in s["splits"].items():
        cf = d["crack_fraction"]
        crack = (
            "-" if cf["mean"] is None else f"{cf['mean']:.2%} [{cf['min']:.2%}, {cf['max']:.2%}]"
        )
        sizes = ", ".join(f"{k} ({v})" for k, v in list(d["sizes"].items())[:3])
        sizes += " ..." if len(d["sizes"]) > 3 else ""
        lines.append(
            f"  {name:<6} {d['images']:>6} {d['labels']:>6} {d['without_label']:>8} "
            f"{d['empty_labels']:>5} "
            f"{d['labels_without_images']:>6} {d['unreadable']:>4}  {crack:<24}  {sizes}"
        )
    dup = s["duplicates"]
    lines.append(
        f"  duplicates: {dup['exact_within_splits']} exact within splits, "
        f"{dup['exact_across_splits']} exact across splits, {dup['near_across_splits']} near "
        f"across splits (phash <= {dup['near_threshold_bits']} bits, "
        "flips and rotations included)"
        + (
            f", {dup['source_photos_in_several_splits']} source photos in several splits"
            if dup["source_photos_in_several_splits"]
            else ""
        )
    )
    for ex in dup["near_examples"][:3]:
        lines.append(f"    near: {ex[0]} ~ {ex[1]} ({ex[2]} bits)")
    lines += [f"  note: {n}" for n in s["notes"]]
    pr = s["problems"]
    if pr["counts"]:
        lines.append(
            f"  problems ({pr['skipped_items']} items skipped): "
            + ", ".join(f"{k} {v}" for k, v in pr["counts"].items())
        )
        lines += [f"    {m}" for m in pr["messages"][:20]]
        if len(pr["messages"]) > 20 or pr["more"]:
            lines.append(f"    ... {len(pr['messages']) - 20 + pr['more']} more (--json lists 50)")
    else:
        lines.append("  problems: none")
    if s.get("grid"):
        lines.append(f"  sample grid: {s['grid']}")
    return "\n".join(lines)
