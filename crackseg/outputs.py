"""Where commands write: a folder checked for writing before any work, and the marker that tells a
later `predict` or `explain` a folder holds crackseg's outputs (see `crackseg.inputs`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from crackseg.data.io import is_image_file
from crackseg.errors import CrackSegError

OUTPUT_MARKER = ".crackseg-output"


def check_writable(folder: str | Path, flag: str = "--out") -> None:
    """Before any work: `folder` is, or can be made, a folder this process can write in; else a
    CrackSegError naming the flag and the reason (a read-only disk, a missing permission, a path
    through a file). Probes by writing a temporary file; folders made for the probe are removed."""
    folder = _not_a_file(folder, flag)
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # innermost first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise CrackSegError(
            f"{flag} {folder}: cannot write there ({err.strerror or err}). Choose another folder."
        ) from None
    finally:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                break


def mark_output(folder: str | Path, command: str) -> None:
    """Create `folder` (parents too) and mark it as a crackseg output folder, unless it already
    holds images of its own (outputs written among the user's photos must not hide the photos
    from a later search); a file there is an error that names it."""
    folder = _not_a_file(folder, "--out")
    marker = folder / OUTPUT_MARKER
    if marker.exists() or (folder.is_dir() and has_images(folder)):
        return
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        f"Written by crackseg {command}. crackseg predict and explain leave the images in this "
        "folder out when they search a folder above it; name this folder to read it.\n"
    )


def _not_a_file(folder: str | Path, flag: str) -> Path:
    """`folder` as a Path, or a CrackSegError when a file is in its place."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CrackSegError(f"{flag} {folder}: is a file, not a folder. Choose a folder.")
    return folder


def has_images(folder: Path) -> bool:
    """Whether any file under `folder` is an image."""
    return any(q.is_file() and is_image_file(q) for q in folder.rglob("*"))
