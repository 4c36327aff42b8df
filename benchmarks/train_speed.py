"""Training throughput: the NumPy trainer's step against PyTorch CPU on the same network and batch.

    python benchmarks/train_speed.py [--blocks 7 --steps 3 --batch-size 128 --threads N]

Both sides train the default architecture, tiny_vgg(10 classes, (16, 16, 32, 32)),
on random 32x32 batches with SGD (momentum 0.9, weight decay 5e-4 on weights
only), using the same number of threads. Timing alternates blocks of steps.
Prints images per second for both and, last, `ratio numpy/torch: X`, the
NumPy speed as a fraction of PyTorch's (higher is better).
"""

from __future__ import annotations

import argparse

import numpy as np
from common import interleaved_medians, limit_threads, load_torch, torch_layers  # also puts the project on sys.path

from cnnviz import model as M
from cnnviz import train as T


def torch_step(model, config, torch):
    """One PyTorch SGD step on (x, y), the same maths as Trainer.train_step."""
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

    return step


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blocks", type=int, default=7, help="timed blocks per side")
    ap.add_argument("--steps", type=int, default=3, help="training steps per block")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, help="threads for both sides (default: what NumPy's BLAS uses)")
    a = ap.parse_args(argv)
    threads = limit_threads(a.threads)
    torch = load_torch(threads)
    if torch is None:
        return 0
    model = M.tiny_vgg([str(i) for i in range(10)], (16, 16, 32, 32))
    config = T.TrainConfig(batch_size=a.batch_size)
    trainer = T.Trainer(model, config, steps_per_epoch=390)
    step_torch = torch_step(model, config, torch)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch_size, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, a.batch_size)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    loss_np, _ = trainer.train_step(x, y)  # warm up; same weights, so the first losses agree
    loss_torch = step_torch(tx, ty)
    print(f"threads: {threads} (NumPy BLAS and torch); batch {a.batch_size}; first loss numpy {loss_np:.4f} "
          f"torch {loss_torch:.4f}")

    t_np, t_torch = interleaved_medians(lambda: trainer.train_step(x, y), lambda: step_torch(tx, ty),
                                        a.blocks, a.steps)
    ips_np, ips_torch = a.batch_size / t_np, a.batch_size / t_torch
    print(f"numpy train: {ips_np:.0f} images/s ({t_np * 1e3:.1f} ms a step, median of {a.blocks} blocks)")
    print(f"torch train: {ips_torch:.0f} images/s ({t_torch * 1e3:.1f} ms a step, median of {a.blocks} blocks)")
    print(f"ratio numpy/torch: {ips_np / ips_torch:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
