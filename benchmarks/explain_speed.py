"""Step 8's explanations of one 32x32 picture, NumPy (cnnviz.explain) vs PyTorch autograd doing the same work:
saliency, Grad-CAM at the last maps before flatten, and the occlusion map (8-pixel square, stride 2).

    python benchmarks/explain_speed.py [--rounds 7 --repeats 100 --threads 1]

Each side runs in its own process (see common.py for why), the two alternating for `--rounds` rounds; a
round times `--repeats` calls of each computation after a warm-up and keeps their medians. One thread is the
app's setting. Prints, for each computation, both medians and `ratio numpy/torch`, and the largest
difference between the two sides' answers. The targets the app needs: saliency and Grad-CAM under 50 ms,
the occlusion map under 1 s.
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

from cnnviz import explain as E
from cnnviz import model as M
from cnnviz import samples
from cnnviz.images import fit_to_input, load_image

WORK = ("saliency", "gradcam", "occlusion")
PATCH, STRIDE = 8, 2


def default_or_stand_in() -> M.Model:
    if M.DEFAULT_MODEL_PATH.exists():
        return M.load_model()
    return M.tiny_vgg([str(i) for i in range(10)], (16, 16, 32, 32))


def numpy_side(model, small, target):
    stage = E.default_cam_stage(model)
    return {"saliency": lambda: E.saliency(model, small, target),
            "gradcam": lambda: E.gradcam(model, small, target, stage),
            "occlusion": lambda: E.occlusion(model, small, target, PATCH, STRIDE)}


def torch_side(model, small, target, torch):
    """The same three computations with torch modules holding the same weights; the picture is
    preprocessed by the same NumPy code on both sides."""
    mods = torch_layers(model, torch)
    scores = mods[:-1] if model.layers[-1].kind == "softmax" else mods
    stage = E.default_cam_stage(model)
    k = [la.name for la in model.layers].index(stage) + 1
    below, above = torch.nn.Sequential(*scores[:k]), torch.nn.Sequential(*scores[k:])
    net = torch.nn.Sequential(*scores)

    def saliency():
        x = torch.from_numpy(model.preprocess(small)[None]).requires_grad_()
        net(x)[0, target].backward()
        return x.grad[0].abs().amax(dim=0).numpy()

    def gradcam():
        with torch.no_grad():
            A = below(torch.from_numpy(model.preprocess(small)[None]))
        A.requires_grad_()
        above(A)[0, target].backward()
        a = A.grad[0].mean(dim=(1, 2))
        return torch.relu((a[:, None, None] * A[0]).sum(dim=0)).detach().numpy()

    def occlusion():
        with torch.inference_mode():
            x = torch.from_numpy(model.preprocess(small))
            h, w = x.shape[1:]
            rows, cols = (h - PATCH) // STRIDE + 1, (w - PATCH) // STRIDE + 1
            batch = x.repeat(rows * cols + 1, 1, 1, 1)
            for r in range(rows):
                for c in range(cols):
                    batch[1 + r * cols + c, :, r * STRIDE:r * STRIDE + PATCH, c * STRIDE:c * STRIDE + PATCH] = 0
            p = torch.softmax(net(batch), dim=1)[:, target]
            return (p[0] - p[1:]).reshape(rows, cols).numpy()

    return {"saliency": saliency, "gradcam": gradcam, "occlusion": occlusion}


def child(side: str, threads: int, repeats: int) -> None:
    """Time `repeats` calls of each computation on one side after a warm-up; emit the medians."""
    limit_threads(threads)
    torch = load_torch(threads) if side == "torch" else None
    model = default_or_stand_in()
    small = fit_to_input(load_image(samples.sample_path("cat-chelsea")), model.input_size)
    target = int(np.argmax(M.forward(model, model.normalize(small)[None])[0]))
    runs = numpy_side(model, small, target) if torch is None else torch_side(model, small, target, torch)
    result = {"threads": child_threads(torch)}
    if torch is not None:  # both sides must compute the same thing
        ours = numpy_side(model, small, target)
        result["worst"] = {n: float(np.max(np.abs(runs[n]() - ours[n]()))) for n in WORK}
    for name in WORK:
        for _ in range(max(3, repeats // 10)):
            runs[name]()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            runs[name]()
            times.append(time.perf_counter() - t0)
        result[name] = statistics.median(times)
    emit(result)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (one process per side per round)")
    ap.add_argument("--repeats", type=int, default=100, help="calls of each computation timed in each process")
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
          f"picture: cat-chelsea; threads asked: {a.threads} a side; {note}")
    me = [__file__, "--threads", a.threads, "--repeats", a.repeats, "--child"]
    results = alternate({"numpy": [*me, "numpy"], "torch": [*me, "torch"]}, a.rounds, env)
    for name in WORK:
        worst = max(r["worst"][name] for r in results["torch"])
        print(f"\n{name}{f' ({PATCH}-pixel square, stride {STRIDE})' if name == 'occlusion' else ''}: "
              f"largest difference numpy-torch {worst:.1e}")
        ratio = report(results, name, "ms", scale=1e3)
        print(f"ratio numpy/torch: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
