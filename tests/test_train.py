"""cnnviz.train on a tiny made-up dataset: learning, repeatability, checkpoints, stopping, the CLI."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnviz import data as D
from cnnviz import model as M
from cnnviz import train as T
from tests.torchref import require_torch

CHANNELS = (4, 4, 8, 8)


def toy_dataset(n=60, size=16, seed=0) -> D.Dataset:
    """Three easy classes of size x size pictures: vertical stripes, horizontal stripes, round blobs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    images, labels = [], []
    for i in range(n):
        k = i % 3
        phase = rng.integers(0, 4)
        if k == 0:
            mask = (x + phase) // 2 % 2 == 1
        elif k == 1:
            mask = (y + phase) // 2 % 2 == 1
        else:
            cy, cx = rng.uniform(4, size - 4, 2)
            mask = (y - cy) ** 2 + (x - cx) ** 2 < rng.uniform(6, 16)
        fg, bg = rng.integers(150, 256, 3), rng.integers(0, 100, 3)
        images.append(np.where(mask[..., None], fg, bg).astype(np.uint8))
        labels.append(k)
    return D.Dataset(np.stack(images), np.array(labels, np.int64), ["vertical", "horizontal", "blob"])


@pytest.fixture(scope="module")
def toy():
    return toy_dataset()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The command line keeps decoded pictures in a cache folder: a fresh one per test, never ~/.cache."""
    monkeypatch.setenv("CNNVIZ_CACHE_DIR", str(tmp_path / "cache"))


def make_trainer(data, seed=0, epochs=10, batch_size=20, **config) -> T.Trainer:
    mean, std = D.channel_stats(data.images)
    base = M.tiny_vgg(data.classes, CHANNELS, data.images.shape[1:3], seed=seed)
    base = M.Model(base.layers, base.classes, base.input_size, {"mean": mean, "std": std})
    cfg = T.TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.05, crop_padding=2, seed=seed, **config)
    return T.Trainer(base, cfg, steps_per_epoch=-(-len(data) // batch_size))


def dataset_loss(model, data) -> float:
    p = M.forward(model, model.normalize(data.images))
    return float(-np.mean(np.log(p[np.arange(len(data)), data.labels] + 1e-12)))


def assert_same_weights(a: T.Trainer, b: T.Trainer):
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        for k in a.params[name]:
            np.testing.assert_array_equal(a.params[name][k], b.params[name][k], err_msg=f"{name}.{k}")


# ---------------------------------------------------------------- learning


def test_loss_goes_down(toy):
    trainer = make_trainer(toy)
    before = dataset_loss(trainer.model(), toy)
    done = T.train_steps(trainer, toy, 30)
    after = dataset_loss(trainer.model(), toy)
    assert done == 30 == trainer.step
    assert after < before / 2, (before, after)
    assert T.evaluate(trainer.model(), toy) > 0.8


def test_train_step_matches_torch_sgd(toy):
    """Two steps of our SGD (momentum, weight decay on weights only) equal torch.optim.SGD on the same net."""
    torch = require_torch()
    trainer = make_trainer(toy, weight_decay=5e-3)
    lr = 0.05
    trainer.lr_at = lambda step: lr  # a constant rate, to compare with a plain torch optimiser
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 3)).double()
    ours = [la for la in trainer.base.layers if la.params]
    theirs = [m for m in net if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    with torch.no_grad():
        for la, mod in zip(ours, theirs, strict=True):
            mod.weight.copy_(torch.from_numpy(trainer.params[la.name]["weight"].astype(np.float64)))
            mod.bias.copy_(torch.from_numpy(trainer.params[la.name]["bias"].astype(np.float64)))
    opt = torch.optim.SGD([{"params": [m.weight for m in theirs], "weight_decay": 5e-3},
                           {"params": [m.bias for m in theirs], "weight_decay": 0.0}], lr=lr, momentum=0.9)
    x = trainer.base.normalize(toy.images[:12])
    y = toy.labels[:12]
    for _ in range(2):
        loss, _ = trainer.train_step(x, y)
        opt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x.astype(np.float64))), torch.from_numpy(y))
        tloss.backward()
        opt.step()
        assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for la, mod in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(trainer.params[la.name]["weight"], mod.weight.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(trainer.params[la.name]["bias"], mod.bias.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_learning_rate_schedule(toy):
    trainer = make_trainer(toy, epochs=10)  # 3 steps per epoch, warm-up over the first 3
    assert trainer.lr_at(0) == pytest.approx(0.05 / 3)
    assert trainer.lr_at(2) == pytest.approx(0.05)
    assert trainer.lr_at(3) == pytest.approx(0.05)
    assert trainer.lr_at(trainer.total_steps) == pytest.approx(0.0, abs=1e-12)
    lrs = [trainer.lr_at(s) for s in range(3, trainer.total_steps)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_trainer_leaves_the_base_model_alone(toy):
    trainer = make_trainer(toy)
    w0 = np.array(trainer.base.layer("conv1_1").params["weight"])
    T.train_steps(trainer, toy, 3)
    np.testing.assert_array_equal(trainer.base.layer("conv1_1").params["weight"], w0)
    assert not np.array_equal(trainer.params["conv1_1"]["weight"], w0)
    m = trainer.model({"note": "x"})
    assert m.meta["note"] == "x"
    assert not m.layer("conv1_1").params["weight"].flags.writeable


# ---------------------------------------------------------------- repeatability and checkpoints


def test_seeded_runs_are_repeatable(toy):
    a, b, c = make_trainer(toy, seed=1), make_trainer(toy, seed=1), make_trainer(toy, seed=2)
    for trainer in (a, b, c):
        T.train_steps(trainer, toy, 4)
    assert_same_weights(a, b)
    assert not np.array_equal(a.params["dense"]["weight"], c.params["dense"]["weight"])


def test_checkpoint_resume_equals_uninterrupted_run(toy, tmp_path):
    straight = make_trainer(toy)
    T.train_steps(straight, toy, 2)
    T.train_steps(straight, toy, 2)

    first = make_trainer(toy)
    T.train_steps(first, toy, 2)
    first.history.append({"epoch": 1})
    ckpt = tmp_path / "run.ckpt.npz"
    first.save_checkpoint(ckpt)
    T.train_steps(first, toy, 1)  # work after the checkpoint is lost in a "crash"

    resumed = make_trainer(toy)
    resumed.load_checkpoint(ckpt)
    assert resumed.step == 2 and resumed.history == [{"epoch": 1}]
    T.train_steps(resumed, toy, 2)
    assert resumed.step == straight.step == 4
    assert_same_weights(resumed, straight)
    for name in straight.velocity:
        for k in straight.velocity[name]:
            np.testing.assert_array_equal(resumed.velocity[name][k], straight.velocity[name][k])


def test_fit_resumes_exactly_across_epochs(toy, tmp_path):
    """The CLI's path: `fit` checkpoints after every epoch; resuming gives the uninterrupted weights."""
    quiet = {"log": lambda s: None}
    straight = T.fit(make_trainer(toy, epochs=2, batch_size=30), toy, None, **quiet)

    ckpt = tmp_path / "fit.ckpt.npz"
    first = make_trainer(toy, epochs=1, batch_size=30)
    T.fit(first, toy, None, ckpt, **quiet)  # the run dies after epoch 1
    resumed = make_trainer(toy, epochs=2, batch_size=30)
    resumed.load_checkpoint(ckpt)
    T.fit(resumed, toy, None, **quiet)
    assert resumed.step == straight.step == 4
    assert_same_weights(resumed, straight)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def all_state(trainer: T.Trainer) -> dict:
    """Every array that decides what the next step does."""
    out = {f"p/{n}/{k}": v for n, p in trainer.params.items() for k, v in p.items()}
    out |= {f"v/{n}/{k}": v for n, p in trainer.velocity.items() for k, v in p.items()}
    return out | {"order": trainer.order, "position": np.array(trainer.position), "step": np.array(trainer.step)}


