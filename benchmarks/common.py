"""Shared by the benchmark scripts: thread counts, timing in separate processes, and the PyTorch twin
(from tests/torchref.py).

Why separate processes: OpenBLAS's and PyTorch's worker threads keep spinning for a while after
each call, waiting for more work. With NumPy and PyTorch in one process, both pools spin at once
and fight over the cores, so a ratio measured that way mostly measures the fight. Each side is
timed in its own child process instead, the two alternating for several rounds, and the parent
reports medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python benchmarks/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

# The PyTorch twin lives with the tests, which check it layer by layer; benchmarks import it from there.
from tests.torchref import torch_layers  # noqa: E402, F401  (re-exported: `from common import torch_layers`)

# Some machines set these to steer old OpenBLAS builds; they also pin a core type and cache size
# that may not be this CPU's. A benchmark's own timing children run without them (both together,
# never one alone); tests and CI keep them.
OPENBLAS_GUARD = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


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
    """Use `threads` BLAS threads in NumPy if given (needs threadpoolctl); returns the count in force.

    This is what the app does (threadpoolctl, not environment variables), so a child measures the app's setting.
    """
    if threads is None:
        return blas_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise SystemExit("--threads needs threadpoolctl (pip install threadpoolctl)") from None
    threadpool_limits(threads, user_api="blas")  # stays in force for the whole (short) child
    return blas_threads()


def load_torch(threads: int):
    """torch with `threads` intra-op threads, or None (with a message) if it is not installed."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare against (pip install torch). No ratio.")
        return None
    torch.set_num_threads(threads)
    return torch


def torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: nothing to compare against (pip install torch). No ratio.")
        return False
    return True


def child_env() -> tuple[dict, str]:
    """The environment for timing children, and a line saying what was changed in it."""
    env = dict(os.environ)
    present = [k for k in OPENBLAS_GUARD if k in env]
    if len(present) == len(OPENBLAS_GUARD):
        for k in OPENBLAS_GUARD:
            del env[k]
        return env, f"timing children run without {' and '.join(OPENBLAS_GUARD)} (set here)"
    return env, f"{' and '.join(OPENBLAS_GUARD)}: " + (f"only {present[0]} set, kept" if present else "not set")


def run_child(argv: list, env: dict) -> dict:
    """Run `python *argv` -> the JSON object on its last line of output (if any) plus "wall", its seconds
    from process start to exit."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, *map(str, argv)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"benchmark child {argv} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    return (result if isinstance(result, dict) else {}) | {"wall": wall}


def alternate(children: dict, rounds: int, env: dict) -> dict:
    """Run each child (name -> argv) once per round, swapping who goes first every round.

    -> {name: [its result of each round]}. Alternating means a busy neighbour or a CPU frequency
    change slows both sides alike instead of whichever happened to run at the time.
    """
    names = list(children)
    results = {n: [] for n in names}
    for r in range(rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            results[n].append(run_child(children[n], env))
    return results


def report(results: dict, key: str, unit: str, scale: float = 1.0, higher_is_better: bool = False) -> float:
    """Print each side's median of `key` over the rounds (and the spread) -> median of round ratios a/b."""
    (a, ra), (b, rb) = results.items()
    for name, rs in results.items():
        values = [r[key] * scale for r in rs]
        print(f"{name}: {statistics.median(values):.3f} {unit} (median of {len(values)} rounds; "
              f"range {min(values):.3f}-{max(values):.3f}; threads {rs[0].get('threads', 'the default')})")
    ratios = [x[key] / y[key] for x, y in zip(ra, rb, strict=True)]
    print(f"round ratios {a}/{b}: {', '.join(f'{q:.2f}' for q in ratios)}")
    return statistics.median(ratios)


def child_threads(torch=None) -> dict:
    """The thread counts in force in this child, for the report."""
    counts = {"blas": blas_threads()}
    if torch is not None:
        counts["torch"] = torch.get_num_threads()
    return counts


def emit(result: dict) -> None:
    """A child's answer: one JSON line, last on stdout."""
    print(json.dumps(result), flush=True)
