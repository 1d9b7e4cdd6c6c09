"""Image reshapes as einops one-liners: tiling a photo into patches and back, grayscale,
2x mean downsizing and side-by-side mosaics (used by reports and explain).

Images are channels-last, `(H, W, C)` or `(H, W)`, as numpy arrays or torch tensors; the einops
pattern in each function is its documentation. Any leading batch axes are not supported except
where a docstring says so: pass one image at a time.
"""

from __future__ import annotations

import numpy as np
from einops import einsum, rearrange, reduce, repeat

# ITU-R BT.601 luma weights (the ones PIL, OpenCV and JPEG use): Y = 0.299 R + 0.587 G + 0.114 B.
LUMA_601 = (0.299, 0.587, 0.114)


def _is_integer(x) -> bool:
    """True for integer numpy arrays and torch tensors (uint8 photos)."""
    dtype = x.dtype
    if isinstance(x, np.ndarray):
        return np.issubdtype(dtype, np.integer)
    return not (dtype.is_floating_point or dtype.is_complex)


def _to_float(x):
    """A float32 copy for arithmetic that must not wrap or truncate."""
    return x.astype(np.float32) if isinstance(x, np.ndarray) else x.float()


def _like(result, original):
    """Cast a float result back to `original`'s dtype, rounding (and clipping) for integer types."""
    if not _is_integer(original):
        return result.astype(original.dtype) if isinstance(result, np.ndarray) else result
    if isinstance(result, np.ndarray):
        info = np.iinfo(original.dtype)
        return np.clip(np.rint(result), info.min, info.max).astype(original.dtype)
    return result.round().to(original.dtype)


def tile(image, tile_h: int, tile_w: int):
    """Cut an image into tiles, row by row: (H, W, ...) -> (p1*p2, tile_h, tile_w, ...).

    H and W must be multiples of the tile size (pad or crop first);
    `untile(tiles, p1=H // tile_h, p2=W // tile_w)` puts them back.
    """
    height, width = image.shape[:2]
    if tile_h <= 0 or tile_w <= 0:
        raise ValueError(f"tile size must be positive, got {tile_h}x{tile_w}")
    if height % tile_h or width % tile_w:
        raise ValueError(
            f"image of {height}x{width} px does not split into {tile_h}x{tile_w} tiles; "
            f"pad it to a multiple of the tile size first"
        )
    return rearrange(image, "(p1 h) (p2 w) ... -> (p1 p2) h w ...", h=tile_h, w=tile_w)


def untile(tiles, p1: int, p2: int):
    """Reassemble row-major tiles into one image: (p1*p2, h, w, ...) -> (p1*h, p2*w, ...)."""
    if tiles.shape[0] != p1 * p2:
        raise ValueError(f"got {tiles.shape[0]} tiles, expected p1*p2 = {p1}*{p2} = {p1 * p2}")
    return rearrange(tiles, "(p1 p2) h w ... -> (p1 h) (p2 w) ...", p1=p1, p2=p2)


def to_grayscale(image):
    """RGB to luma with the ITU-R BT.601 weights: (..., 3) -> (...).

    A 2-D image is returned as is and a single-channel (H, W, 1) one loses its channel axis.

    Keeps the input dtype (integer results are rounded), so a uint8 photo stays uint8 0..255.
    Leading batch axes are allowed here.
    """
    if image.ndim == 2:
        return image
    if image.shape[-1] == 1:
        return image[..., 0]
    if image.shape[-1] != 3:
        raise ValueError(f"to_grayscale expects RGB with 3 channels last, got shape {image.shape}")
    x = _to_float(image)
    weights = np.asarray(LUMA_601, dtype=np.float32)
    if not isinstance(x, np.ndarray):
        import torch

        weights = torch.as_tensor(weights, device=x.device)
    return _like(einsum(x, weights, "... c, c -> ..."), image)


def downsize2x(image):
    """Halve height and width by averaging each 2x2 block: (H, W, ...) -> (H//2, W//2, ...).

    An odd last row or column has no partner and is dropped. Keeps the input dtype (integers are
    rounded to nearest).
    """
    height, width = image.shape[:2]
    if height < 2 or width < 2:
        raise ValueError(f"downsize2x needs at least 2x2 px, got {height}x{width}")
    even = image[: height - height % 2, : width - width % 2]
    return _like(reduce(_to_float(even), "(h 2) (w 2) ... -> h w ...", "mean"), image)


def mosaic(images: list, cols: int, *, fill: int = 0) -> np.ndarray:
    """Lay numpy images out side by side in a grid of `cols` columns, row by row.

    Images may differ in size: each sits top-left in a cell of the largest height and width, the
    rest of the cell (and any empty cell in the last row) is `fill`. Grayscale images are repeated
    to RGB when any image is RGB. All images must share a dtype.
    Returns (rows*Hmax, cols*Wmax[, C]).
    """
    if not images:
        raise ValueError("mosaic needs at least one image")
    if cols <= 0:
        raise ValueError(f"cols must be positive, got {cols}")
    images = [np.asarray(im) for im in images]
    dtypes = {im.dtype for im in images}
    if len(dtypes) > 1:
        raise ValueError(f"mosaic images must share one dtype, got {sorted(map(str, dtypes))}")
    if any(im.ndim not in (2, 3) for im in images):
        raise ValueError("mosaic images must be (H, W) or (H, W, C)")
    channels = {im.shape[2] for im in images if im.ndim == 3}
    if len(channels) > 1:
        raise ValueError(f"mosaic images must share a channel count, got {sorted(channels)}")
    if channels:
        c = channels.pop()
        images = [repeat(im, "h w -> h w c", c=c) if im.ndim == 2 else im for im in images]
    cell_h = max(im.shape[0] for im in images)
    cell_w = max(im.shape[1] for im in images)
    rows = -(-len(images) // cols)
    cells = np.full((rows * cols, cell_h, cell_w, *images[0].shape[2:]), fill, images[0].dtype)
    for cell, im in zip(cells, images, strict=False):
        cell[: im.shape[0], : im.shape[1]] = im
    return rearrange(cells, "(r c) h w ... -> (r h) (c w) ...", c=cols)
