"""Untrusted uploads -> uint8 RGB arrays, or an `UploadError` with an HTTP status and a clear message.

The format is sniffed from the bytes (Pillow's magic-number checks, a fixed list of formats), never
from the file name or the declared content type. The pixel count is read from the header and checked
before anything is decoded, so a small file that inflates to gigapixels (a decompression bomb) costs
nothing.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from crackseg.data.io import enable_heif, heif_available, is_heif, pil_to_rgb
from crackseg.errors import CrackSegError

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "AVIF")  # and HEIF with the 'heic' extra
# Leading bytes of files people upload by mistake -> what to tell them.
_NOT_IMAGES = {
    b"%PDF": "a PDF document: export the page as PNG or JPEG",
    b"GIF8": "a GIF: save it as PNG",
    b"PK\x03\x04": "a ZIP archive (or an Office document): upload the images one by one",
    b"<svg": "an SVG drawing: export it as PNG",
    b"<?xm": "an XML/SVG document: export it as PNG",
}
_AVIF = (b"ftypavif", b"ftypavis")  # bytes 4-12 of an AVIF photo (HEIC: `is_heif`)


class UploadError(Exception):
    """A bad request: `status` is the HTTP status (4xx) and the message says what to do."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def accepted_formats() -> list[str]:
    """The formats an upload may be in, as the page and the errors name them: AVIF where this
    Pillow reads it, HEIC with the 'heic' extra (pillow-heif)."""
    from PIL import features

    names = ["PNG", "JPEG", "WebP", "BMP", "TIFF"]
    names += ["AVIF"] if features.check("avif") else []
    return names + (["HEIC"] if heif_available() else [])


def _listed(names: list[str]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}"


def megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _what_is_it(data: bytes) -> str:
    """A hint naming common non-image uploads, or '' when unknown."""
    if is_heif(data[:12]) or data[4:12] in _AVIF:
        return (" It looks like a HEIC/AVIF photo: export it as JPEG (iPhone: Settings > Camera > "
                "Formats > Most Compatible), or install the 'heic' extra for HEIC.")  # fmt: skip
    for magic, what in _NOT_IMAGES.items():
        if data.lstrip()[:4] == magic:
            return f" It looks like {what}."
    return ""


def decode_upload(data: bytes, *, max_pixels: int, name: str = "upload") -> np.ndarray:
    """Uploaded bytes -> (H, W, 3) uint8 RGB; raises `UploadError` 422 (empty, corrupt), 415 (not a
    supported image) or 413 (more than `max_pixels` pixels)."""
    if not data:
        raise UploadError(422, f"{name}: the file is empty (0 bytes).")
    formats = FORMATS
    if is_heif(data[:12]):  # a phone's HEIC photo: readable with the 'heic' extra
        try:
            enable_heif(name)
            formats = (*FORMATS, "HEIF")
        except CrackSegError as err:
            raise UploadError(415, str(err)) from None
    try:
        im = Image.open(io.BytesIO(data), formats=formats)  # reads the header only
    except UnidentifiedImageError:
        raise UploadError(
            415,
            f"{name}: not a {_listed(accepted_formats())} image (the file's content was checked, "
            f"not its name).{_what_is_it(data)}",
        ) from None
    except Image.DecompressionBombError as err:
        raise UploadError(413, f"{name}: {err}. Downscale or crop the image.") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise UploadError(422, f"{name}: corrupt image header ({err}). Re-export it.") from None
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise UploadError(
                413,
                f"{name}: {width}x{height} px is {width * height / 1e6:.1f} megapixels; the limit "
                f"is {max_pixels / 1e6:.1f} megapixels. Downscale or crop the image.",
            )
        try:
            return pil_to_rgb(im)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise UploadError(
                422, f"{name}: corrupt or truncated {im.format} image ({err}). Re-export it."
            ) from None
