"""Training speed, NumPy trainer against PyTorch CPU on the same network, the same way.

    python benchmarks/train_speed.py [--rounds 5 --steps 20 --batch-size 128 --threads N]
    python benchmarks/train_speed.py --data DIR [--epochs 1 --rounds 3 --batch-size 128]

The first form times training steps (throughput): both sides train the default architecture,
tiny_vgg(10 classes, (16, 16, 32, 32)), on one random 32x32 batch with SGD (momentum 0.9,
weight decay 5e-4 on weights only). The second times whole runs from process start to exit:
`python -m cnnviz.train --data DIR ...` against a PyTorch script that does what it does (read
the decoded pictures, same crops, flips and learning-rate schedule, a test after every epoch, a
checkpoint after every epoch, save the weights). The dataset is decoded once before timing: our
command keeps a cache of the decoded pictures, and the PyTorch side gets the same arrays ready
made, as a user of torchvision's CIFAR10 class would.

Each side runs in its own process (see common.py for why), alternating for `--rounds` rounds.
Threads default to what each library uses by itself (every core), as on the command line.
Prints the thread counts in force and, last, `ratio numpy/torch: X`, the NumPy speed as a
fraction of PyTorch's (higher is better; for whole runs, PyTorch's time over ours).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (  # also puts the project on sys.path
    ROOT,
    alternate,
    child_env,
    child_threads,
    emit,
    limit_threads,
    load_torch,
    report,
    run_child,
    torch_installed,
    torch_layers,
)

from cnnviz import data as D
from cnnviz import model as M
from cnnviz import train as T

CHANNELS = (16, 16, 32, 32)


def torch_step(model, config, torch):
    """One PyTorch SGD step on (x, y), the same maths as Trainer.train_step. -> (step, net, opt)."""
    mods = [m for m, la in zip(torch_layers(model, torch), model.layers, strict=True) if la.kind != "softmax"]
    net = torch.nn.Sequential(*mods)
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": config.weight_decay},
                           {"params": biases, "weight_decay": 0.0}], lr=config.lr, momentum=config.momentum)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, net, opt


# ---------------------------------------------------------------- throughput


def step_child(side: str, threads: int | None, steps: int, batch_size: int) -> None:
    """Time `steps` training steps on one side. NumPy trains as `python -m cnnviz.train` does:
    `threads` workers sharing each batch, one BLAS thread each (the trainer's TrainConfig.threads)."""
    threads = threads or os.cpu_count() or 1
    limit_threads(1 if side == "numpy" else threads)
    torch = load_torch(threads) if side == "torch" else None
    model = M.tiny_vgg([str(i) for i in range(10)], CHANNELS)
    config = T.TrainConfig(batch_size=batch_size, threads=threads if side == "numpy" else 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch_size)
    if torch is None:
        trainer = T.Trainer(model, config, steps_per_epoch=390)
        run = lambda: trainer.train_step(x, y)[0]  # noqa: E731
    else:
        step, _, _ = torch_step(model, config, torch)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        run = lambda: step(tx, ty)  # noqa: E731
    first_loss = run()  # same weights, so the first losses agree
    for _ in range(3):
        run()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    counts = child_threads(torch) | ({"workers": threads} if torch is None else {})
    emit({"threads": counts, "first_loss": first_loss, "images_per_s": batch_size / statistics.median(wall),
          "images_per_cpu_s": batch_size / statistics.median(cpu)})


# ---------------------------------------------------------------- whole runs


def torch_run_child(decoded: str, epochs: int, batch_size: int, out: str, seed: int, threads: int | None) -> None:
    """What `python -m cnnviz.train` does, with PyTorch doing the maths. Timed by the parent from process start."""
    torch = load_torch(threads or os.cpu_count() or 1)
    with np.load(decoded) as z:
        train = D.Dataset(z["train_images"], z["train_labels"], [str(c) for c in z["classes"]])
        test = D.Dataset(z["test_images"], z["test_labels"], train.classes)
    mean, std = D.channel_stats(train.images)
    base = M.tiny_vgg(train.classes, CHANNELS, train.images.shape[1:3], seed=seed)
    base = M.Model(base.layers, base.classes, base.input_size, {"mean": mean, "std": std})
    config = T.TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed)
    schedule = T.Trainer(base, config, steps_per_epoch=-(-len(train) // batch_size))  # only for lr_at
    step, net, opt = torch_step(base, config, torch)
    rng = np.random.default_rng(seed)
    done = 0
    for _ in range(epochs):
        net.train()
        order = rng.permutation(len(train))
        for i in range(0, len(train), batch_size):
            idx = order[i:i + batch_size]
            for group in opt.param_groups:
                group["lr"] = schedule.lr_at(done)
            xb = T.augment(train.images[idx], rng, config.crop_padding, config.flip)
            step(torch.from_numpy(base.normalize(xb)), torch.from_numpy(train.labels[idx]))
            done += 1
        correct = 0
        with torch.inference_mode():
            for i in range(0, len(test), 500):
                logits = net(torch.from_numpy(base.normalize(test.images[i:i + 500])))
                correct += int((logits.argmax(1).numpy() == test.labels[i:i + 500]).sum())
        torch.save({"net": net.state_dict(), "opt": opt.state_dict()}, out + ".ckpt.pt")
    np.savez(out, **{k: v.numpy() for k, v in net.state_dict().items()})
    emit({"threads": child_threads(torch), "test_accuracy": correct / len(test)})


def whole_runs(a, env: dict, note: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cnnviz-bench-") as tmp:
        env = env | {"CNNVIZ_CACHE_DIR": str(Path(tmp) / "cache")}  # our command's cache of decoded pictures
        decoded = str(Path(tmp) / "decoded.npz")
        t0 = time.perf_counter()
        train, test = D.load_dataset(a.data, "train"), D.load_dataset(a.data, "test")
        np.savez(decoded, train_images=train.images, train_labels=train.labels, test_images=test.images,
                 test_labels=test.labels, classes=np.array(train.classes))
        print(f"{len(train)} training and {len(test)} test pictures decoded once in {time.perf_counter() - t0:.1f} s "
              f"(untimed); {note}")
        threads = ["--threads", a.threads] if a.threads else []
        ours = ["-m", "cnnviz.train", "--data", a.data, "--out", Path(tmp) / "numpy.npz", "--batch-size",
                a.batch_size, "--seed", a.seed, *threads, "--epochs"]
        theirs = [__file__, "--child", "torch-run", "--decoded", decoded, "--batch-size", a.batch_size,
                  "--seed", a.seed, "--out", Path(tmp) / "torch.npz", *threads, "--epochs", a.epochs]
        env["PYTHONPATH"] = str(ROOT)  # `-m cnnviz.train` from the project under test
        first = run_child([*ours, 0], env)  # fills our cache of decoded pictures (untimed)
        print(f"our first run (0 epochs: reads, decodes, caches, tests): {first['wall']:.1f} s")
        results = alternate({"numpy": [*ours, a.epochs], "torch": theirs}, a.rounds, env)
        print(f"threads: numpy {a.threads or os.cpu_count()} workers with one BLAS thread each (the command's "
              f"default: one per core)")
        ratio = report(results, "wall", "s a whole run")
        print(f"torch test accuracy {results['torch'][-1]['test_accuracy']:.3f}")
        print(f"ratio numpy/torch: {1 / ratio:.2f} (PyTorch's time over ours; ours takes {ratio:.2f}x as long)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (one process per side per round)")
    ap.add_argument("--steps", type=int, default=20, help="training steps timed in each process")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, help="threads on both sides (default: every core, like the command)")
    ap.add_argument("--data", help="time whole runs of `python -m cnnviz.train` on this dataset instead")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of each whole run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", choices=("numpy", "torch", "torch-run"), help=argparse.SUPPRESS)
    ap.add_argument("--decoded", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "torch-run":
        torch_run_child(a.decoded, a.epochs, a.batch_size, a.out, a.seed, a.threads)
        return 0
    if a.child:
        step_child(a.child, a.threads, a.steps, a.batch_size)
        return 0
    if not torch_installed():
        return 0
    env, note = child_env()
    if a.data:
        whole_runs(a, env, note)
        return 0
    print(f"batch {a.batch_size}; threads asked: {a.threads or 'each library default'}; {note}")
    me = [__file__, "--steps", a.steps, "--batch-size", a.batch_size, *(["--threads", a.threads] if a.threads else []),
          "--child"]
    results = alternate({"numpy": [*me, "numpy"], "torch": [*me, "torch"]}, a.rounds, env)
    print(f"first loss numpy {results['numpy'][0]['first_loss']:.4f} torch {results['torch'][0]['first_loss']:.4f}")
    if (a.threads or os.cpu_count()) == 1:  # with more threads, CPU time adds theirs up: not a speed
        print("per second of CPU time of the process (steadier on a shared machine):")
        cpu = report(results, "images_per_cpu_s", "images per CPU second")
        print(f"ratio numpy/torch (CPU time): {cpu:.2f}")
        print("per second of wall-clock time:")
    ratio = report(results, "images_per_s", "images/s")
    print(f"ratio numpy/torch: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
