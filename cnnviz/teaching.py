"""Training made for a classroom: a teaching dataset that cnnviz draws itself, the small network
trained live on it, and transfer learning for a student's own few dozen pictures.

The generated dataset needs no download, so "Watch it learn" always works offline:
stripes, circles, crosses and checkerboards at random places, sizes and colours, with noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .data import Dataset, channel_stats
from .images import fit_to_input
from .model import Layer, Model, tiny_vgg
from .train import TrainConfig, Trainer

LIVE_CHANNELS = (8, 8, 16, 16)  # small enough to train at ~15 steps/s on one core, all maps still visible


# ---------------------------------------------------------------- the generated teaching dataset


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A foreground and a background colour that differ clearly in brightness (RGB, float)."""
    while True:
        fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        if abs(fg.mean() - bg.mean()) > 70:
            return fg.astype(np.float64), bg.astype(np.float64)


def _stripes(rng, y, x, axis: str) -> np.ndarray:
    period = rng.uniform(4, 9)
    t = (x if axis == "vertical" else y) + rng.uniform(0, period)
    return (t % period) < period * rng.uniform(0.35, 0.6)


def _circles(rng, y, x) -> np.ndarray:
    size = y.shape[0]
    mask = np.zeros(y.shape, bool)
    for _ in range(rng.integers(1, 4)):
        r = rng.uniform(0.12, 0.3) * size
        cy, cx = rng.uniform(r, size - r, 2)
        d = np.hypot(y - cy, x - cx)
        ring = rng.random() < 0.4
        mask |= (np.abs(d - r * 0.8) < max(1.2, r * 0.25)) if ring else d < r
    return mask


def _cross(rng, y, x) -> np.ndarray:
    size = y.shape[0]
    arm = rng.uniform(0.25, 0.45) * size
    half = rng.uniform(0.05, 0.1) * size
    cy, cx = rng.uniform(arm * 0.8, size - arm * 0.8, 2)
    if rng.random() < 0.5:  # upright plus
        u, v = y - cy, x - cx
    else:  # a diagonal x
        u, v = (y - cy + x - cx) / np.sqrt(2), (y - cy - x + cx) / np.sqrt(2)
    return ((np.abs(u) < half) & (np.abs(v) < arm)) | ((np.abs(v) < half) & (np.abs(u) < arm))


def _checkerboard(rng, y, x) -> np.ndarray:
    cell = rng.uniform(3, 8)
    oy, ox = rng.uniform(0, cell, 2)
    return (((y + oy) // cell + (x + ox) // cell) % 2).astype(bool)


DRAWERS = {
    "vertical stripes": lambda rng, y, x: _stripes(rng, y, x, "vertical"),
    "horizontal stripes": lambda rng, y, x: _stripes(rng, y, x, "horizontal"),
    "circles": _circles,
    "crosses": _cross,
    "checkerboards": _checkerboard,
}
CLASSES = tuple(DRAWERS)


def draw(kind: str, rng: np.random.Generator, size: int = 32, noise: float = 10.0) -> np.ndarray:
    """One picture of class `kind` (a key of DRAWERS): uint8 (size, size, 3)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    mask = DRAWERS[kind](rng, y, x)  # (size, size) bool
    fg, bg = _colours(rng)
    img = np.where(mask[..., None], fg, bg) + rng.normal(0, noise, (size, size, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def teaching_dataset(per_class: int = 400, classes=CLASSES, size: int = 32, seed: int = 0) -> Dataset:
    """`per_class` generated pictures of each class, shuffled; the same seed gives the same pictures.

    -> Dataset with images uint8 (K * per_class, size, size, 3).
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(classes)), per_class))  # (N,)
    images = np.stack([draw(classes[k], rng, size) for k in labels])
    return Dataset(images, labels.astype(np.int64), list(classes))


def subset(data: Dataset, n: int, seed: int = 0) -> Dataset:
    """At most `n` random pictures of `data` (in their original order)."""
    if len(data) <= n:
        return data
    keep = np.sort(np.random.default_rng(seed).choice(len(data), n, replace=False))
    return Dataset(data.images[keep], data.labels[keep], list(data.classes))


# ---------------------------------------------------------------- networks to train


def live_model(classes, data: Dataset, channels=LIVE_CHANNELS, seed: int = 0) -> Model:
    """A fresh Tiny-VGG for `data`'s pictures, normalised with their own channel statistics."""
    mean, std = channel_stats(data.images)
    std = [max(s, 1e-3) for s in std]  # a one-colour dataset must not divide by zero
    m = tiny_vgg(classes, channels, data.images.shape[1:3], seed=seed)
    return replace(m, preprocessing={"mean": mean, "std": std})


def transfer_model(classes, base: Model, seed: int = 0) -> Model:
    """`base` with its last dense layer replaced by a fresh one for `classes` (transfer learning).

    Every layer before that dense layer, with its trained weights, its input size and its
    preprocessing are kept, so the new network sees pictures exactly as `base` did.
    """
    last = max(i for i, la in enumerate(base.layers) if la.kind == "dense")
    n_in = base.layers[last].params["weight"].shape[1]
    rng = np.random.default_rng(seed)
    dense = Layer(base.layers[last].name, "dense",
                  {"weight": rng.standard_normal((len(classes), n_in)) * np.sqrt(1 / n_in),
                   "bias": np.zeros(len(classes))})
    layers = (*base.layers[:last], dense, *base.layers[last + 1:])
    meta = {"transfer_from": base.meta.get("dataset", "the shipped network")}
    return Model(layers, tuple(classes), base.input_size, dict(base.preprocessing), meta)


