"""Turning pictures into the arrays a model sees."""

from __future__ import annotations

import numpy as np
from PIL import Image


def fit_to_input(image: np.ndarray, size) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (h, w, 3): centre-crop to the aspect of `size`, then resize.

    Shrinking uses PIL's area-averaging (BOX) filter, which keeps small details
    fair; enlarging uses bicubic.
    """
    h, w = size
    H, W = image.shape[:2]
    if (H, W) == (h, w):
        return image
    if W * h > H * w:  # too wide: crop the sides
        cw = max(1, round(H * w / h))
        x0 = (W - cw) // 2
        image = image[:, x0:x0 + cw]
    else:  # too tall: crop top and bottom
        ch = max(1, round(W * h / w))
        y0 = (H - ch) // 2
        image = image[y0:y0 + ch]
    shrinking = image.shape[0] >= h and image.shape[1] >= w
    pil = Image.fromarray(np.ascontiguousarray(image))
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
    return np.asarray(pil.resize((w, h), resample))
