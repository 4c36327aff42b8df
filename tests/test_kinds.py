"""The table of layer kinds and the window maths, checked against the layer functions themselves:
every kind's backward against finite differences, its shape rule against its forward pass, every
window against the value the layer computes there, every receptive field by changing pixels."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz import layers as L
from cnnviz import model as M
from tests.test_layers import numeric_grad

RNG = np.random.default_rng(0)

# One layer of every kind, with an input it can take: (kind, params, options, input shape without N).
EXAMPLES = {
    "conv": ({"weight": RNG.standard_normal((3, 2, 3, 2)), "bias": RNG.standard_normal(3)},
             {"stride": 2, "padding": 1}, (2, 7, 6)),
    "relu": ({}, {}, (2, 4, 5)),
    "tanh": ({}, {}, (2, 4, 5)),
    "sigmoid": ({}, {}, (2, 4, 5)),
    "maxpool": ({}, {"size": 3, "stride": 2}, (2, 7, 8)),
    "avgpool": ({}, {"size": 2}, (2, 5, 6)),
    "flatten": ({}, {}, (2, 3, 4)),
    "dense": ({"weight": RNG.standard_normal((4, 6)), "bias": RNG.standard_normal(4)}, {}, (6,)),
    "softmax": ({}, {}, (5,)),
}


def test_every_kind_has_an_example():
    assert set(EXAMPLES) == set(L.KINDS) == set(M.KINDS)
    assert L.ACTIVATIONS == ("relu", "tanh", "sigmoid")


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_shape_rule_matches_the_forward_pass(name):
    kind = L.KINDS[name]
    params, options, shape = EXAMPLES[name]
    x = RNG.standard_normal((2, *shape))
    y, _ = kind.forward(x, params, options)
    assert y.shape == (2, *kind.shape(shape, params, options))


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_backward_matches_finite_differences(name):
    """d(sum(y * r))/d(anything) for a random r, by the table's backward and by central differences."""
    kind = L.KINDS[name]
    params, options, shape = EXAMPLES[name]
    params = {k: np.array(v, np.float64) for k, v in params.items()}
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *shape)) + 0.05  # keeps values (and ties in max pooling) off the kinks
    if name == "maxpool":
        x = rng.permutation(np.arange(x.size, dtype=np.float64)).reshape(x.shape) / 7  # no ties
    y, cache = kind.forward(x, params, options)
    r = rng.standard_normal(y.shape)
    dx, grads = kind.backward(r, cache, params, options, True)

    def loss():
        return float(np.sum(kind.forward(x, params, options)[0] * r))

    for target, analytic in [(x, dx)] + [(params[k], grads[k]) for k in params]:
        np.testing.assert_allclose(analytic, numeric_grad(loss, target), rtol=1e-5, atol=1e-6)
    assert set(grads) == set(params)


@pytest.mark.parametrize("name", ["conv", "dense"])
def test_a_layer_without_a_bias_runs_and_learns_only_its_weights(name):
    kind = L.KINDS[name]
    params, options, shape = EXAMPLES[name]
    with_bias = {k: np.array(v) for k, v in params.items()}
    without = {"weight": with_bias["weight"]}
    x = RNG.standard_normal((2, *shape))
    y0, cache = kind.forward(x, without, options)
    y1, _ = kind.forward(x, {**without, "bias": np.zeros_like(with_bias["bias"])}, options)
    np.testing.assert_allclose(y0, y1)
    _, grads = kind.backward(np.ones_like(y0), cache, without, options, True)
    assert set(grads) == {"weight"}


def test_need_dx_false_skips_the_input_gradient_but_not_the_weights():
    kind = L.KINDS["conv"]
    params, options, shape = EXAMPLES["conv"]
    x = RNG.standard_normal((2, *shape))
    y, cache = kind.forward(x, params, options)
    dx, full = kind.backward(np.ones_like(y), cache, params, options, True)
    none, part = kind.backward(np.ones_like(y), cache, params, options, False)
    assert dx is not None and none is None
    for k in full:
        np.testing.assert_allclose(part[k], full[k])


# ---------------------------------------------------------------- window maths


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_window_times_the_filter_is_the_conv_output(stride, padding):
    x = RNG.standard_normal((3, 9, 8)).astype(np.float32)
    w = RNG.standard_normal((2, 3, 3, 4)).astype(np.float32)
    b = RNG.standard_normal(2).astype(np.float32)
    y = L.conv2d(x[None], w, b, stride, padding)[0]  # (2, H', W')
    for f in range(2):
        for i in range(y.shape[1]):
            for j in range(y.shape[2]):
                win = L.window(x, i, j, 3, 4, stride, padding)  # (3, 3, 4)
                assert win.shape == (3, 3, 4)
                assert np.sum(win * w[f]) + b[f] == pytest.approx(y[f, i, j], abs=1e-4)


def test_window_of_a_pool_holds_its_maximum():
    x = RNG.standard_normal((2, 7, 7))
    y = L.max_pool2d(x[None], 3, 2)[0]
    for i in range(y.shape[1]):
        for j in range(y.shape[2]):
            np.testing.assert_array_equal(L.window(x, i, j, 3, 3, 2, 0).max(axis=(1, 2)), y[:, i, j])


