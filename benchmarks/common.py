"""Shared by the benchmark scripts: thread counts, timing, and the PyTorch twin of a cnnviz model."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))


def blas_threads() -> int:
    """How many threads NumPy's BLAS uses (threadpoolctl if installed, else the CPU count)."""
    import numpy  # noqa: F401  (loads the BLAS, so threadpoolctl can see it)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.cpu_count() or 1
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts) if counts else os.cpu_count() or 1


def limit_threads(threads: int | None) -> int:
    """Use `threads` BLAS threads in NumPy if given (needs threadpoolctl); returns the count in force."""
    if threads is None:
        return blas_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl (pip install threadpoolctl)") from None
    threadpool_limits(threads, user_api="blas")  # stays in force for the whole (short) script
    return threads


def load_torch(threads: int):
    """torch with `threads` intra-op threads, or None (with a message) if it is not installed."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare against (pip install torch). No ratio.")
        return None
    torch.set_num_threads(threads)
    return torch


def torch_layers(model, torch, dtype=None):
    """The layers of a cnnviz Model as a list of torch.nn modules holding the same weights."""
    import numpy as np

    nn = torch.nn
    mods = []
    for la in model.layers:
        p, o = la.params, la.options
        if la.kind == "conv":
            F, C, KH, KW = p["weight"].shape
            mod = nn.Conv2d(C, F, (KH, KW), stride=o.get("stride", 1), padding=o.get("padding", 0))
        elif la.kind == "dense":
            mod = nn.Linear(p["weight"].shape[1], p["weight"].shape[0])
        elif la.kind in ("maxpool", "avgpool"):
            mod = (nn.MaxPool2d if la.kind == "maxpool" else nn.AvgPool2d)(o.get("size", 2), o.get("stride"))
        elif la.kind == "softmax":
            mod = nn.Softmax(dim=1)
        else:
            mod = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "flatten": nn.Flatten}[la.kind]()
        with torch.no_grad():
            for k, v in p.items():
                getattr(mod, k).copy_(torch.from_numpy(np.array(v)))
        mods.append(mod if dtype is None else mod.to(dtype))
    return mods


def interleaved_medians(a, b, repeats: int, block: int = 1) -> tuple[float, float]:
    """Median seconds per call of a() and b(), timed in alternating blocks of `block` calls each.

    Alternating means a busy neighbour (another process, a CPU frequency change)
    slows both sides alike instead of whichever happened to run at the time.
    """
    ta, tb = [], []
    for _ in range(repeats):
        for f, out in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            for _ in range(block):
                f()
            out.append((time.perf_counter() - t0) / block)
    return statistics.median(ta), statistics.median(tb)
