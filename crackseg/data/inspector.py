"""`crackseg data inspect`: what is in a dataset, what is wrong with it, and a picture of it.

Every image is decoded (corrupt files are found here, not mid-training), every mask is built at
the image's resolution, and images are hashed twice: MD5 of the file (exact duplicates) and a
64-bit perceptual hash (near-duplicates across splits: leakage that inflates validation scores).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from crackseg.data.index import DatasetIndex, Item, load_index
from crackseg.data.io import read_mask_checked
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
_ROBOFLOW_SOURCE = re.compile(
    r"^(.+?)[._-](jpg|jpeg|png)\.rf\.[0-9a-f]{32}$|^(.+?)\.rf\.[0-9a-f]{32}$", re.I
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
        valid = mask != 255
        out["crack_fraction"] = float((mask == 1).sum() / max(valid.sum(), 1))
        out["ignore_fraction"] = float((~valid).mean())
    except CrackSegError as err:
        out["error"] = str(err)
    return out


def _scan_all(items: list[Item], workers: int) -> list[dict]:
    if workers <= 1 or len(items) < 64:
        return [scan_item(i) for i in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(scan_item, items, chunksize=64))


def source_id(stem: str) -> str | None:
    """Roboflow names augmented copies `<source>_jpg.rf.<md5>`: the source photo's id, or None."""
    m = _ROBOFLOW_SOURCE.match(stem)
    return (m.group(1) or m.group(3)) if m else None


def inspect_dataset(
    path: str | Path,
    *,
    strict: bool = False,
    workers: int = 2,
    grid: str | Path | None = None,
    samples: int = 16,
) -> dict:
    """A JSON-able summary of a dataset (see `format_report`); writes a sample grid PNG if asked."""
    index = load_index(path, strict=strict)
    items = [(split, item) for split, its in index.splits.items() for item in its]
    scans = _scan_all([item for _, item in items], workers)
    per_split: dict[str, dict] = {}
    by_split: dict[str, list[dict]] = defaultdict(list)
    for (split, item), scan in zip(items, scans, strict=True):
        scan["split"], scan["item"] = split, item
        by_split[split].append(scan)
    skipped = Counter((p.split, p.kind) for p in index.problems if p.skipped)
    for split, its in index.splits.items():
        scans_s = by_split[split]
        ok = [s for s in scans_s if "error" not in s]
        frac = np.array([s["crack_fraction"] for s in ok]) if ok else np.zeros(0)
        per_split[split] = {
            "images": len(its),
            "labels": sum(i.has_label for i in its),
            "without_label": sum(not i.has_label for i in its),
            "empty_labels": sum(
                i.has_label and not (i.polygons or i.rles or i.mask_file) for i in its
            ),
            "labels_without_images": skipped[(split, "label-without-image")],
            "unreadable": len(scans_s) - len(ok),
            "sizes": dict(Counter(s["size"] for s in ok).most_common()),
            "crack_fraction": _stats(frac),
            "images_with_crack": int((frac > 0).sum()),
            "nonbinary_masks": sum(bool(s.get("mask_note")) for s in ok),
        }
    if strict and (found := [s for s in scans if "error" in s or s.get("mask_note")]):
        first = found[0].get("error") or f"{found[0]['item'].mask_file}: {found[0]['mask_note']}"
        raise CrackSegError(
            f"{first} ({len(found)} such files; strict mode: every problem is an error)"
        )
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
        if (src := source_id(Path(s["path"]).stem)) is not None:
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
    import cv2

    from crackseg.data.transforms import resize_pair

    per_split = max(samples // max(len(index.splits), 1), 1)
    tiles = []
    for split, items in index.splits.items():
        for item in [
            items[int(i)] for i in np.linspace(0, len(items) - 1, min(per_split, len(items)))
        ]:
            try:
                image = item.load_image()
                mask = item.load_mask(image.shape[:2])
            except CrackSegError:
                continue
            image, mask = resize_pair(image, mask, tile, "letterbox")
            over = image.copy()
            over[mask == 1] = (255, 0, 0)
            over[(mask == 255) & (image.sum(2) != 3 * 114)] = (255, 220, 0)
            t = cv2.addWeighted(image, 0.45, over, 0.55, 0)
            cv2.putText(
                t,
                f"{split}: {item.image.name[:22]}",
                (3, 12),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.35,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            tiles.append(t)
    if not tiles:
        raise CrackSegError(f"{index.root}: no readable image to draw in the sample grid.")
    cols = min(4, len(tiles))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[r : r + cols], axis=1) for r in range(0, len(tiles), cols)]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.concatenate(rows, axis=0)[:, :, ::-1]):
        raise CrackSegError(f"{path}: cannot write the sample grid. Pick another --grid path.")
    return path


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
