"""The app's hot path: a traced forward pass (every stage kept) of one 32x32 picture, NumPy vs PyTorch.

    python benchmarks/forward_speed.py [--rounds 7 --repeats 300 --threads 1]

Each side runs in its own process (see common.py for why), the two alternating for `--rounds`
rounds; a round times `--repeats` traces after a warm-up and keeps their median. The default of
one thread is the app's setting (it limits BLAS to one thread with threadpoolctl; one picture is
too little work to share). Prints both medians, in CPU time of the process (steadier when other
programs share the machine) and in wall-clock time, the thread counts in force in each process
and, last, `ratio numpy/torch: X` (wall clock); X <= 1.0 means the NumPy trace is no slower than
PyTorch doing the same work on the same weights.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from common import (  # also puts the project on sys.path
    alternate,
    child_env,
    child_threads,
    emit,
    limit_threads,
    load_torch,
    report,
    torch_installed,
    torch_layers,
)

from cnnviz import model as M


def default_or_stand_in() -> M.Model:
    if M.DEFAULT_MODEL_PATH.exists():
        return M.load_model()
    return M.tiny_vgg([str(i) for i in range(10)], (16, 16, 32, 32))


def torch_trace(model, mods, torch):
    """The same work in PyTorch: normalise the uint8 picture, then keep every intermediate."""
    mean = torch.tensor(model.preprocessing["mean"], dtype=torch.float32)
    std = torch.tensor(model.preprocessing["std"], dtype=torch.float32)

    def run(image):
        with torch.inference_mode():
            x = ((torch.from_numpy(image).float() / 255.0 - mean) / std).permute(2, 0, 1)[None]
            outs = [x[0]]
            for mod in mods:
                x = mod(x)
                outs.append(x[0])
        return outs

    return run


def child(side: str, threads: int, repeats: int) -> None:
    """Time `repeats` traces on one side after a warm-up; emit the median and the thread counts."""
    limit_threads(threads)
    torch = load_torch(threads) if side == "torch" else None
    model = default_or_stand_in()
    image = np.random.default_rng(0).integers(0, 256, (*model.input_size, 3), dtype=np.uint8)
    ours = M.trace(model, image)
    result = {"threads": child_threads(torch)}
    if torch is None:
        run = lambda: M.trace(model, image)  # noqa: E731
    else:
        run_torch = torch_trace(model, torch_layers(model, torch), torch)
        theirs = run_torch(image)  # check both compute the same (and warm up)
        result["worst"] = max(float(np.max(np.abs(s.output - t.numpy()))) for s, t in zip(ours, theirs, strict=True))
        run = lambda: run_torch(image)  # noqa: E731
    for _ in range(max(20, repeats // 10)):
        run()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    emit(result | {"seconds": statistics.median(wall), "cpu_seconds": statistics.median(cpu)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (one process per side per round)")
    ap.add_argument("--repeats", type=int, default=300, help="traces timed in each process")
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads on both sides (the app: 1)")
    ap.add_argument("--child", choices=("numpy", "torch"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child, a.threads, a.repeats)
        return 0
    if not torch_installed():
        return 0
    env, note = child_env()
    print(f"model: {M.DEFAULT_MODEL_PATH.name if M.DEFAULT_MODEL_PATH.exists() else 'untrained tiny_vgg'}; "
          f"threads asked: {a.threads} a side; {note}")
    me = [__file__, "--threads", a.threads, "--repeats", a.repeats, "--child"]
    results = alternate({"numpy": [*me, "numpy"], "torch": [*me, "torch"]}, a.rounds, env)
    print(f"largest stage difference numpy-torch: {max(r['worst'] for r in results['torch']):.1e}")
    print("CPU time of the process (steadier on a shared machine: time spent waiting for a core is not counted):")
    cpu = report(results, "cpu_seconds", "ms a trace", scale=1e3)
    print(f"ratio numpy/torch (CPU time): {cpu:.2f}")
    print("wall-clock time:")
    ratio = report(results, "seconds", "ms a trace", scale=1e3)
    print(f"ratio numpy/torch: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
