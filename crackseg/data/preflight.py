"""Before training or evaluating: what is wrong with the data, said up front, or a refusal.

`train` hid what `data inspect` knew: clipped or dropped label lines, masks of the wrong size,
unreadable images, a split whose labels are all "ignore". This module turns the index's problems
into the lines printed at the start of a run, and refuses to start when the data is broken.

The threshold is zero: ANY problem that dropped an item or changed its labels (clipped coordinates,
unknown classes filled as ignore, non-finite numbers, unreadable files, wrong-size masks) refuses
to start unless the user passes `--allow-bad-labels`. A percentage would let 10 broken images of
1000 train silently; a demanding user wants to hear about every one, and can say "go on anyway"
once, knowingly. Problems that change no label (notes such as a yaml `path:` that was corrected)
are printed but never refuse. A split without a single crack pixel is always an error (a score
computed from nothing is not a score), `--allow-bad-labels` or not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from crackseg.conventions import CRACK, IGNORE_INDEX
from crackseg.data.io import image_size, read_mask_checked
from crackseg.data.types import DatasetIndex, Item, Problem, canonical_split
from crackseg.errors import CrackSegError

# kinds that change no pixel of any label: printed, never a reason to refuse
HARMLESS_KINDS = frozenset({"yaml-path"})
MAX_EXAMPLES = 3


def check_training_data(
    index: DatasetIndex, splits: Sequence[str], *, allow_bad_labels: bool = False
) -> list[str]:
    """The summary lines to print before a run over `splits`; CrackSegError when it must not run.

    Every item is checked here, before the first epoch rather than in a DataLoader worker: image
    headers are read (0-byte, not an image, a folder, a decompression bomb), COCO RLEs and mask
    files are decoded (values outside the documented set, wrong sizes). A full decode of every
    image is left to `data inspect` (too slow to repeat before each run). With
    allow_bad_labels=True the items that cannot be read are removed from `index.splits` (in
    place) and reported like every other skipped item.
    """
    names = [canonical_split(s) for s in splits]
    for name in names:
        index.split(name)  # a missing split: the index's own error, listing the others
    with_crack = {name: _check_items(index, name, remove=allow_bad_labels) for name in names}
    problems = [p for p in index.problems if p.split is None or canonical_split(p.split) in names]
    bad = [p for p in problems if p.kind not in HARMLESS_KINDS]
    for name in names:
        if not with_crack[name]:
            _refuse_without_crack(index, name)
    lines = _summary_lines(index, names, problems)
    if bad and not allow_bad_labels:
        total = sum(len(index.splits[n]) for n in names) + sum(p.skipped for p in bad)
        files = len({p.file for p in bad})
        raise CrackSegError(
            f"{index.root}: {files} of {total} items in {'/'.join(names)} have problems "
            f"({_kinds(bad)}; first: {_examples(bad)}). Fix them (`crackseg data inspect "
            f"{index.root}` lists all), or pass --allow-bad-labels to train on the rest knowingly."
        )
    if bad:
        lines.append(
            f"  warning: --allow-bad-labels: going on with {len(bad)} problems "
            f"({sum(p.skipped for p in bad)} items skipped, the rest with labels as read)"
        )
    return lines


def _summary_lines(index: DatasetIndex, names: list[str], problems: list[Problem]) -> list[str]:
    """The same counts `data inspect` shows: images per split, problems per kind, examples."""
    lines = [f"data: {index.root} ({index.format}, classes {index.class_names})"]
    lines += [f"  {n}: {len(index.splits[n])} images" for n in names]
    lines += [f"  note: {note}" for note in index.notes]
    if problems:
        skipped = sum(p.skipped for p in problems)
        lines.append(f"  {len(problems)} problems ({skipped} items skipped): {_kinds(problems)}")
        lines += [f"    {p}" for p in problems[:MAX_EXAMPLES]]
        if len(problems) > MAX_EXAMPLES:
            lines.append(
                f"    ... {len(problems) - MAX_EXAMPLES} more: crackseg data inspect {index.root}"
            )
    else:
        lines.append("  problems: none")
    return lines


def _kinds(problems: list[Problem]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in Counter(p.kind for p in problems).items())


def _examples(problems: list[Problem]) -> str:
    where = [f"{p.file}:{p.line}" if p.line else p.file for p in problems]
    first = "; ".join(f"{w}: {p.message}" for w, p in zip(where, problems[:MAX_EXAMPLES]))
    return first + (" ..." if len(problems) > MAX_EXAMPLES else "")


def _check_items(index: DatasetIndex, name: str, *, remove: bool) -> int:
    """Check every item of a split (see `check_training_data`); returns how many mark a crack."""
    kept: list[Item] = []
    with_crack = 0
    for item in index.splits[name]:
        try:
            hw = image_size(item.image)
        except CrackSegError as err:
            _record(index, name, item.image, err, "Fix or remove the file", "unreadable-image")
            continue
        try:
            with_crack += _label_has_crack(item, hw, index, name)
        except CrackSegError as err:
            _record(index, name, item.label, err, "Fix or re-export the label", "malformed-label")
            continue
        kept.append(item)
    if remove:
        index.splits[name] = kept
    return with_crack


def _label_has_crack(item: Item, hw: tuple[int, int], index: DatasetIndex, name: str) -> bool:
    """Whether an item's label marks a crack pixel; decodes RLEs and mask files (polygons are
    known without drawing). A mask outside {0, 1}, {0, 255}, {0, 1, 255} is recorded."""
    if item.mask_file is not None and item.crack_values is None:
        mask, note = read_mask_checked(item.mask_file)  # (H, W)
        if note:
            action = "Save masks as {0, 255} or {0, 1} PNG"
            index.problems.append(
                Problem(str(item.mask_file), note, action, "nonbinary-mask", split=name)
            )
        if mask.shape != tuple(hw):
            item.load_mask(hw)  # raises the mask-size error, naming both files
        return bool((mask == CRACK).any())
    if item.rles or item.mask_file is not None:
        return bool((item.load_mask(hw) == CRACK).any())
    return any(value == CRACK for value, _ in item.polygons)


def _record(index: DatasetIndex, name: str, path, err: CrackSegError, action: str, kind: str):
    message = str(err).removeprefix(f"{path}: ").rsplit(". ", 1)[0]
    index.problems.append(Problem(str(path), message, action, kind, skipped=True, split=name))


def _refuse_without_crack(index: DatasetIndex, name: str) -> None:
    """Refuse a split in which no label marks a crack pixel: every crack score would be 0/0."""
    items = index.splits[name]
    ignored = sum(any(v == IGNORE_INDEX for v, _ in (*i.polygons, *i.rles)) for i in items)
    why = (
        f"; {ignored} images have labels that all became 'ignore' (class ids not in the "
        "dataset yaml's names?)"
        if ignored
        else ""
    )
    raise CrackSegError(
        f"{index.root}: the '{name}' split ({len(items)} images) has no crack pixel in any "
        f"label{why}{index.skipped_because(name)}. A crack score from it would mean nothing: fix the labels or the class "
        f"names (`crackseg data inspect {index.root}`)."
    )