def assert_same_state(a: T.Trainer, b: T.Trainer):
    sa, sb = all_state(a), all_state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


# ---------------------------------------------------------------- the place in the data


def test_training_in_chunks_equals_one_call(toy):
    """The app trains in chunks of steps: any split gives the weights of one call, bit for bit.

    Batches of 17 from 60 pictures: every pass ends with a batch of 9, so the chunks cross passes
    at every possible point."""
    one = make_trainer(toy, batch_size=17)
    assert T.train_steps(one, toy, 30) == 30
    chunked = make_trainer(toy, batch_size=17)
    assert [T.train_steps(chunked, toy, n) for n in (7, 1, 10, 12)] == [7, 1, 10, 12]
    assert chunked.step == one.step == 30
    assert_same_state(chunked, one)
    for name in one.params:
        for k in one.params[name]:
            assert np.array_equal(chunked.params[name][k], one.params[name][k]), f"{name}.{k}"


def record_batches(trainer: T.Trainer) -> list:
    """Make `trainer` note every batch of indices it hands out."""
    seen, next_batch = [], trainer.next_batch

    def noting(n):
        idx = next_batch(n)
        seen.append(idx.copy())
        return idx
    trainer.next_batch = noting
    return seen


def test_every_picture_once_per_pass(toy):
    trainer = make_trainer(toy, batch_size=17, epochs=3)
    seen = record_batches(trainer)
    for n in (5, 2, 4, 1):  # chunks that end mid-pass
        T.train_steps(trainer, toy, n)
    assert trainer.step == 12 == trainer.total_steps
    assert [len(b) for b in seen] == [17, 17, 17, 9] * 3  # the rest of a pass is its last, smaller batch
    passes = [np.concatenate(seen[i:i + 4]) for i in range(0, 12, 4)]
    for p in passes:
        np.testing.assert_array_equal(np.sort(p), np.arange(len(toy)))  # each index exactly once
    assert not np.array_equal(passes[0], passes[1])  # and a new shuffle every pass


