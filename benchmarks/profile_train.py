"""Where one training step's time goes: per layer, and per function (cProfile).

    python benchmarks/profile_train.py [--batch-size 64 --steps 20 --threads 1]

Trains the default architecture, tiny_vgg(10 classes, (16, 16, 32, 32)), on one random 32x32
batch with one BLAS thread (as `python -m cnnviz.train` gives each worker). Times are this
process's CPU time (time.process_time), so other programs on a shared machine disturb them less
than wall-clock time; the medians are over `--steps` steps after a warm-up.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time
from collections import defaultdict

import numpy as np
from common import limit_threads  # also puts the project on sys.path

from cnnviz import layers as L
from cnnviz import model as M
from cnnviz import train as T


def per_layer(trainer: T.Trainer, x, y, steps: int) -> dict:
    """Median CPU seconds of each layer's forward ("F name") and backward ("B name"), as train_step runs them."""
    times = defaultdict(list)
    for _ in range(steps):
        h, caches = x, []
        for la in trainer.layers:
            t0 = time.process_time()
            h, cache = L.KINDS[la.kind].forward(h, trainer.params.get(la.name, {}), la.options)
            times["F " + la.name].append(time.process_time() - t0)
            caches.append(cache)
        d = L.cross_entropy_backward(h, y)
        for i in reversed(range(trainer.lowest, len(trainer.layers))):
            la = trainer.layers[i]
            t0 = time.process_time()
            d, _ = L.KINDS[la.kind].backward(d, caches[i], trainer.params.get(la.name, {}), la.options,
                                             i > trainer.lowest)
            times["B " + la.name].append(time.process_time() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (the trainer's workers use 1 each)")
    ap.add_argument("--top", type=int, default=14, help="functions to list")
    a = ap.parse_args(argv)
    threads = limit_threads(a.threads)
    trainer = T.Trainer(M.tiny_vgg([str(i) for i in range(10)], (16, 16, 32, 32)),
                        T.TrainConfig(batch_size=a.batch_size), steps_per_epoch=390)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, a.batch_size)
    for _ in range(3):
        trainer.train_step(x, y)

    steps = []
    for _ in range(a.steps):
        t0 = time.process_time()
        trainer.train_step(x, y)
        steps.append(time.process_time() - t0)
    step = statistics.median(steps)
    print(f"batch {a.batch_size}, BLAS threads {threads}: one step {step * 1e3:.1f} ms CPU "
          f"(median of {a.steps}), {a.batch_size / step:.0f} images/s")

    layers = per_layer(trainer, x, y, a.steps)
    total = sum(layers.values())
    print(f"\nper layer (sum {total * 1e3:.1f} ms; the rest of the step is the loss and the update):")
    for name, t in layers.items():
        print(f"  {name:14s} {t * 1e3:6.2f} ms  {100 * t / total:4.1f}%")

    profile = cProfile.Profile(time.process_time)
    profile.runcall(lambda: [trainer.train_step(x, y) for _ in range(a.steps)])
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(a.top)
    print(f"\ncProfile over {a.steps} steps (tottime includes the NumPy calls a function makes itself):")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip() and not line.startswith("   Ordered")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
