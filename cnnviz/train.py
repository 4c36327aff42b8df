"""The NumPy trainer: mini-batch SGD with momentum and weight decay, random crops and flips,
a warm-up then cosine learning-rate schedule, checkpoints every epoch and resume.

    python -m cnnviz.train --data DIR --out FILE.npz [--epochs 30 --batch-size 128 --lr 0.05
                           --seed 0 --resume]

In code: `Trainer(model, config)` then `train_steps(trainer, data, steps, callback, should_stop)`
trains for a number of steps, reports progress through `callback` and stops
cleanly as soon as `should_stop()` is true; `fit` runs whole epochs with
checkpoints, as the command line does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import layers as L
from .data import Dataset, channel_stats, load_dataset
from .model import Layer, Model, forward, save_model, tiny_vgg


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05  # peak learning rate, reached after the warm-up
    momentum: float = 0.9
    weight_decay: float = 5e-4  # on weights, not biases
    warmup_epochs: float = 1.0
    crop_padding: int = 4  # random crops of the picture padded by this many pixels (0: off)
    flip: bool = True  # random horizontal flips
    seed: int = 0
    frozen: tuple = ()  # names of layers whose parameters stay as given (transfer learning)


@dataclass
class Progress:
    """What a callback hears after each step."""

    step: int
    total_steps: int
    epoch: float
    loss: float
    accuracy: float
    lr: float
    images_per_s: float
    history: list = field(default_factory=list)


class Trainer:
    """Holds the weights being trained (mutable copies), the momentum buffers and the step count."""

    def __init__(self, model: Model, config: TrainConfig, steps_per_epoch: int = 1):
        self.base = model
        self.config = config
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.step = 0
        self.params = {la.name: {k: np.array(v, np.float32) for k, v in la.params.items()}
                       for la in model.layers if la.params}
        unknown = set(config.frozen) - set(self.params)
        if unknown:
            raise ValueError(f"cannot freeze {sorted(unknown)}: no layer with parameters has that name")
        self.velocity = {n: {k: np.zeros_like(v) for k, v in p.items()} for n, p in self.params.items()}
        self.rng = np.random.default_rng(config.seed)
        self.history: list[dict] = []

    # -- the schedule
    def lr_at(self, step: int) -> float:
        """Linear warm-up to config.lr, then a cosine decay to zero at the last step."""
        c = self.config
        warm = max(1, int(c.warmup_epochs * self.steps_per_epoch))
        if step < warm:
            return c.lr * (step + 1) / warm
        t = (step - warm) / max(1, self.total_steps - warm)
        return c.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    # -- one step
    def train_step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """One SGD step on a batch x (N, 3, h, w) float32, y (N,) -> (loss, accuracy) before the step."""
        logits, caches = self._forward(x)
        loss = L.cross_entropy(logits, y)
        acc = float(np.mean(logits.argmax(1) == y))
        grads = self._backward(L.cross_entropy_backward(logits, y), caches)
        self._update(grads, self.lr_at(self.step))
        self.step += 1
        return loss, acc

    def _forward(self, x):
        caches = []
        for la in self.base.layers:
            p, o = self.params.get(la.name), la.options
            if la.kind == "conv":
                y, cols = L.conv2d_forward(x, p["weight"], p["bias"], o.get("stride", 1), o.get("padding", 0))
                caches.append((x.shape, cols))
            elif la.kind == "dense":
                y = L.dense(x, p["weight"], p["bias"])
                caches.append(x)
            elif la.kind == "softmax":
                break  # the loss takes the logits
            elif la.kind in ("tanh", "sigmoid"):
                y = la(x)
                caches.append(y)
            elif la.kind in ("relu", "maxpool"):
                y = la(x)
                caches.append(x)
            else:  # flatten, avgpool
                y = la(x)
                caches.append(x.shape)
            x = y
        return x, caches

    def _backward(self, dy, caches):
        grads = {}
        layers = [la for la in self.base.layers if la.kind != "softmax"]
        frozen = set(self.config.frozen)
        # Below the lowest layer that learns, no gradient is needed: stop there (frozen early
        # layers then cost only their forward pass).
        lowest = next((i for i, la in enumerate(layers) if la.params and la.name not in frozen), len(layers))
        for i in reversed(range(lowest, len(layers))):
            la, cache, o = layers[i], caches[i], layers[i].options
            if la.kind == "conv" and i == lowest:  # nothing below needs dx (the picture, or frozen layers)
                dw, db = L.conv2d_backward_weights(dy, self.params[la.name]["weight"], cache[1])
                grads[la.name] = {"weight": dw, "bias": db}
            elif la.kind == "conv":
                shape, cols = cache
                w = self.params[la.name]["weight"]
                dy, dw, db = L.conv2d_backward(dy, shape, w, cols, o.get("stride", 1), o.get("padding", 0))
                grads[la.name] = {"weight": dw, "bias": db}
            elif la.kind == "dense":
                dy, dw, db = L.dense_backward(dy, cache, self.params[la.name]["weight"])
                grads[la.name] = {"weight": dw, "bias": db}
            elif la.kind == "relu":
                dy = L.relu_backward(dy, cache)
            elif la.kind == "tanh":
                dy = L.tanh_backward(dy, cache)
            elif la.kind == "sigmoid":
                dy = L.sigmoid_backward(dy, cache)
            elif la.kind == "maxpool":
                dy = L.max_pool2d_backward(dy, cache, o.get("size", 2), o.get("stride"))
            elif la.kind == "avgpool":
                dy = L.avg_pool2d_backward(dy, cache, o.get("size", 2), o.get("stride"))
            elif la.kind == "flatten":
                dy = dy.reshape(cache)
        return {name: g for name, g in grads.items() if name not in frozen}

    def _update(self, grads, lr):
        c = self.config
        for name, g in grads.items():
            for k, dw in g.items():
                w, v = self.params[name][k], self.velocity[name][k]
                if k == "weight" and c.weight_decay:
                    dw = dw + c.weight_decay * w
                v *= c.momentum
                v += dw
                w -= lr * v

    # -- results
    def model(self, meta: dict | None = None) -> Model:
        """The weights so far as a (new, read-only) Model."""
        layers = tuple(Layer(la.name, la.kind, self.params.get(la.name, {}), la.options)
                       for la in self.base.layers)
        return Model(layers, self.base.classes, self.base.input_size, self.base.preprocessing,
                     {**self.base.meta, **(meta or {})})

    # -- checkpoints
    def save_checkpoint(self, path) -> None:
        arrays = {f"p/{n}/{k}": v for n, p in self.params.items() for k, v in p.items()}
        arrays |= {f"v/{n}/{k}": v for n, p in self.velocity.items() for k, v in p.items()}
        state = {"step": self.step, "rng": self.rng.bit_generator.state, "history": self.history,
                 "config": asdict(self.config)}
        arrays["state"] = np.array(json.dumps(state))
        tmp = Path(str(path) + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)  # a crash mid-write never leaves a half checkpoint

    def load_checkpoint(self, path) -> None:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(str(z["state"]))
            for n, p in self.params.items():
                for k in p:
                    p[k][...] = z[f"p/{n}/{k}"]
                    self.velocity[n][k][...] = z[f"v/{n}/{k}"]
        self.step = state["step"]
        self.rng.bit_generator.state = state["rng"]
        self.history = state["history"]


# ---------------------------------------------------------------- data feeding


def augment(images: np.ndarray, rng: np.random.Generator, padding: int, flip: bool) -> np.ndarray:
    """Random crops (after reflect-padding) and horizontal flips. uint8 (N, H, W, 3) -> same shape."""
    N, H, W, _ = images.shape
    if padding:
        p = padding
        padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
        oy = rng.integers(0, 2 * p + 1, N)
        ox = rng.integers(0, 2 * p + 1, N)
        rows = oy[:, None] + np.arange(H)  # (N, H)
        cols = ox[:, None] + np.arange(W)  # (N, W)
        images = padded[np.arange(N)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if flip:
        f = rng.random(N) < 0.5
        images = images.copy() if not padding else images
        images[f] = images[f, :, ::-1]
    return images


def train_steps(trainer: Trainer, data: Dataset, steps: int, callback=None, should_stop=None) -> int:
    """Train for up to `steps` mini-batches; returns how many ran.

    Batches are drawn without replacement within each pass over `data`.
    `callback(Progress)` runs after every step; `should_stop()` is checked
    before every step, so a Stop button takes effect within one step.
    """
    c, model = trainer.config, trainer.base
    n = len(data)
    t0, done = time.perf_counter(), 0
    seen = loss_sum = acc_sum = 0.0
    order = np.empty(0, np.int64)
    pos = 0
    while done < steps and trainer.step < trainer.total_steps:
        if should_stop is not None and should_stop():
            break
        if pos + c.batch_size > len(order):
            order, pos = trainer.rng.permutation(n), 0
        idx = order[pos:pos + min(c.batch_size, n)]
        pos += len(idx)
        xb = augment(data.images[idx], trainer.rng, c.crop_padding, c.flip)
        loss, acc = trainer.train_step(model.normalize(xb), data.labels[idx])
        done += 1
        seen += len(idx)
        loss_sum += loss * len(idx)
        acc_sum += acc * len(idx)
        if callback is not None:
            callback(Progress(trainer.step, trainer.total_steps, trainer.step / trainer.steps_per_epoch,
                              loss_sum / seen, acc_sum / seen, trainer.lr_at(trainer.step - 1),
                              seen / (time.perf_counter() - t0), trainer.history))
    return done


def evaluate(model: Model, data: Dataset, batch_size: int = 500) -> float:
    """Fraction of `data` whose most probable class is the true label."""
    correct = 0
    for i in range(0, len(data), batch_size):
        p = forward(model, model.normalize(data.images[i:i + batch_size]))
        correct += int(np.sum(p.argmax(1) == data.labels[i:i + batch_size]))
    return correct / max(1, len(data))


# ---------------------------------------------------------------- whole runs


def fit(trainer: Trainer, train: Dataset, test: Dataset | None, checkpoint=None, log=print) -> Trainer:
    """Run the remaining epochs, evaluating and checkpointing after each one."""
    while trainer.step < trainer.total_steps:
        epoch = trainer.step // trainer.steps_per_epoch
        t0 = time.perf_counter()
        last = _run_epoch(trainer, train, log)
        record = {"epoch": epoch + 1, "train_loss": round(last.loss, 4),
                  "train_accuracy": round(last.accuracy, 4), "seconds": round(time.perf_counter() - t0, 1)}
        if test is not None:
            record["test_accuracy"] = round(evaluate(trainer.model(), test), 4)
        trainer.history.append(record)
        log(json.dumps(record))
        if checkpoint:
            trainer.save_checkpoint(checkpoint)
    return trainer


def _run_epoch(trainer: Trainer, train: Dataset, log) -> Progress:
    """Train to the end of the current epoch, logging a progress line every 10 s; returns the last Progress."""
    spe = trainer.steps_per_epoch
    first, t0 = trainer.step, time.perf_counter()
    state = {"logged": 0.0, "last": None}

    def report(p: Progress):
        state["last"] = p
        now = time.perf_counter()
        if now - state["logged"] >= 10 or p.step % spe == 0:
            state["logged"] = now
            left = (p.total_steps - p.step) * (now - t0) / max(1, p.step - first)
            log(f"epoch {p.epoch:6.2f}/{trainer.config.epochs}  loss {p.loss:.3f}  acc {p.accuracy:.3f}  "
                f"lr {p.lr:.4f}  {p.images_per_s:6.0f} img/s  time left {_clock(left)}")

    train_steps(trainer, train, spe - trainer.step % spe, report)
    return state["last"]


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cnnviz.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="dataset folder (image folders or CIFAR-10 python batches)")
    ap.add_argument("--out", required=True, help="where to write the trained model (.npz)")
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--weight-decay", type=float, default=TrainConfig.weight_decay)
    ap.add_argument("--seed", type=int, default=TrainConfig.seed)
    ap.add_argument("--channels", default="16,16,32,32", help="maps in the four conv layers")
    ap.add_argument("--resume", action="store_true", help="carry on from OUT.ckpt.npz if it exists")
    a = ap.parse_args(argv)

    t_load = time.perf_counter()
    train = load_dataset(a.data, "train")
    test = load_dataset(a.data, "test")
    print(f"read {len(train)} training and {len(test)} test pictures of {len(train.classes)} classes "
          f"in {time.perf_counter() - t_load:.0f} s", flush=True)
    mean, std = channel_stats(train.images)
    channels = tuple(int(c) for c in a.channels.split(","))
    base = tiny_vgg(train.classes, channels, train.images.shape[1:3], seed=a.seed)
    base = Model(base.layers, base.classes, base.input_size, {"mean": mean, "std": std})
    config = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                         seed=a.seed)
    trainer = Trainer(base, config, steps_per_epoch=math.ceil(len(train) / a.batch_size))
    ckpt = Path(a.out + ".ckpt.npz")
    if a.resume and ckpt.exists():
        trainer.load_checkpoint(ckpt)
        print(f"resumed at step {trainer.step} (epoch {trainer.step / trainer.steps_per_epoch:.2f})", flush=True)
    t0 = time.perf_counter()
    fit(trainer, train, test, ckpt, log=lambda s: print(s, flush=True))
    acc = evaluate(trainer.model(), test)
    meta = {
        "dataset": Path(a.data).name, "train_images": len(train), "test_images": len(test),
        "test_accuracy": round(acc, 4), "epochs": a.epochs, "config": asdict(config),
        "command": "python -m cnnviz.train " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": datetime.date.today().isoformat(), "history": trainer.history,
        "train_seconds_last_run": round(time.perf_counter() - t0),
    }
    save_model(trainer.model(meta), a.out)
    print(f"test accuracy {acc:.4f} on {len(test)} pictures; saved {a.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
