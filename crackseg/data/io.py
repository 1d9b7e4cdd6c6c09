"""Reading images and masks: one place turning any file users bring into arrays, or a clear error.

Mask values -> {0 background, 1 crack, 255 ignore}; the rules, in order (first match wins):

1. 1-bit images: set bits are crack.
2. Grey or palette values (palette masks use their indices) in {0, 1}: 1 is crack.
3. Exactly one non-zero value ({0, 255} from most tools, {0, 38} ...): that value is crack.
4. Values in {0, 1, 255} with both 1 and 255 present: 1 is crack, 255 is ignore (MMSeg/VOC style).
5. Small class indices (max <= 16, several classes): every non-zero class is crack (noted).
6. Anything else (anti-aliased or JPEG-saved masks): crack where value >= half the range (>= 128
   for 8-bit), and the mask is reported as not binary (an error with strict=True).
RGB masks with equal channels follow the grey rules; coloured masks are crack where the colour is
not black: two colours (black + one) silently, otherwise by max channel >= 128 (reported).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crackseg.conventions import IGNORE_INDEX
from crackseg.errors import CrackSegError

HEIF_EXTS = (".heic", ".heif")  # phone cameras (iPhone); read with the 'heic' extra (pillow-heif)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".avif", *HEIF_EXTS)
MASK_EXTS = (".png", ".bmp", ".tif", ".tiff", ".gif", ".jpg", ".jpeg")
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"heif", b"mif1", b"msf1")
_EXIF_ORIENTATION = 0x0112


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def is_heif(header: bytes) -> bool:
    """Whether a file's first 12 bytes are those of a HEIC/HEIF photo (an ISO-BMFF `ftyp` box)."""
    return header[4:8] == b"ftyp" and header[8:12] in HEIF_BRANDS


def heif_available() -> bool:
    """Whether the 'heic' extra (pillow-heif) is installed."""
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        return False
    return True


def enable_heif(path: str | Path) -> None:
    """Let Pillow open HEIC/HEIF photos (pillow-heif, the 'heic' extra), or a CrackSegError that
    names `path` and says how to read it. Registering twice is harmless."""
    if not heif_available():
        raise CrackSegError(
            f"{path}: a HEIC/HEIF photo (the iPhone camera's format); reading it needs the 'heic' "
            "extra: pip install 'crackseg[heic]', or export it as JPEG"
        )
    import pillow_heif

    pillow_heif.register_heif_opener()


def _enable_heif_if_named(path: str | Path) -> None:
    """`enable_heif` for a file named .heic/.heif (others are sniffed only when Pillow fails)."""
    if Path(path).suffix.lower() in HEIF_EXTS:
        enable_heif(path)


