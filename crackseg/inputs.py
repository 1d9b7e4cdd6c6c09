"""Which images a command reads (`predict`, `explain`): files, folders and globs, without the
outputs of earlier runs.

A folder a crackseg command writes into holds a marker file (`crackseg.outputs.OUTPUT_MARKER`). A
folder walk or glob leaves out the images in marked folders below the folder it searches, and the
images under this run's own --out, and says how many it left out: `predict photos --out
photos/preds` run twice, or `explain photos` after it, must not take the masks and overlays for
photos. A folder given by name is always read, marked or not, and so is a file.
"""

from __future__ import annotations

import glob
from pathlib import Path

from crackseg.data.io import HEIF_EXTS, heif_available, is_image_file
from crackseg.errors import CrackSegError
from crackseg.outputs import OUTPUT_MARKER, has_images


def expand_inputs(inputs: list[str], exclude: str | Path | None = None) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths; unmatched inputs
    are an error that names them. A folder named like an image (`x.jpg/`) inside a searched folder
    is listed too, so that it is reported rather than silently passed over. Earlier outputs are
    left out: see the module's docstring (`exclude` is this run's --out folder)."""
    return find_inputs(inputs, exclude)[0]


def find_inputs(inputs: list[str], exclude: str | Path | None = None) -> tuple[list[Path], str]:
    """`expand_inputs` and the line a command prints about the earlier outputs it left out
    ("" when none were), from one walk of the folders."""
    pairs, left_out = _expand(inputs, exclude)
    paths = [path for path, _ in pairs]
    if all(p.suffix.lower() in HEIF_EXTS for p in paths) and not heif_available():
        raise CrackSegError(  # one line before any work, not one per photo
            f"{' '.join(inputs)}: {len(paths)} HEIC/HEIF photo(s) (the iPhone camera's format) "
            "and no other image; reading them needs the 'heic' extra: pip install "
            "'crackseg[heic]', or export them as JPEG"
        )
    return paths, left_out_note(left_out)


def left_out_note(left_out: dict[Path, int]) -> str:
    """'left out N images in earlier crackseg outputs: a (n), b (m)' or ""."""
    if not left_out:
        return ""
    folders = [f"{folder} ({n})" for folder, n in left_out.items()]
    shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
    total = sum(left_out.values())
    return (
        f"left out {total} images in earlier crackseg outputs: {shown} "
        "(pass a folder itself to read it)"
    )


def _expand(inputs: list[str], exclude: str | Path | None = None) -> tuple[list, dict]:
    """(image path, its name for outputs) per image, and per left-out output folder how many
    images it held: a folder's images keep their sub-folder relative to it (`a/x`), a file or
    glob match is named by its stem."""
    paths: list[tuple[Path, Path]] = []
    left_out: dict[Path, int] = {}
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            found = sorted(
                q for q in p.rglob("*") if is_image_file(q) and (q.is_file() or q.is_dir())
            )
            found = [(q, q.relative_to(p).with_suffix("")) for q in found
                     if q.is_file() or not has_images(q)]  # fmt: skip
            if not found and is_image_file(p):
                found = [(p, Path(p.stem))]  # `x.jpg` given by name is a folder: reported when read
            if not found:
                raise CrackSegError(f"{spec}: the folder holds no image files")
            found = _outside_outputs(found, exclude, p, spec, left_out)
        elif p.is_file():
            found = [(p, Path(p.stem))]
        else:
            matches = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
            found = [(q, Path(q.stem)) for q in matches]
            if found:
                found = _outside_outputs(found, exclude, _glob_root(spec), spec, left_out)
        if not found:
            raise CrackSegError(f"{spec}: no such image file, folder or matching pattern")
        paths += found
    return paths, left_out


def _glob_root(spec: str) -> Path:
    """The folder a glob pattern searches: its parts before the first wildcard."""
    fixed = []
    for part in Path(spec).parts:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _output_folder(path: Path, root: Path, out: Path | None, marked: dict) -> Path | None:
    """The output folder strictly below `root` that holds `path` (all resolved): `out` or a
    marked folder, the outermost one; None when there is none. `marked` caches marker lookups."""
    found = None
    for folder in path.parents:
        if folder == root or not folder.is_relative_to(root):
            break
        if folder not in marked:
            marked[folder] = folder == out or (folder / OUTPUT_MARKER).is_file()
        if marked[folder]:
            found = folder
    return found


def _outside_outputs(found: list, exclude: str | Path | None, searched: Path, spec: str,
                     left_out: dict) -> list:  # fmt: skip
    """`found` less the images in output folders strictly below `searched` (`_output_folder`),
    counted per folder in `left_out`. An --out folder equal to or above the searched one leaves
    nothing out: it holds the inputs."""
    root = searched.resolve()
    out = Path(exclude).resolve() if exclude is not None else None
    kept, marked = [], {}
    for q, name in found:
        folder = _output_folder(q.resolve(), root, out, marked)
        if folder is None:
            kept.append((q, name))
        else:
            shown = searched / folder.relative_to(root)
            left_out[shown] = left_out.get(shown, 0) + 1
    if not kept:
        folders = ", ".join(str(f) for f in left_out)
        raise CrackSegError(
            f"{spec}: its only images are earlier outputs of crackseg ({folders}); "
            "pass one itself to read it"
        )
    return kept


def output_names(inputs: list[str], exclude: str | Path | None = None) -> list[tuple[Path, str]]:
    """(image path, unique output name) per image, so that no output overwrites another.

    Names are `x` for a file, `sub/x` for an image in a sub-folder of a folder input. Where
    two different images would still share a name (`x.jpg` and `x.png`, or `a/x.jpg` and
    `b/x.jpg` given as files), each gets its extension (`x_jpg`), then a number (`x_jpg-2`).
    The same file given twice is predicted once."""
    pairs, seen = [], set()
    for path, name in _expand(inputs, exclude)[0]:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            pairs.append((path, name.as_posix()))
    counts: dict[str, int] = {}
    for _, name in pairs:
        counts[name.casefold()] = counts.get(name.casefold(), 0) + 1
    named, taken = [], set()
    for path, name in pairs:
        if counts[name.casefold()] > 1:
            name = f"{name}_{path.suffix.lstrip('.')}"
        unique, n = name, 1
        while unique.casefold() in taken:
            n += 1
            unique = f"{name}-{n}"
        taken.add(unique.casefold())
        named.append((path, unique))
    return named