def test_window_box_counts_the_padding():
    assert L.window_box(0, 0, 3, 3, 1, 1) == (-1, -1, 2, 2)
    assert L.window_box(2, 3, 3, 5, 2, 1) == (3, 5, 6, 10)


def _changed(model, upto, x, i, j, r, c):
    """Does output (i, j) of every map after `upto` layers change when pixel (r, c) changes?"""
    def run(inp):
        out = inp[None]
        for la in model.layers[:upto]:
            out = la(out)
        return out[0, :, i, j]
    y = x.copy()
    y[:, r, c] += 10.0
    return not np.allclose(run(x), run(y))


@pytest.mark.parametrize("upto", [1, 2, 3, 5, 6, 8, 10])
def test_receptive_field_is_exactly_the_pixels_that_matter(upto):
    """Change one pixel inside the field: the output moves; anywhere outside it: it does not."""
    rng = np.random.default_rng(upto)
    m = M.tiny_vgg(["a", "b"], (4, 4, 4, 4), input_size=(16, 16), seed=3)
    x = rng.standard_normal((3, 16, 16)).astype(np.float32) + 2.0  # mostly positive: ReLU lets changes through
    layers = m.layers[:upto]
    out = x[None]
    for la in layers:
        out = la(out)
    i, j = out.shape[2] // 2, out.shape[3] // 2
    top, left, bottom, right = L.receptive_field(layers, i, j)
    inside = [(r, c) for r in range(max(top, 0), min(bottom, 16)) for c in range(max(left, 0), min(right, 16))]
    border = [(r, c) for r in (top - 1, bottom) for c in range(left, right) if 0 <= r < 16 and 0 <= c < 16]
    border += [(r, c) for c in (left - 1, right) for r in range(top, bottom) if 0 <= r < 16 and 0 <= c < 16]
    assert border, "the field should not cover the whole picture at the centre"
    assert all(not _changed(m, upto, x, i, j, r, c) for r, c in border)
    # Max pooling passes only its maxima, so not every pixel inside changes the output; the edges of the
    # field (its first and last rows and columns) must all be reachable through some path for the sizes to
    # be right: check the four corners' rows and columns touch the output at least once.
    hit = {(r, c) for r, c in inside if _changed(m, upto, x, i, j, r, c)}
    assert {r for r, _ in hit} >= {max(top, 0), min(bottom, 16) - 1}
    assert {c for _, c in hit} >= {max(left, 0), min(right, 16) - 1}


def test_receptive_field_sizes_of_tiny_vgg():
    """3, 5, then pooling doubles: 6, 10, 14, 16 pixels, the patch sizes the overview teaches."""
    m = M.tiny_vgg(["a", "b"], (4, 4, 4, 4), input_size=(32, 32))
    sizes = []
    for upto in (1, 3, 5, 6, 8, 10):
        top, left, bottom, right = L.receptive_field(m.layers[:upto], 5, 5)
        assert bottom - top == right - left
        sizes.append(bottom - top)
    assert sizes == [3, 5, 6, 10, 14, 16]


# ---------------------------------------------------------------- models are values


def test_a_model_cannot_be_changed_in_place():
    m = M.tiny_vgg(["a", "b"], (4, 4, 4, 4), input_size=(16, 16))
    m = M.Model(m.layers, m.classes, m.input_size, {"mean": [0.1] * 3, "std": [0.2] * 3},
                {"dataset": "x", "history": [{"epoch": 1}]})
    with pytest.raises(TypeError):
        m.meta["dataset"] = "y"
    with pytest.raises(TypeError):
        m.meta["history"][0]["epoch"] = 2
    with pytest.raises((TypeError, AttributeError)):
        m.meta["history"].append({})
    with pytest.raises(TypeError):
        m.preprocessing["mean"] = [0, 0, 0]
    with pytest.raises(TypeError):
        m.layers[0].options["padding"] = 0
    with pytest.raises(TypeError):
        m.layers[0].params["weight"] = np.zeros(1)
    with pytest.raises(ValueError):
        m.layers[0].params["weight"][0, 0, 0, 0] = 1.0
    edited = m.with_filter("conv1_1", 0, np.ones((3, 3, 3)), 0.5)
    assert m.layers[0].params["weight"][0, 0, 0, 0] != 1.0 or not np.all(m.layers[0].params["weight"][0] == 1)
    assert edited.meta == m.meta and edited.layers[1] is m.layers[1]


def test_a_conv_without_bias_traces_and_takes_an_edited_filter():
    m = M.tiny_vgg(["a", "b"], (4, 4, 4, 4), input_size=(16, 16))
    bare = [M.Layer(la.name, la.kind, {"weight": la.params["weight"]}, la.options) if la.kind == "conv" else la
            for la in m.layers]
    nb = M.Model(bare, m.classes, m.input_size)
    pic = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(M.trace(nb, pic)[-1].output, M.trace(m, pic)[-1].output, atol=1e-6)
    edited = nb.with_filter("conv1_1", 1, np.zeros((3, 3, 3)), 0.25)
    b = edited.layer("conv1_1").params["bias"]
    np.testing.assert_array_equal(b, [0, 0.25, 0, 0])
    out = M.trace(edited, pic)[1].output  # (4, 16, 16)
    np.testing.assert_allclose(out[1], 0.25)
    unbiased = nb.with_filter("conv1_1", 1, np.zeros((3, 3, 3)))
    assert "bias" not in unbiased.layer("conv1_1").params