# ---------------------------------------------------------------- what a training run needs


@dataclass
class Plan:
    """One training run, ready to go: the trainer (holding the network), its pictures, the pictures
    kept aside to measure it, how many steps to run, and what to call the result."""

    trainer: Trainer
    train: Dataset
    test: Dataset | None
    steps: int
    label: str
    meta: dict


def plan_for(model: Model, train: Dataset, test: Dataset | None, config: TrainConfig, max_steps: int,
             label: str, meta: dict | None = None) -> Plan:
    """A Plan whose learning-rate schedule ends exactly when its steps do (at most `max_steps`)."""
    steps_per_pass = math.ceil(len(train) / config.batch_size)
    epochs = max(1, min(config.epochs, max_steps // steps_per_pass)) if max_steps >= steps_per_pass else 1
    steps = min(max_steps, epochs * steps_per_pass)
    config = replace(config, epochs=epochs, warmup_epochs=min(config.warmup_epochs, epochs / 4))
    # With fewer steps than one pass, squeeze the schedule into the steps actually run.
    trainer = Trainer(model, config, steps_per_epoch=min(steps_per_pass, steps))
    meta = {"train_images": len(train), "test_images": len(test) if test is not None else 0,
            "epochs": round(steps / steps_per_pass, 2), **(meta or {})}
    return Plan(trainer, train, test, steps, label, meta)


@dataclass(frozen=True)
class LiveConfig:
    """Watch it learn: a small network from scratch."""

    lr: float = 0.05
    batch_size: int = 32
    epochs: int = 4  # passes over the pictures (the step cap may end it sooner)
    channels: tuple = LIVE_CHANNELS
    seed: int = 0


def live_plan(train: Dataset, test: Dataset | None, config: LiveConfig, max_steps: int, dataset_name: str) -> Plan:
    model = live_model(train.classes, train, config.channels, config.seed)
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                               warmup_epochs=0.3, crop_padding=2, seed=config.seed)
    return plan_for(model, train, test, train_config, max_steps, f"trained live on {dataset_name}",
                    {"dataset": dataset_name, "live": True, "lr": config.lr})


@dataclass(frozen=True)
class TeachConfig:
    """Teach your own classes: a few dozen pictures, under a minute."""

    transfer: bool = True  # start from the shipped network's filters
    frozen: tuple = ("conv1_1", "conv1_2", "conv2_1")  # kept as shipped when transferring
    holdout: float = 0.2  # share of each class's pictures kept aside to measure the result
    lr_transfer: float = 0.01
    lr_scratch: float = 0.05
    batch_size: int = 16
    epochs: int = 40
    seed: int = 0


def split_holdout(pictures: list, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
    """pictures[k]: the (32, 32, 3) uint8 pictures of class k -> (train, held-out) Datasets.

    From each class, round(fraction * n) random pictures (at least 1 when n >= 2) are held out.
    Class names are 0..K-1 here; the caller knows the real names.
    """
    rng = np.random.default_rng(seed)
    kept, held = ([], []), ([], [])  # (pictures, labels) of each part
    for k, pics in enumerate(pictures):
        order = rng.permutation(len(pics))
        n_held = min(len(pics) - 1, max(1, round(fraction * len(pics)))) if len(pics) >= 2 else 0
        for j, i in enumerate(order):
            part = held if j < n_held else kept
            part[0].append(pics[i])
            part[1].append(k)
    names = [str(k) for k in range(len(pictures))]

    def dataset(part):
        images = np.stack(part[0]) if part[0] else np.zeros((0, 32, 32, 3), np.uint8)
        return Dataset(images, np.array(part[1], np.int64), names)

    return dataset(kept), dataset(held)


def teach_plan(classes: list, pictures: list, config: TeachConfig, base: Model | None, max_steps: int) -> Plan:
    """A Plan for a student's classes. pictures[k]: uint8 pictures of any size for classes[k].

    With `config.transfer` (and a `base`), the network starts from `base`'s filters with its
    first layers frozen and a fresh dense layer; otherwise a small network starts from scratch.
    """
    size = base.input_size if base is not None else (32, 32)
    small = [[fit_to_input(p, size) for p in pics] for pics in pictures]
    train, held = split_holdout(small, config.holdout, config.seed)
    train.classes = held.classes = list(classes)
    if config.transfer and base is not None:
        model, lr, frozen = transfer_model(classes, base, config.seed), config.lr_transfer, config.frozen
    else:
        model, lr, frozen = live_model(classes, train, seed=config.seed), config.lr_scratch, ()
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=lr, warmup_epochs=1.0,
                               crop_padding=2, seed=config.seed, frozen=tuple(frozen))
    meta = {"dataset": "your own pictures", "transfer": bool(config.transfer and base is not None),
            "frozen": list(frozen)}
    return plan_for(model, train, held, train_config, max_steps, "your classes: " + ", ".join(classes), meta)