def _looks_heif(path: Path) -> bool:
    """Whether the file starts as a HEIC/HEIF photo does (False when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return is_heif(f.read(12))
    except OSError:
        return False


def _open(path: Path, what: str, *, heif: bool = False) -> Image.Image:
    """Open with Pillow, turning every failure into a CrackSegError that names the file. HEIC/HEIF
    photos (by name, or by content under another name) go through `enable_heif` first."""
    if heif:
        enable_heif(path)
    _enable_heif_if_named(path)
    try:
        im = Image.open(path)
        im.load()  # decode now: truncated files fail here, not later in a worker
        return im
    except FileNotFoundError:
        raise CrackSegError(f"{path}: {what} not found. Check the path.") from None
    except IsADirectoryError:
        raise CrackSegError(
            f"{path}: is a folder, not a file ({what} expected). Rename it or move it out of the inputs."
        ) from None
    except PermissionError as err:
        raise CrackSegError(
            f"{path}: cannot read {what} ({err.strerror}). Fix its permissions."
        ) from None
    except UnidentifiedImageError:
        if not heif and path.suffix.lower() not in HEIF_EXTS and _looks_heif(path):
            return _open(path, what, heif=True)  # a HEIC photo under another name (x.jpg)
        raise CrackSegError(
            f"{path}: not a readable {what} (corrupt or unknown format). Re-export or remove it."
        ) from None
    except Image.DecompressionBombError as err:
        raise CrackSegError(
            f"{path}: {what} too large to decode safely ({err}). Downscale or remove it."
        ) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise CrackSegError(
            f"{path}: corrupt or truncated {what} ({err}). Re-export or remove it."
        ) from None


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3), EXIF orientation applied (as labelling tools do)."""
    path = Path(path)
    with _open(path, "image") as im:
        return pil_to_rgb(im)


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """A Pillow image as uint8 RGB (H, W, 3): EXIF orientation applied, 16-bit grey rescaled."""
    if im.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)  # (H, W)
        top = 65535.0 if arr.max() > 255 else 255.0
        grey = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation tag of an image file (1 = as stored; 5-8 swap width and height)."""
    _enable_heif_if_named(path)
    try:
        with Image.open(path) as im:
            return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError):
        return 1


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) from the file header only (no decoding), after EXIF orientation."""
    path = Path(path)
    _enable_heif_if_named(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                w, h = h, w
            return h, w
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise CrackSegError(
            f"{path}: not a readable image ({err}). Re-export or remove it."
        ) from None
    except Image.DecompressionBombError as err:
        raise CrackSegError(
            f"{path}: image too large to decode safely ({err}). Downscale or remove it."
        ) from None


def mask_from_array(arr: np.ndarray, *, bits: int = 8) -> tuple[np.ndarray, str | None]:
    """Apply the module's value rules: (H, W) or (H, W, C) -> (uint8 (H, W) mask, note or None)."""
    if arr.ndim == 3:
        arr = arr[:, :, :3]
        if arr.shape[2] == 1 or (
            np.array_equal(arr[:, :, 0], arr[:, :, 1])
            and np.array_equal(arr[:, :, 0], arr[:, :, 2])
        ):
            arr = arr[:, :, 0]
        else:
            return _colour_mask(arr)
    values = np.unique(arr)
    nonzero = values[values != 0]
    out = np.zeros(arr.shape, np.uint8)
    if len(nonzero) == 0:
        return out, None
    if len(nonzero) == 1:
        out[arr == nonzero[0]] = 1
        return out, None
    if set(nonzero.tolist()) == {1, IGNORE_INDEX}:
        out[arr == 1] = 1
        out[arr == IGNORE_INDEX] = IGNORE_INDEX
        return out, None
    if nonzero.max() <= 16:
        out[arr != 0] = 1
        return out, f"class-index mask with values {values.tolist()}: every non-zero class is crack"
    threshold = 2 ** (bits - 1)
    out[arr >= threshold] = 1
    return out, f"mask is not binary ({len(values)} distinct values): thresholded at >= {threshold}"


def _colour_mask(arr: np.ndarray) -> tuple[np.ndarray, str | None]:
    colours = np.unique(arr.reshape(-1, arr.shape[2]), axis=0)
    black = (colours == 0).all(axis=1)
    if len(colours) == 2 and black.any():
        return (arr.max(axis=2) > 0).astype(np.uint8), None
    note = f"colour mask with {len(colours)} colours: crack where the brightest channel >= 128"
    return (arr.max(axis=2) >= 128).astype(np.uint8), note


def read_mask_checked(path: str | Path) -> tuple[np.ndarray, str | None]:
    """A mask file as uint8 (H, W) in {0, 1, 255} plus a note when a conversion rule was needed."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return _read_mat_mask(path), None
    with _open(path, "mask") as im:
        if im.mode == "1":
            return np.asarray(im, dtype=np.uint8), None
        if im.mode == "P":
            return mask_from_array(np.asarray(im))
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(im)
            return mask_from_array(arr, bits=16 if arr.max() > 255 else 8)
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        return mask_from_array(np.asarray(im))


def read_mask(path: str | Path, *, strict: bool = False) -> np.ndarray:
    """A mask file as uint8 (H, W) in {0, 1, 255}; strict=True: a non-binary mask is an error."""
    mask, note = read_mask_checked(path)
    if note and strict:
        raise CrackSegError(f"{path}: {note}. Save masks as {{0, 255}} or {{0, 1}} PNG.")
    return mask


def read_mask_values(path: str | Path) -> np.ndarray:
    """The raw (H, W) values of a class-index mask (palette indices, grey levels), as stored."""
    with _open(Path(path), "mask") as im:
        return np.asarray(im if im.mode in ("L", "P", "I", "I;16") else im.convert("L"))


def mask_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of a mask file from its header (.mat masks are read whole)."""
    if Path(path).suffix.lower() == ".mat":
        return _read_mat_mask(Path(path)).shape
    return image_size(path)


def _read_mat_mask(path: Path) -> np.ndarray:
    """CrackForest ground truth: groundTruth.Segmentation with 1 = background, 2 = crack."""
    from scipy.io import loadmat

    try:
        gt = loadmat(path, squeeze_me=True, struct_as_record=False)["groundTruth"]
        while isinstance(gt, np.ndarray) and gt.dtype == object and gt.size == 1:
            gt = gt.item()  # a struct inside a 1x1 cell
        seg = np.asarray(gt.Segmentation)
        if seg.ndim != 2:
            raise ValueError(f"Segmentation has shape {seg.shape}")
    except Exception as err:  # scipy raises many types for bad .mat files
        raise CrackSegError(
            f"{path}: not a CrackForest-style .mat mask ({err}). Convert masks to PNG."
        ) from None
    return (seg >= 2).astype(np.uint8)
