"""cnnviz.teaching: the generated teaching dataset, transfer models, frozen layers, hold-out splits, plans."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz import model as M
from cnnviz import teaching as T
from cnnviz import train as TR
from cnnviz.ui.walkable import check_walkable


@pytest.fixture(scope="module")
def small():
    return T.teaching_dataset(per_class=12, seed=3)


def test_teaching_dataset_shapes_balance_and_seed(small):
    assert small.images.shape == (12 * len(T.CLASSES), 32, 32, 3) and small.images.dtype == np.uint8
    assert small.labels.dtype == np.int64 and small.classes == list(T.CLASSES)
    np.testing.assert_array_equal(np.bincount(small.labels), [12] * len(T.CLASSES))
    assert len(set(small.labels[:10].tolist())) > 1  # shuffled, not one class after another
    again = T.teaching_dataset(per_class=12, seed=3)
    np.testing.assert_array_equal(again.images, small.images)
    np.testing.assert_array_equal(again.labels, small.labels)
    other = T.teaching_dataset(per_class=12, seed=4)
    assert not np.array_equal(other.images, small.images)
    assert len({img.tobytes() for img in small.images}) == len(small)  # every picture its own


def test_teaching_dataset_other_sizes_and_classes():
    d = T.teaching_dataset(per_class=3, classes=("circles", "crosses"), size=48, seed=0)
    assert d.images.shape == (6, 48, 48, 3) and d.classes == ["circles", "crosses"]


def test_stripes_run_the_way_their_class_says():
    """Vertical stripes change along a row and stay the same down a column; horizontal ones the other way."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = T.draw("vertical stripes", rng, noise=0).astype(float)
        h = T.draw("horizontal stripes", rng, noise=0).astype(float)
        assert np.abs(np.diff(v, axis=0)).sum() == 0 < np.abs(np.diff(v, axis=1)).sum()
        assert np.abs(np.diff(h, axis=1)).sum() == 0 < np.abs(np.diff(h, axis=0)).sum()


def test_every_class_has_two_clear_colours():
    rng = np.random.default_rng(1)
    for kind in T.CLASSES:
        for _ in range(10):
            img = T.draw(kind, rng, noise=0)
            colours = np.unique(img.reshape(-1, 3), axis=0)
            assert len(colours) == 2, kind  # a shape and its background, nothing left empty
            assert abs(colours[0].mean() - colours[1].mean()) > 70


def test_subset():
    d = T.teaching_dataset(per_class=10, seed=0)
    s = T.subset(d, 7, seed=1)
    assert len(s) == 7 and s.classes == d.classes
    assert T.subset(d, 1000) is d


# ---------------------------------------------------------------- networks


def test_live_model_is_small_tiny_vgg_normalised_by_its_data(small):
    m = T.live_model(small.classes, small)
    check_walkable(m)
    assert [la.params["weight"].shape[0] for la in m.layers if la.kind == "conv"] == list(T.LIVE_CHANNELS)
    x = m.normalize(small.images)  # (N, 3, 32, 32)
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-3)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-2)


def test_transfer_model_keeps_the_base_and_replaces_the_dense_layer():
    base = M.tiny_vgg([str(k) for k in range(10)], (4, 4, 8, 8), seed=5)
    m = T.transfer_model(["a", "b", "c"], base, seed=1)
    check_walkable(m)
    assert m.classes == ("a", "b", "c") and m.input_size == base.input_size
    assert m.preprocessing == base.preprocessing
    assert [la.name for la in m.layers] == [la.name for la in base.layers]
    for name in [la.name for la in base.layers if la.kind == "conv"]:
        np.testing.assert_array_equal(m.layer(name).params["weight"], base.layer(name).params["weight"])
    assert m.layer("dense").params["weight"].shape == (3, 8 * 8 * 8)
    assert M.forward(m, np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 3)


# ---------------------------------------------------------------- frozen layers


def _trainer(data, frozen=(), seed=0):
    m = T.live_model(data.classes, data, channels=(4, 4, 8, 8), seed=seed)
    cfg = TR.TrainConfig(epochs=5, batch_size=20, lr=0.05, seed=seed, frozen=frozen)
    return TR.Trainer(m, cfg, steps_per_epoch=3)


