"""Labelled picture datasets, read from the two layouts people actually have.

- image folders: ROOT/train/<class>/*.jpg|png|... and ROOT/test/<class>/...
- the CIFAR-10 "python version": data_batch_1..5, test_batch, batches.meta
  (pickled dicts, as downloaded from the CIFAR-10 home page).

Both give a `Dataset`: uint8 pictures (N, H, W, 3), int labels (N,), class names.

Folder pictures are read exactly as the app reads an upload (`images.load_image`: EXIF rotation
applied, transparency on white), so the network trains on what it will be shown. Decoding tens of
thousands of files takes a while, so with a `cache_dir` the decoded arrays are kept in one file
there, found again by the folder's file names, sizes and modification times (any change: a new
cache file). The dataset folder itself is never written to (it may be read-only or shared).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
CACHE_FORMAT = 1  # bump when the decoding changes, so old cache files are never used
CACHE_SUFFIX = ".cnnviz-cache.npz"


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


def load_dataset(root, split: str = "train", size=(32, 32), per_class: int | None = None, seed: int = 0,
                 cache_dir=None) -> Dataset:
    """Read `split` ("train" or "test") of the dataset at `root`, whichever layout it has.

    `per_class` keeps at most that many pictures of each class, picked at random with `seed`
    (for image folders only those files are read, so a live-sized subset loads fast).
    `cache_dir`: keep an image folder's decoded pictures there (see load_image_folder).
    """
    root = Path(root)
    if (root / "batches.meta").exists() or (root / "cifar-10-batches-py" / "batches.meta").exists():
        return load_cifar_batches(root, split, per_class, seed)  # already decoded arrays: nothing to cache
    return load_image_folder(root, split, size, per_class, seed, cache_dir)


def default_cache_dir() -> Path:
    """$CNNVIZ_CACHE_DIR if set, else $XDG_CACHE_HOME/cnnviz, else ~/.cache/cnnviz."""
    if os.environ.get("CNNVIZ_CACHE_DIR"):
        return Path(os.environ["CNNVIZ_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cnnviz"


def _keep(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most `per_class` random items of each label (all of them when None)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == k))[:per_class] for k in np.unique(labels)]
    return np.sort(np.concatenate(picks)) if picks else np.arange(0)


def load_image_folder(root, split: str = "train", size=(32, 32), per_class: int | None = None,
                      seed: int = 0, cache_dir=None) -> Dataset:
    """ROOT/split/<class>/<picture> -> Dataset, every picture centre-cropped and resized to `size`.

    Classes are the sub-folder names in sorted order, so labels are repeatable.
    `per_class`: read only that many random files of each class (see load_dataset).
    Each picture is read by `images.load_image`, as the app reads uploads. A file with a picture's
    suffix that is not a readable picture stops the reading with a DatasetError naming it (fix
    or remove the file; nothing is skipped silently).
    `cache_dir`: keep the decoded pictures in a file there and use it while the folder is unchanged.
    """
    from .images import ImageError, fit_to_input, load_image

    base = Path(root) / split
    if not base.is_dir():
        raise DatasetError(f"no folder {base}")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"{base} has no class folders")
    files = [(entry, label) for label, name in enumerate(classes)
             for entry in sorted(os.scandir(base / name), key=lambda e: e.name)
             if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file()]
    cache = _cache_file(cache_dir, base, classes, files, size, per_class, seed) if cache_dir is not None else None
    cached = _read_cache(cache, classes, size) if cache is not None else None
    if cached is not None:
        return cached
    files = [files[i] for i in _keep(np.array([lab for _, lab in files], np.int64), per_class, seed)]
    images, labels = [], []
    for entry, label in files:
        try:
            a = load_image(entry.path)
        except ImageError as e:
            raise DatasetError(f"cannot read {entry.path}: {e}") from e
        images.append(fit_to_input(a, size))
        labels.append(label)
    if not images:
        raise DatasetError(f"no pictures under {base}")
    data = Dataset(np.stack(images), np.array(labels, np.int64), classes)
    if cache is not None:
        _write_cache(cache, data)
    return data


# ---------------------------------------------------------------- the cache of decoded pictures


def _cache_file(cache_dir, base: Path, classes, files, size, per_class, seed) -> Path:
    """The cache file for these pictures: named after the folder and the reading settings, then a key
    made of every file's name, size and modification time. -> DIR/<folder>-<split>-<HxW>-<settings>-<key>"""
    what = hashlib.sha256(json.dumps([CACHE_FORMAT, str(base.resolve()), list(size), per_class, seed]).encode())
    key = hashlib.sha256()
    for entry, label in files:
        st = entry.stat()
        key.update(f"{classes[label]}/{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    name = f"{base.parent.name or 'data'}-{base.name}-{size[0]}x{size[1]}-{what.hexdigest()[:8]}-{key.hexdigest()[:16]}"
    return Path(cache_dir).expanduser() / (name + CACHE_SUFFIX)


def _read_cache(path: Path, classes: list, size) -> Dataset | None:
    """The Dataset in the cache file, or None if there is none or it is unreadable (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels, names = z["images"], z["labels"], [str(c) for c in z["classes"]]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if names != classes or images.dtype != np.uint8 or images.shape[1:] != (*size, 3) \
            or labels.shape != images.shape[:1]:
        return None
    return Dataset(images, labels.astype(np.int64), classes)


def _write_cache(path: Path, data: Dataset) -> None:
    """Write the cache file atomically (a reader never sees half of one); skip quietly if the folder is not writable."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, images=data.images, labels=data.labels, classes=np.array(data.classes))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return
    settings = path.name[:-len(CACHE_SUFFIX) - 16]  # everything but the key
    for old in path.parent.iterdir():  # the same folder and settings before the folder changed
        if old.name.startswith(settings) and old.name.endswith(CACHE_SUFFIX) and old != path:
            with contextlib.suppress(OSError):
                old.unlink(missing_ok=True)


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
    total, squares, n = np.zeros(3), np.zeros(3), 0
    for i in range(0, len(images), 1000):  # a thousand at a time: CIFAR-10 whole would be 1.2 GB of floats
        x = images[i:i + 1000].reshape(-1, 3).astype(np.float64)  # whole numbers: the sums are exact
        ones = np.ones(len(x))
        # ones @ x, not x.sum(axis=0): a matrix product is over ten times faster for three columns
        total, squares, n = total + ones @ x, squares + ones @ (x * x), n + len(x)
    mean = total / max(1, n)
    std = np.sqrt(np.maximum(squares / max(1, n) - mean * mean, 0))
    return (mean / 255).round(4).tolist(), (std / 255).round(4).tolist()
