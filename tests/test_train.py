"""cnnviz.train on a tiny made-up dataset: learning, repeatability, checkpoints, stopping, the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnviz import data as D
from cnnviz import model as M
from cnnviz import train as T

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
    tr = make_trainer(toy)
    before = dataset_loss(tr.model(), toy)
    done = T.train_steps(tr, toy, 30)
    after = dataset_loss(tr.model(), toy)
    assert done == 30 == tr.step
    assert after < before / 2, (before, after)
    assert T.evaluate(tr.model(), toy) > 0.8


def test_train_step_matches_torch_sgd(toy):
    """Two steps of our SGD (momentum, weight decay on weights only) equal torch.optim.SGD on the same net."""
    torch = pytest.importorskip("torch")
    tr = make_trainer(toy, weight_decay=5e-3)
    lr = 0.05
    tr.lr_at = lambda step: lr  # a constant rate, to compare with a plain torch optimiser
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 3)).double()
    ours = [la for la in tr.base.layers if la.params]
    theirs = [m for m in net if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    with torch.no_grad():
        for la, mod in zip(ours, theirs, strict=True):
            mod.weight.copy_(torch.from_numpy(tr.params[la.name]["weight"].astype(np.float64)))
            mod.bias.copy_(torch.from_numpy(tr.params[la.name]["bias"].astype(np.float64)))
    opt = torch.optim.SGD([{"params": [m.weight for m in theirs], "weight_decay": 5e-3},
                           {"params": [m.bias for m in theirs], "weight_decay": 0.0}], lr=lr, momentum=0.9)
    x = tr.base.normalize(toy.images[:12])
    y = toy.labels[:12]
    for _ in range(2):
        loss, _ = tr.train_step(x, y)
        opt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x.astype(np.float64))), torch.from_numpy(y))
        tloss.backward()
        opt.step()
        assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for la, mod in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(tr.params[la.name]["weight"], mod.weight.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(tr.params[la.name]["bias"], mod.bias.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_learning_rate_schedule(toy):
    tr = make_trainer(toy, epochs=10)  # 3 steps per epoch, warm-up over the first 3
    assert tr.lr_at(0) == pytest.approx(0.05 / 3)
    assert tr.lr_at(2) == pytest.approx(0.05)
    assert tr.lr_at(3) == pytest.approx(0.05)
    assert tr.lr_at(tr.total_steps) == pytest.approx(0.0, abs=1e-12)
    lrs = [tr.lr_at(s) for s in range(3, tr.total_steps)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_trainer_leaves_the_base_model_alone(toy):
    tr = make_trainer(toy)
    w0 = np.array(tr.base.layer("conv1_1").params["weight"])
    T.train_steps(tr, toy, 3)
    np.testing.assert_array_equal(tr.base.layer("conv1_1").params["weight"], w0)
    assert not np.array_equal(tr.params["conv1_1"]["weight"], w0)
    m = tr.model({"note": "x"})
    assert m.meta["note"] == "x"
    assert not m.layer("conv1_1").params["weight"].flags.writeable


# ---------------------------------------------------------------- repeatability and checkpoints


def test_seeded_runs_are_repeatable(toy):
    a, b, c = make_trainer(toy, seed=1), make_trainer(toy, seed=1), make_trainer(toy, seed=2)
    for tr in (a, b, c):
        T.train_steps(tr, toy, 4)
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


# ---------------------------------------------------------------- stopping and progress


def test_train_steps_reports_progress_and_stops(toy):
    tr = make_trainer(toy)
    heard = []
    done = T.train_steps(tr, toy, 10, callback=heard.append, should_stop=lambda: len(heard) >= 3)
    assert done == 3 == tr.step  # stopped before the fourth step, not after it
    assert all(isinstance(p, T.Progress) for p in heard)
    assert [p.step for p in heard] == [1, 2, 3]
    p = heard[-1]
    assert p.total_steps == tr.total_steps
    assert p.epoch == pytest.approx(3 / tr.steps_per_epoch)
    assert np.isfinite(p.loss) and 0 <= p.accuracy <= 1 and p.images_per_s > 0
    assert p.lr == pytest.approx(tr.lr_at(2))


def test_should_stop_at_once_trains_nothing(toy):
    tr = make_trainer(toy)
    w0 = tr.params["conv1_1"]["weight"].copy()
    assert T.train_steps(tr, toy, 5, should_stop=lambda: True) == 0
    assert tr.step == 0
    np.testing.assert_array_equal(tr.params["conv1_1"]["weight"], w0)


def test_train_steps_ends_with_the_schedule(toy):
    tr = make_trainer(toy, epochs=1)
    assert T.train_steps(tr, toy, 100) == tr.total_steps == 3


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
