"""The app's hot path: a traced forward pass (every stage kept) of one 32x32 picture, NumPy vs PyTorch.

    python benchmarks/forward_speed.py [--repeats 200 --threads N]

Prints both medians and `ratio numpy/torch: X`; X <= 1.0 means the NumPy
trace is no slower than PyTorch doing the same work on the same weights.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import interleaved_medians, limit_threads, load_torch, torch_layers  # also puts the project on sys.path

from cnnviz import model as M


def default_or_stand_in() -> M.Model:
    if M.DEFAULT_MODEL_PATH.exists():
        print(f"model: {M.DEFAULT_MODEL_PATH.name}")
        return M.load_model()
    print(f"model: {M.DEFAULT_MODEL_PATH} is missing; using an untrained tiny_vgg with channels (16,16,32,32)")
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, help="threads for both sides (default: what NumPy's BLAS uses)")
    a = ap.parse_args(argv)
    threads = limit_threads(a.threads)
    torch = load_torch(threads)
    if torch is None:
        return 0
    model = default_or_stand_in()
    image = np.random.default_rng(0).integers(0, 256, (*model.input_size, 3), dtype=np.uint8)
    run_torch = torch_trace(model, torch_layers(model, torch), torch)

    ours, theirs = M.trace(model, image), run_torch(image)  # warm up, and check both compute the same
    worst = max(float(np.max(np.abs(s.output - t.numpy()))) for s, t in zip(ours, theirs, strict=True))
    print(f"threads: {threads} (NumPy BLAS and torch); largest stage difference {worst:.1e}")

    t_np, t_torch = interleaved_medians(lambda: M.trace(model, image), lambda: run_torch(image), a.repeats)
    print(f"numpy trace: {t_np * 1e3:.3f} ms (median of {a.repeats})")
    print(f"torch trace: {t_torch * 1e3:.3f} ms (median of {a.repeats})")
    print(f"ratio numpy/torch: {t_np / t_torch:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
