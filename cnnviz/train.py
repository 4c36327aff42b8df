"""The NumPy trainer: mini-batch SGD with momentum and weight decay, random crops and flips,
a warm-up then cosine learning-rate schedule, checkpoints every epoch and resume.

    python -m cnnviz.train --data DIR --out FILE.npz [--epochs 30 --batch-size 128 --lr 0.05
                           --seed 0 --resume --threads N --cache-dir DIR --no-cache]

In code: `Trainer(model, config)` then `train_steps(trainer, data, steps, callback, should_stop)`
trains for a number of steps, reports progress through `callback` and stops
cleanly as soon as `should_stop()` is true; `fit` runs whole epochs with
checkpoints, as the command line does.

The trainer keeps its place in the data (this pass's shuffled order and how far it has got), so
training in chunks of any size gives exactly the weights of one long call, and a checkpoint holds
everything needed to carry on as if the run had never stopped: a run killed at any moment and
started again with --resume ends with the same weights, bit for bit, as one that never stopped
(on the same machine, with the same --threads).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import layers as L
from .data import Dataset, channel_stats, default_cache_dir, load_dataset
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
    # Workers sharing each batch: each takes a slice, and the slices' gradients add up to the batch's.
    # Give each one BLAS thread (threadpoolctl), else the two kinds of threads fight over the cores.
    threads: int = 1


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
    """Holds the weights being trained (mutable copies), the momentum buffers, the step count and
    the place in the data: this pass's shuffled order and how many of its pictures have been used."""

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
        self.order = np.zeros(0, np.int64)  # this pass's pictures, shuffled
        self.position = 0  # how many of them have been used
        self.history: list[dict] = []
        self._pool = None  # the workers, started at the first step that needs them
        kinds = [la.kind for la in model.layers]
        # The loss takes the logits, so training runs the layers before the softmax.
        self.layers = model.layers[:kinds.index("softmax")] if "softmax" in kinds else model.layers
        frozen = set(config.frozen)
        # Below the lowest layer that learns no gradient is needed: the backward pass stops there
        # (frozen early layers then cost only their forward pass).
        self.lowest = next((i for i, la in enumerate(self.layers) if la.params and la.name not in frozen),
                           len(self.layers))

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
        """One SGD step on a batch x (N, 3, h, w) float32, y (N,) -> (loss, accuracy) before the step.

        With config.threads > 1 the batch is cut into that many slices, worked on at the same time
        (NumPy lets go of Python's lock in its loops and matrix products); the cut depends only on
        N, so a run repeats exactly.
        """
        N = len(y)
        cuts = np.linspace(0, N, min(self.config.threads, N) + 1).astype(int)
        parts = self._map(lambda a, b: self._gradients(x[a:b], y[a:b], N), list(zip(cuts[:-1], cuts[1:])))
        loss, correct, grads = parts[0]
        for more_loss, more_correct, more in parts[1:]:  # in slice order: the same sums every time
            loss, correct = loss + more_loss, correct + more_correct
            for name, g in more.items():
                for k, v in g.items():
                    grads[name][k] += v
        self._update(grads, self.lr_at(self.step))
        self.step += 1
        return loss, correct / N

    def _gradients(self, x, y, N):
        """One slice of a batch of N -> (its share of the mean loss, how many it got right, its gradients)."""
        logits, caches = self._forward(x)
        loss = L.cross_entropy(logits, y)
        correct = int(np.sum(logits.argmax(1) == y))
        dlogits = L.cross_entropy_backward(logits, y)
        if len(y) < N:  # the loss is the mean over the whole batch: this slice's part of it
            loss, dlogits = loss * len(y) / N, dlogits * np.float32(len(y) / N)
        return loss, correct, self._backward(dlogits, caches)

    def _map(self, f, args: list) -> list:
        """[f(*a) for a in args], on the workers when there is more than one."""
        if len(args) == 1:
            return [f(*args[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.config.threads, thread_name_prefix="cnnviz-train")
        return list(self._pool.map(lambda a: f(*a), args))

    def _forward(self, x):
        caches = []
        for la in self.layers:
            x, cache = L.KINDS[la.kind].forward(x, self.params.get(la.name, {}), la.options)
            caches.append(cache)
        return x, caches

    def _backward(self, dy, caches):
        grads, frozen = {}, set(self.config.frozen)
        for i in reversed(range(self.lowest, len(self.layers))):
            la = self.layers[i]
            # need_dx: the lowest learning layer passes nothing down (the picture, or frozen layers).
            dy, g = L.KINDS[la.kind].backward(dy, caches[i], self.params.get(la.name, {}), la.options, i > self.lowest)
            if g and la.name not in frozen:
                grads[la.name] = g
        return grads

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

    # -- the data
    def next_batch(self, n: int) -> np.ndarray:
        """Indices of the next mini-batch from a dataset of n pictures.

        Each pass over the data is a new shuffle, and every picture is used exactly once a pass:
        when n is not a multiple of batch_size, the last batch of a pass is the smaller rest (as
        PyTorch's DataLoader does by default). The order and the position live here, not in the
        caller, so it makes no difference how the steps are split between calls or checkpoints.
        """
        if self.position >= len(self.order) or len(self.order) != n:
            self.order, self.position = self.rng.permutation(n), 0
        idx = self.order[self.position:self.position + self.config.batch_size]
        self.position += len(idx)
        return idx

    # -- results
    def model(self, meta: dict | None = None) -> Model:
        """The weights so far as a (new, read-only) Model."""
        layers = tuple(Layer(la.name, la.kind, self.params.get(la.name, {}), la.options)
                       for la in self.base.layers)
        return Model(layers, self.base.classes, self.base.input_size, self.base.preprocessing,
                     {**self.base.meta, **(meta or {})})

    # -- checkpoints
    def save_checkpoint(self, path) -> None:
        """Everything needed to carry on exactly: weights, momentum, step, random state, place in the data, history.

        Written atomically (see write_atomically): a crash at any moment leaves the last good checkpoint.
        """
        arrays = {f"p/{n}/{k}": v for n, p in self.params.items() for k, v in p.items()}
        arrays |= {f"v/{n}/{k}": v for n, p in self.velocity.items() for k, v in p.items()}
        arrays["order"] = self.order
        state = {"step": self.step, "position": self.position, "rng": self.rng.bit_generator.state,
                 "history": self.history, "config": asdict(self.config)}
        arrays["state"] = np.array(json.dumps(state))
        write_atomically(path, lambda f: np.savez(f, **arrays))

    def load_checkpoint(self, path) -> None:
        with np.load(path, allow_pickle=False) as z:
            state = json.loads(str(z["state"]))
            for n, p in self.params.items():
                for k in p:
                    p[k][...] = z[f"p/{n}/{k}"]
                    self.velocity[n][k][...] = z[f"v/{n}/{k}"]
            # A checkpoint from before the order was kept: start a new pass.
            self.order = np.array(z["order"], np.int64) if "order" in z.files else np.zeros(0, np.int64)
        self.step = state["step"]
        self.position = state.get("position", len(self.order))
        self.rng.bit_generator.state = state["rng"]
        self.history = state["history"]


def write_atomically(path, write) -> None:
    """Call write(file) on a temporary file beside `path`, flush it to the disk, then rename it to `path`.

    A rename is atomic, so a crash or a kill at any moment leaves the old file or the new one, never half of one.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    try:  # and the rename itself, so a power cut cannot undo it (POSIX; Windows cannot open a folder)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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

    Batches come from `trainer.next_batch`: a new shuffle each pass over `data`, every picture once
    a pass, carrying on where the previous call stopped (so ten calls of 10 steps train exactly
    like one call of 100). `callback(Progress)` runs after every step; `should_stop()` is checked
    before every step, so a Stop button takes effect within one step.
    """
    c, model = trainer.config, trainer.base
    t0, done = time.perf_counter(), 0
    seen = loss_sum = acc_sum = 0.0
    while done < steps and trainer.step < trainer.total_steps:
        if should_stop is not None and should_stop():
            break
        idx = trainer.next_batch(len(data))
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


def evaluate(model: Model, data: Dataset, batch_size: int = 500, threads: int = 1) -> float:
    """Fraction of `data` whose most probable class is the true label (`threads` batches at a time)."""
    def correct(i: int) -> int:
        p = forward(model, model.normalize(data.images[i:i + batch_size]))
        return int(np.sum(p.argmax(1) == data.labels[i:i + batch_size]))

    starts = range(0, len(data), batch_size)
    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(threads) as pool:
            return sum(pool.map(correct, starts)) / len(data)
    return sum(map(correct, starts)) / max(1, len(data))


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
            record["test_accuracy"] = round(evaluate(trainer.model(), test, threads=trainer.config.threads), 4)
        trainer.history.append(record)
        log(json.dumps(record))
        if checkpoint:
            trainer.save_checkpoint(checkpoint)
            log(f"checkpoint saved: {checkpoint} (step {trainer.step})")
    return trainer


def _run_epoch(trainer: Trainer, train: Dataset, log) -> Progress:
    """Train to the end of the current epoch, logging a progress line every 10 s; returns the last Progress."""
    steps_per_epoch = trainer.steps_per_epoch
    first, t0 = trainer.step, time.perf_counter()
    state = {"logged": 0.0, "last": None}

    def report(p: Progress):
        state["last"] = p
        now = time.perf_counter()
        if now - state["logged"] >= 10 or p.step % steps_per_epoch == 0:
            state["logged"] = now
            left = (p.total_steps - p.step) * (now - t0) / max(1, p.step - first)
            log(f"epoch {p.epoch:6.2f}/{trainer.config.epochs}  loss {p.loss:.3f}  acc {p.accuracy:.3f}  "
                f"lr {p.lr:.4f}  {p.images_per_s:6.0f} img/s  time left {_clock(left)}")

    train_steps(trainer, train, steps_per_epoch - trainer.step % steps_per_epoch, report)
    return state["last"]


def _clock(seconds: float) -> str:
    """Whole seconds as hours:minutes:seconds, e.g. 1:02:03."""
    return str(datetime.timedelta(seconds=int(seconds)))


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
    ap.add_argument("--cache-dir", help="where to keep an image folder's decoded pictures, so later runs skip "
                    "decoding (default: $CNNVIZ_CACHE_DIR, else ~/.cache/cnnviz)")
    ap.add_argument("--no-cache", action="store_true", help="decode the pictures every time; keep nothing")
    ap.add_argument("--threads", type=int, help="workers sharing each batch, one BLAS thread each "
                    "(default: one per core; needs threadpoolctl, else 1)")
    a = ap.parse_args(argv)
    threads, blas = _workers(a.threads)
    with blas:
        return _run(a, threads, argv)


def _workers(asked: int | None):
    """-> (workers, a context that holds NumPy's BLAS at one thread meanwhile).

    The convolutions make many small matrix products; BLAS threads would have to meet for each
    one, which costs more than it saves (ten times more on a busy machine, measured). So BLAS
    gets one thread and the workers share the batch instead. Without threadpoolctl BLAS cannot
    be limited: then one worker, and BLAS keeps its own threads.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed: training with one worker (pip install threadpoolctl)", flush=True)
        return 1, contextlib.nullcontext()
    return asked or cores, threadpool_limits(1, user_api="blas")


def _run(a, threads: int, argv) -> int:
    t_load = time.perf_counter()
    cache = None if a.no_cache else Path(a.cache_dir) if a.cache_dir else default_cache_dir()
    train = load_dataset(a.data, "train", cache_dir=cache)
    test = load_dataset(a.data, "test", cache_dir=cache)
    print(f"read {len(train)} training and {len(test)} test pictures of {len(train.classes)} classes "
          f"in {time.perf_counter() - t_load:.0f} s", flush=True)
    mean, std = channel_stats(train.images)
    channels = tuple(int(c) for c in a.channels.split(","))
    base = tiny_vgg(train.classes, channels, train.images.shape[1:3], seed=a.seed)
    base = Model(base.layers, base.classes, base.input_size, {"mean": mean, "std": std})
    config = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                         seed=a.seed, threads=threads)
    trainer = Trainer(base, config, steps_per_epoch=math.ceil(len(train) / a.batch_size))
    ckpt = Path(a.out + ".ckpt.npz")
    if a.resume and ckpt.exists():
        trainer.load_checkpoint(ckpt)
        print(f"resumed at step {trainer.step} (epoch {trainer.step / trainer.steps_per_epoch:.2f})", flush=True)
    t0 = time.perf_counter()
    fit(trainer, train, test, ckpt, log=lambda s: print(s, flush=True))
    last = trainer.history[-1] if trainer.history else {}
    # The test after the last epoch already measured these weights.
    acc = last["test_accuracy"] if last.get("epoch") == a.epochs else evaluate(trainer.model(), test, threads=threads)
    meta = {
        "dataset": Path(a.data).name, "train_images": len(train), "test_images": len(test),
        "test_accuracy": round(acc, 4), "epochs": a.epochs, "config": asdict(config),
        "command": "python -m cnnviz.train " + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": datetime.date.today().isoformat(), "history": trainer.history,
        "train_seconds_last_run": round(time.perf_counter() - t0),
    }
    write_atomically(a.out, lambda f: save_model(trainer.model(meta), f))
    print(f"test accuracy {acc:.4f} on {len(test)} pictures; saved {a.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
