"""Labelled picture datasets, read from the two layouts people actually have.

- image folders: ROOT/train/<class>/*.jpg|png|... and ROOT/test/<class>/...
- the CIFAR-10 "python version": data_batch_1..5, test_batch, batches.meta
  (pickled dicts, as downloaded from the CIFAR-10 home page).

Both give a `Dataset`: uint8 pictures (N, H, W, 3), int labels (N,), class names.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DatasetError(ValueError):
    """A dataset folder that cannot be read, with the reason."""


@dataclass
class Dataset:
    """images uint8 (N, H, W, 3), labels int64 (N,), classes: names indexed by label."""

    images: np.ndarray
    labels: np.ndarray
    classes: list

    def __len__(self) -> int:
        return len(self.labels)


def load_dataset(root, split: str = "train", size=(32, 32), per_class: int | None = None, seed: int = 0) -> Dataset:
    """Read `split` ("train" or "test") of the dataset at `root`, whichever layout it has.

    `per_class` keeps at most that many pictures of each class, picked at random with `seed`
    (for image folders only those files are read, so a live-sized subset loads fast).
    """
    root = Path(root)
    if (root / "batches.meta").exists() or (root / "cifar-10-batches-py" / "batches.meta").exists():
        return load_cifar_batches(root, split, per_class, seed)
    return load_image_folder(root, split, size, per_class, seed)


def _keep(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most `per_class` random items of each label (all of them when None)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == k))[:per_class] for k in np.unique(labels)]
    return np.sort(np.concatenate(picks)) if picks else np.arange(0)


def load_image_folder(root, split: str = "train", size=(32, 32), per_class: int | None = None,
                      seed: int = 0) -> Dataset:
    """ROOT/split/<class>/<picture> -> Dataset, every picture centre-cropped and resized to `size`.

    Classes are the sub-folder names in sorted order, so labels are repeatable.
    `per_class`: read only that many random files of each class (see load_dataset).
    """
    from .images import fit_to_input

    base = Path(root) / split
    if not base.is_dir():
        raise DatasetError(f"no folder {base}")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{base} has no class folders")
    files = [(f, label) for label, name in enumerate(classes)
             for f in sorted((base / name).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    files = [files[i] for i in _keep(np.array([lab for _, lab in files], np.int64), per_class, seed)]
    images, labels = [], []
    for f, label in files:
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGB"))
        images.append(fit_to_input(a, size))
        labels.append(label)
    if not images:
        raise DatasetError(f"no pictures under {base}")
    return Dataset(np.stack(images), np.array(labels, np.int64), classes)


def load_cifar_batches(root, split: str = "train", per_class: int | None = None, seed: int = 0) -> Dataset:
    """The CIFAR-10 python batches -> Dataset (32x32). Accepts ROOT or ROOT/cifar-10-batches-py.

    These files are pickles by design of the official format, so only open
    copies you downloaded yourself from the official page.
    """
    root = Path(root)
    if not (root / "batches.meta").exists():
        root = root / "cifar-10-batches-py"
    names = sorted(root.glob("data_batch_*")) if split == "train" else [root / "test_batch"]
    if not names or not all(n.exists() for n in names):
        raise DatasetError(f"no CIFAR-10 {split} batches in {root}")
    meta = _unpickle(root / "batches.meta")
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta[b"label_names"]]
    images, labels = [], []
    for n in names:
        d = _unpickle(n)
        x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32)  # R, G, B planes
        images.append(x.transpose(0, 2, 3, 1))  # (N, 32, 32, 3)
        labels.append(np.asarray(d[b"labels"], np.int64))
    labels = np.concatenate(labels)
    keep = _keep(labels, per_class, seed)
    return Dataset(np.concatenate(images)[keep], labels[keep], classes)


def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def channel_stats(images: np.ndarray) -> tuple[list, list]:
    """Per-channel mean and standard deviation of uint8 pictures (N, H, W, 3), on the 0..1 scale."""
    x = images.reshape(-1, 3).astype(np.float64) / 255.0
    return x.mean(axis=0).round(4).tolist(), x.std(axis=0).round(4).tolist()