def test_frozen_layers_stay_and_the_others_learn(small):
    frozen = ("conv1_1", "conv1_2", "conv2_1")
    tr = _trainer(small, frozen)
    before = {n: {k: v.copy() for k, v in p.items()} for n, p in tr.params.items()}
    TR.train_steps(tr, small, 5)
    for name in tr.params:
        same = all(np.array_equal(before[name][k], tr.params[name][k]) for k in tr.params[name])
        assert same == (name in frozen), name


def test_frozen_gradients_equal_the_full_backward_pass(small):
    """Stopping the backward pass early changes nothing for the layers that still learn."""
    x, y = small.images[:8], small.labels[:8]
    full, part = _trainer(small), _trainer(small, ("conv1_1", "conv1_2"))
    grads = []
    for tr in (full, part):
        logits, caches = tr._forward(tr.base.normalize(x))
        grads.append(tr._backward(TR.L.cross_entropy_backward(logits, y), caches))
    assert set(grads[1]) == {"conv2_1", "conv2_2", "dense"}
    for name, g in grads[1].items():
        for k in g:
            np.testing.assert_allclose(g[k], grads[0][name][k], rtol=1e-6, atol=1e-7)


def test_only_the_dense_layer_learns_when_every_conv_is_frozen(small):
    tr = _trainer(small, ("conv1_1", "conv1_2", "conv2_1", "conv2_2"))
    w = tr.params["dense"]["weight"].copy()
    c = tr.params["conv2_2"]["weight"].copy()
    TR.train_steps(tr, small, 3)
    assert not np.array_equal(w, tr.params["dense"]["weight"])
    np.testing.assert_array_equal(c, tr.params["conv2_2"]["weight"])


def test_freezing_an_unknown_layer_is_refused(small):
    with pytest.raises(ValueError, match="cannot freeze"):
        _trainer(small, ("conv9_9",))


# ---------------------------------------------------------------- hold-out and plans


def test_split_holdout_keeps_some_of_every_class_aside():
    rng = np.random.default_rng(0)
    pics = [[rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(n)] for n in (5, 12, 30)]
    train, held = T.split_holdout(pics, 0.2, seed=0)
    np.testing.assert_array_equal(np.bincount(held.labels), [1, 2, 6])
    np.testing.assert_array_equal(np.bincount(train.labels), [4, 10, 24])
    seen = {p.tobytes() for p in train.images}
    assert not seen & {p.tobytes() for p in held.images}
    assert len(seen) + len(held) == 47


def test_plan_schedule_ends_with_its_steps(small):
    m = T.live_model(small.classes, small)
    cfg = TR.TrainConfig(epochs=50, batch_size=16, lr=0.1)
    for cap in (2, 4, 5, 37, 1000):  # 60 pictures: 4 steps a pass
        plan = T.plan_for(m, small, None, cfg, cap, "x")
        assert plan.steps <= cap and plan.trainer.total_steps == plan.steps
        assert plan.trainer.lr_at(plan.steps) == pytest.approx(0, abs=1e-12)
    assert T.plan_for(m, small, None, cfg, 1000, "x").steps == 200


def test_teach_plan_transfer_and_scratch():
    rng = np.random.default_rng(0)
    pics = [[T.draw(k, rng, 64) for _ in range(6)] for k in ("circles", "crosses")]
    base = M.tiny_vgg([str(k) for k in range(10)], (4, 4, 8, 8), seed=5)
    plan = T.teach_plan(["o", "x"], pics, T.TeachConfig(), base, 100)
    assert plan.train.images.shape[1:] == (32, 32, 3) and len(plan.train) == 10 and len(plan.test) == 2
    assert plan.train.classes == plan.test.classes == ["o", "x"]
    assert plan.trainer.config.frozen == T.TeachConfig.frozen
    assert plan.trainer.base.layer("conv1_1") is base.layer("conv1_1")
    scratch = T.teach_plan(["o", "x"], pics, T.TeachConfig(transfer=False), base, 100)
    assert scratch.trainer.config.frozen == ()
    assert scratch.trainer.base.layer("conv1_1").params["weight"].shape[0] == T.LIVE_CHANNELS[0]