def test_next_batch_covers_any_size():
    base = M.tiny_vgg(["a", "b"], CHANNELS, (16, 16))
    for n, batch in ((23, 5), (20, 5), (3, 8), (1, 1)):
        trainer = T.Trainer(base, T.TrainConfig(batch_size=batch), steps_per_epoch=-(-n // batch))
        for _ in range(3):
            got = [trainer.next_batch(n) for _ in range(trainer.steps_per_epoch)]
            assert [len(b) for b in got] == [min(batch, n - i) for i in range(0, n, batch)]
            np.testing.assert_array_equal(np.sort(np.concatenate(got)), np.arange(n))


def test_checkpoint_mid_pass_resumes_in_place(toy, tmp_path):
    """Stopped mid-pass (a Stop button, a chunk end): the checkpoint keeps the order and the position."""
    straight = make_trainer(toy, batch_size=17)
    T.train_steps(straight, toy, 6)

    first = make_trainer(toy, batch_size=17)
    T.train_steps(first, toy, 2)  # half-way through the first pass
    ckpt = tmp_path / "mid.ckpt.npz"
    first.save_checkpoint(ckpt)
    resumed = make_trainer(toy, batch_size=17)
    resumed.load_checkpoint(ckpt)
    assert resumed.position == 34 and np.array_equal(resumed.order, first.order)
    T.train_steps(resumed, toy, 4)
    assert_same_state(resumed, straight)


def test_checkpoint_write_is_atomic(toy, tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint whole, and no half file behind."""
    trainer = make_trainer(toy)
    T.train_steps(trainer, toy, 2)
    ckpt = tmp_path / "run.ckpt.npz"
    trainer.save_checkpoint(ckpt)
    good = ckpt.read_bytes()
    T.train_steps(trainer, toy, 1)

    def dies_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # a kill arriving mid-write (a real SIGKILL stops the process here)
    monkeypatch.setattr(T.np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint(ckpt)
    assert ckpt.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["run.ckpt.npz"]
    monkeypatch.undo()
    again = make_trainer(toy)
    again.load_checkpoint(ckpt)
    assert again.step == 2


def test_old_checkpoint_without_order_starts_a_new_pass(toy, tmp_path):
    trainer = make_trainer(toy)
    T.train_steps(trainer, toy, 2)
    ckpt = tmp_path / "old.ckpt.npz"
    trainer.save_checkpoint(ckpt)
    with np.load(ckpt) as z:
        arrays = {k: z[k] for k in z.files if k != "order"}
    state = json.loads(str(arrays["state"]))
    del state["position"]
    arrays["state"] = np.array(json.dumps(state))
    np.savez(ckpt, **arrays)
    resumed = make_trainer(toy)
    resumed.load_checkpoint(ckpt)
    assert resumed.step == 2 and len(resumed.order) == 0
    assert len(resumed.next_batch(len(toy))) == 20  # a fresh pass


# ---------------------------------------------------------------- layers without a bias, workers


def no_bias_model(classes) -> M.Model:
    rng = np.random.default_rng(5)
    return M.Model((
        M.Layer("conv1", "conv", {"weight": rng.standard_normal((4, 3, 3, 3)) * 0.3}, {"stride": 1, "padding": 1}),
        M.Layer("relu1", "relu"),
        M.Layer("conv2", "conv", {"weight": rng.standard_normal((4, 4, 3, 3)) * 0.2,
                                  "bias": np.zeros(4)}, {"stride": 2, "padding": 1}),
        M.Layer("relu2", "relu"),
        M.Layer("flatten", "flatten"),
        M.Layer("dense", "dense", {"weight": rng.standard_normal((len(classes), 4 * 8 * 8)) * 0.05}),
        M.Layer("softmax", "softmax"),
    ), classes, (16, 16))


def test_layers_without_bias_train_like_torch(toy):
    """A conv and a dense layer without a bias train, and match torch.optim.SGD on the same net."""
    torch = require_torch()
    base = no_bias_model(toy.classes)
    trainer = T.Trainer(base, T.TrainConfig(batch_size=12, weight_decay=5e-3), steps_per_epoch=5)
    trainer.lr_at = lambda step: 0.05
    assert set(trainer.params["conv1"]) == {"weight"} and set(trainer.params["dense"]) == {"weight"}
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(256, 3, bias=False)).double()
    ours = [la for la in base.layers if la.params]
    theirs = [m for m in net if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        for la, mod in zip(ours, theirs, strict=True):
            for k, v in la.params.items():
                getattr(mod, k).copy_(torch.from_numpy(v.astype(np.float64)))
    opt = torch.optim.SGD([{"params": [m.weight for m in theirs], "weight_decay": 5e-3},
                           {"params": [theirs[1].bias], "weight_decay": 0.0}], lr=0.05, momentum=0.9)
    x, y = base.normalize(toy.images[:12]), toy.labels[:12]
    for _ in range(2):
        loss, _ = trainer.train_step(x, y)
        opt.zero_grad()
        tloss = nn.functional.cross_entropy(net(torch.from_numpy(x.astype(np.float64))), torch.from_numpy(y))
        tloss.backward()
        opt.step()
        assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for la, mod in zip(ours, theirs, strict=True):
        for k in la.params:
            np.testing.assert_allclose(trainer.params[la.name][k], getattr(mod, k).detach().numpy(),
                                       rtol=1e-4, atol=1e-5, err_msg=f"{la.name}.{k}")


def test_workers_share_a_batch(toy):
    """Two workers, each on half the batch, give the one-worker step (up to float rounding), and repeat exactly."""
    one, two, again = make_trainer(toy), make_trainer(toy, threads=2), make_trainer(toy, threads=2)
    x, y = one.base.normalize(toy.images[:20]), toy.labels[:20]
    for _ in range(3):
        results = [t.train_step(x, y) for t in (one, two, again)]
        assert results[1] == results[2]
        assert results[0][0] == pytest.approx(results[1][0], rel=1e-5) and results[0][1] == results[1][1]
    assert_same_state(two, again)
    for name in one.params:
        for k in one.params[name]:
            np.testing.assert_allclose(two.params[name][k], one.params[name][k], rtol=1e-4, atol=1e-6)
    assert T.evaluate(two.model(), toy, batch_size=7, threads=3) == T.evaluate(two.model(), toy)


def test_frozen_layers_stay_and_the_rest_learn(toy):
    trainer = make_trainer(toy, frozen=("conv1_1", "conv1_2"))
    w0 = {n: {k: v.copy() for k, v in p.items()} for n, p in trainer.params.items()}
    T.train_steps(trainer, toy, 3)
    for name, p in trainer.params.items():
        for k, v in p.items():
            assert np.array_equal(v, w0[name][k]) == (name in ("conv1_1", "conv1_2")), f"{name}.{k}"


def test_clock():
    assert T._clock(0) == "0:00:00"
    assert T._clock(3723.9) == "1:02:03"


# ---------------------------------------------------------------- stopping and progress


def test_train_steps_reports_progress_and_stops(toy):
    trainer = make_trainer(toy)
    heard = []
    done = T.train_steps(trainer, toy, 10, callback=heard.append, should_stop=lambda: len(heard) >= 3)
    assert done == 3 == trainer.step  # stopped before the fourth step, not after it
    assert all(isinstance(p, T.Progress) for p in heard)
    assert [p.step for p in heard] == [1, 2, 3]
    p = heard[-1]
    assert p.total_steps == trainer.total_steps
    assert p.epoch == pytest.approx(3 / trainer.steps_per_epoch)
    assert np.isfinite(p.loss) and 0 <= p.accuracy <= 1 and p.images_per_s > 0
    assert p.lr == pytest.approx(trainer.lr_at(2))


def test_should_stop_at_once_trains_nothing(toy):
    trainer = make_trainer(toy)
    w0 = trainer.params["conv1_1"]["weight"].copy()
    assert T.train_steps(trainer, toy, 5, should_stop=lambda: True) == 0
    assert trainer.step == 0
    np.testing.assert_array_equal(trainer.params["conv1_1"]["weight"], w0)


def test_train_steps_ends_with_the_schedule(toy):
    trainer = make_trainer(toy, epochs=1)
    assert T.train_steps(trainer, toy, 100) == trainer.total_steps == 3


# ---------------------------------------------------------------- augmentation


def test_augment_keeps_shape_and_dtype(toy):
    rng = np.random.default_rng(0)
    x = toy.images[:10]
    before = x.copy()
    for padding, flip in ((4, True), (2, False), (0, True), (0, False)):
        out = T.augment(x, rng, padding, flip)
        assert out.shape == x.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(x, before)  # the dataset itself is never changed


def test_augment_flips_and_crops(toy):
    rng = np.random.default_rng(1)
    x = toy.images[:20]
    out = T.augment(x, rng, 0, True)
    flipped = [np.array_equal(o, a[:, ::-1]) and not np.array_equal(o, a) for o, a in zip(out, x, strict=True)]
    kept = [np.array_equal(o, a) for o, a in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)

    p = 2
    out = T.augment(x, rng, p, False)
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    H, W = x.shape[1:3]
    for o, pad in zip(out, padded, strict=True):
        crops = [pad[i:i + H, j:j + W] for i in range(2 * p + 1) for j in range(2 * p + 1)]
        assert any(np.array_equal(o, c) for c in crops)


# ---------------------------------------------------------------- the command line


def write_image_folder(root, data: D.Dataset, n_test=3):
    for split, start, stop in (("train", 0, len(data) - n_test * 3), ("test", len(data) - n_test * 3, len(data))):
        for i in range(start, stop):
            folder = root / split / data.classes[data.labels[i]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(data.images[i]).save(folder / f"{i:03d}.png")


def test_cli_end_to_end(tmp_path, capsys):
    write_image_folder(tmp_path / "toy", toy_dataset(n=30, size=32))
    out = tmp_path / "model.npz"
    args = ["--data", str(tmp_path / "toy"), "--out", str(out), "--epochs", "1", "--batch-size", "8",
            "--channels", "2,2,4,4", "--seed", "3"]
    assert T.main(args) == 0
    m = M.load_model(out)
    assert m.classes == ("blob", "horizontal", "vertical")  # sorted folder names
    assert [la.params["weight"].shape[0] for la in m.layers if la.kind == "conv"] == [2, 2, 4, 4]
    assert 0.0 <= m.meta["test_accuracy"] <= 1.0
    assert m.meta["test_images"] == 9 and m.meta["train_images"] == 21
    assert m.meta["command"].startswith("python -m cnnviz.train --data")
    assert len(m.meta["history"]) == 1
    assert m.preprocessing["std"][0] > 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed

    assert T.main([*args[:5], "2", *args[6:], "--resume"]) == 0  # one more epoch on top of the checkpoint
    assert "resumed at step 3" in capsys.readouterr().out
    assert [h["epoch"] for h in M.load_model(out).meta["history"]] == [1, 2]


ROOT = Path(__file__).resolve().parent.parent
# The command as `python -m cnnviz.train` runs it, except that it hangs right after writing its first
# checkpoint, so the test's kill lands exactly there on any machine, fast or slow.
HANG_AFTER_FIRST_CHECKPOINT = """
import sys, threading
from cnnviz import train as T
save = T.Trainer.save_checkpoint
def save_then_hang(self, path):
    save(self, path)
    print("first checkpoint written", flush=True)
    threading.Event().wait()
T.Trainer.save_checkpoint = save_then_hang
sys.exit(T.main(sys.argv[1:]))
"""


def saved_model(path) -> tuple[dict, dict]:
    """-> (every parameter array, the description with the meta fields that vary between runs taken out)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arch = json.loads(str(arrays.pop("architecture")))
    meta = arch.pop("meta")
    arch["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in meta["history"]]
    arch["test_accuracy"] = meta["test_accuracy"]
    return arrays, arch


def run_until_first_checkpoint(args: list) -> list:
    """Start the command in its own process, wait for its first checkpoint, kill it -> what it printed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", HANG_AFTER_FIRST_CHECKPOINT, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [*map(lines.put, child.stdout), lines.put(None)], daemon=True).start()
    printed = []
    try:
        while not printed or printed[-1] != "first checkpoint written\n":
            line = lines.get(timeout=600)  # only a bound for a stuck child; the event ends the wait
            assert line is not None, "the command ended before its first checkpoint:\n" + "".join(printed)
            printed.append(line)
    finally:
        child.kill()
        child.wait()
    assert child.returncode != 0  # it was killed, not finished
    return printed


def test_cli_killed_after_first_checkpoint_resumes_bit_identical(tmp_path, capsys):
    """`--epochs 3` straight through, and the same command killed after its first checkpoint and run
    again with --resume, save the same weights, bit for bit (timings and dates aside)."""
    data = tmp_path / "pictures"
    write_image_folder(data, toy_dataset(n=45, size=16), n_test=3)  # 36 training pictures: 5 batches of 8 an epoch

    def command(out):
        return ["--data", str(data), "--out", str(out), "--epochs", "3", "--batch-size", "8",
                "--channels", "2,2,4,4", "--seed", "1", "--threads", "2"]
    straight = tmp_path / "straight.npz"
    assert T.main(command(straight)) == 0

    killed = tmp_path / "killed.npz"
    printed = run_until_first_checkpoint(command(killed))
    assert not killed.exists() and Path(f"{killed}.ckpt.npz").exists()
    assert json.loads(printed[-2])["epoch"] == 1
    capsys.readouterr()
    assert T.main([*command(killed), "--resume"]) == 0
    assert "resumed at step 5 " in capsys.readouterr().out

    (a, arch_a), (b, arch_b) = saved_model(straight), saved_model(killed)
    assert arch_a == arch_b and len(arch_a["history"]) == 3
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    with np.load(f"{straight}.ckpt.npz") as za, np.load(f"{killed}.ckpt.npz") as zb:
        assert za.files == zb.files
        for k in za.files:
            if k != "state":  # weights, momentum and the place in the data; the state's history has timings
                assert np.array_equal(za[k], zb[k]), k
