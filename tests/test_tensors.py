"""The shared image -> tensor rule (crackseg.tensors)."""

import warnings

import numpy as np
import pytest

from crackseg.tensors import image_to_tensor


def test_image_to_tensor_scales_to_unit_range_and_accepts_read_only_arrays():
    image = np.zeros((4, 5, 3), np.uint8)
    image[1, 2] = (255, 0, 51)
    image.flags.writeable = False  # e.g. np.asarray of a PIL image
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's read-only warning would fail here
        x = image_to_tensor(image)
    assert x.shape == (1, 3, 4, 5)
    assert x[0, :, 1, 2].tolist() == pytest.approx([1.0, 0.0, 0.2])
