"""Hand-made 3x3 kernels that teachers use to explain what a filter looks for."""

from __future__ import annotations

import numpy as np

PRESETS: dict[str, np.ndarray] = {
    # Bright on the left, dark on the right gives a big value: a vertical line or edge.
    "Vertical edge": np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], np.float32),
    "Horizontal edge": np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], np.float32),
    "Sobel x": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32),
    "Sobel y": np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32),
    "Diagonal edge": np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]], np.float32),
    "Outline (Laplacian)": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32),
    "Blur": np.full((3, 3), 1 / 9, np.float32),
    "Sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32),
    "Identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32),
}


KERNEL_LIMIT = 100.0  # edited kernel numbers are clipped to +-this, so nothing huge reaches the network


def clean_kernel(values) -> tuple[np.ndarray, list[str]]:
    """Whatever a student typed into a 3x3 grid -> a finite float32 (3, 3) kernel, plus notes on what was fixed.

    Empty cells, text and NaN become 0; infinities and huge numbers are clipped to +-KERNEL_LIMIT.
    """
    notes = []
    raw = np.asarray(values, dtype=object).reshape(-1)
    out = np.zeros(raw.shape, np.float64)
    bad = 0
    for k, v in enumerate(raw):
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = np.nan
        if np.isnan(f):
            bad += 1
            f = 0.0
        out[k] = f
    if bad:
        notes.append(f"{bad} empty or non-number cell(s) were read as 0.")
    if np.any(np.abs(out) > KERNEL_LIMIT):
        notes.append(f"Numbers beyond ±{KERNEL_LIMIT:g} were clipped to ±{KERNEL_LIMIT:g}.")
        out = np.clip(out, -KERNEL_LIMIT, KERNEL_LIMIT)
    return out.reshape(np.shape(values) if np.ndim(values) else (1,)).astype(np.float32), notes
