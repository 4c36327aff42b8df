"""cnnviz.layers against references: the loop conv, scipy, torch.nn.functional, finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d

from cnnviz import layers as L
from tests.torchref import require_torch

# (N, C, H, W, F, KH, KW, stride, padding): square and non-square, odd sizes, every stride and padding
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0),
    (2, 3, 7, 7, 4, 3, 3, 1, 1),
    (2, 3, 8, 6, 2, 3, 3, 2, 1),
    (1, 2, 9, 7, 3, 2, 3, 3, 2),
    (3, 2, 6, 10, 5, 1, 1, 1, 0),
    (1, 4, 11, 5, 2, 5, 3, 2, 2),
    (2, 1, 4, 4, 3, 4, 4, 1, 0),
    (1, 3, 10, 9, 2, 3, 2, 3, 1),
]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _conv_inputs(case, seed=0, dtype=np.float64):
    N, C, H, W, F, KH, KW, _, _ = case
    rng = _rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, KH, KW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f at x (float64), one entry at a time."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


# ---------------------------------------------------------------- conv2d forward


def test_conv_output_size():
    assert L.conv_output_size(32, 3, 1, 1) == 32
    assert L.conv_output_size(7, 3, 2, 0) == 3
    assert L.conv_output_size(8, 3, 3, 2) == 4  # floor((8 + 4 - 3) / 3) + 1
    assert L.conv_output_size(7, 2, 3, 0) == 2  # floor mode: the last column is never reached


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_matches_loop(case, with_bias):
    N, C, H, W, F, KH, KW, s, p = case
    x, w, b = _conv_inputs(case)
    b = b if with_bias else None
    y = L.conv2d(x, w, b, stride=s, padding=p)
    ref = L.conv2d_loop(x, w, b, stride=s, padding=p)
    Ho, Wo = L.conv_output_size(H, KH, s, p), L.conv_output_size(W, KW, s, p)
    assert y.shape == ref.shape == (N, F, Ho, Wo)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CONV_CASES if c[7] == 1])
def test_conv2d_matches_scipy_correlate2d(case):
    """Stride 1: each output map is the sum over channels of 'valid' cross-correlations, plus the bias."""
    N, C, H, W, F, KH, KW, s, p = case
    x, w, b = _conv_inputs(case, seed=1)
    y = L.conv2d(x, w, b, stride=s, padding=p)
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ref = np.stack([
        np.stack([sum(correlate2d(xp[n, c], w[f, c], mode="valid") for c in range(C)) + b[f]
                  for f in range(F)])
        for n in range(N)])
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv2d_matches_scipy_with_stride():
    """A stride only keeps every s-th position of the stride-1 result."""
    x, w, _ = _conv_inputs((1, 2, 9, 8, 1, 3, 3, 2, 0), seed=2)
    full = sum(correlate2d(x[0, c], w[0, c], mode="valid") for c in range(2))
    for s in (2, 3):
        y = L.conv2d(x, w, None, stride=s)
        assert y.shape == (1, 1, *full[::s, ::s].shape)
        np.testing.assert_allclose(y[0, 0], full[::s, ::s], rtol=1e-12, atol=1e-12)


def test_conv2d_known_numbers():
    """A vertical-edge kernel on a step picture: the edge lights up, flat parts give zero."""
    x = np.zeros((1, 1, 4, 4))
    x[..., 2:] = 1.0
    w = np.array([[[[-1.0, 0.0, 1.0]] * 3]])  # (1, 1, 3, 3)
    y = L.conv2d(x, w)
    np.testing.assert_array_equal(y[0, 0], [[3.0, 3.0], [3.0, 3.0]])
    y = L.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(y[0, 0, 1], [0.0, 3.0, 3.0, -3.0])


def test_conv2d_keeps_float32():
    x, w, b = _conv_inputs(CONV_CASES[1], dtype=np.float32)
    y = L.conv2d(x, w, b, padding=1)
    assert y.dtype == np.float32
    assert y.flags.c_contiguous


def test_conv2d_channel_mismatch_raises():
    with pytest.raises(ValueError, match="channels"):
        L.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 4, 3, 3)))


# ---------------------------------------------------------------- the other forward functions


def test_relu_tanh_sigmoid_values():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(L.relu(x), [0, 0, 0, 0.5, 3.0])
    np.testing.assert_allclose(L.tanh(x), np.tanh(x))
    np.testing.assert_allclose(L.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)


def test_sigmoid_never_overflows():
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        y = L.sigmoid(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [0, 0, 0.5, 1, 1], atol=1e-30)


def _pool_ref(x, size, stride, reduce):
    """Pooling written out as loops over output positions, floor mode."""
    N, C, H, W = x.shape
    Ho, Wo = (H - size) // stride + 1, (W - size) // stride + 1
    y = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            win = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]
            y[:, :, i, j] = reduce(win, axis=(2, 3))
    return y


POOL_CASES = [  # (shape, size, stride)
    ((2, 3, 8, 8), 2, None),
    ((1, 2, 7, 9), 2, None),  # odd sides: last row and column dropped
    ((1, 2, 9, 9), 3, None),
    ((2, 1, 8, 7), 3, None),
    ((1, 2, 7, 7), 3, 2),  # overlapping windows
    ((1, 2, 8, 6), 2, 1),
    ((1, 1, 9, 10), 2, 3),  # gaps between windows
]


@pytest.mark.parametrize("shape,size,stride", POOL_CASES)
def test_max_and_avg_pool_match_loops(shape, size, stride):
    x = _rng(3).standard_normal(shape)
    s = stride or size
    for fn, reduce in ((L.max_pool2d, np.max), (L.avg_pool2d, np.mean)):
        y = fn(x, size, stride)
        ref = _pool_ref(x, size, s, reduce)
        assert y.shape == ref.shape == (shape[0], shape[1], (shape[2] - size) // s + 1, (shape[3] - size) // s + 1)
        np.testing.assert_allclose(y, ref, rtol=1e-13)


@pytest.mark.parametrize("fn", [L.max_pool2d, L.avg_pool2d])
def test_pool_window_larger_than_map_raises(fn):
    with pytest.raises(ValueError, match="does not fit"):
        fn(np.zeros((1, 1, 1, 4)), 3, 1)


def test_max_pool_default_size_is_2():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(L.max_pool2d(x), [[[[5, 7], [13, 15]]]])
    np.testing.assert_array_equal(L.avg_pool2d(x), [[[[2.5, 4.5], [10.5, 12.5]]]])


def test_flatten_order_is_c_h_w():
    x = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    y = L.flatten(x)
    assert y.shape == (2, 12)
    np.testing.assert_array_equal(y[1], x[1].ravel())
    assert y[0, 4] == x[0, 1, 0, 0]  # channel 1 starts after the 2*2 values of channel 0


def test_dense_matches_matmul():
    rng = _rng(4)
    x, w, b = rng.standard_normal((5, 7)), rng.standard_normal((3, 7)), rng.standard_normal(3)
    y = L.dense(x, w, b)
    assert y.shape == (5, 3)
    np.testing.assert_allclose(y, np.einsum("ni,oi->no", x, w) + b, rtol=1e-13)
    np.testing.assert_allclose(L.dense(x, w), x @ w.T, rtol=1e-13)


@pytest.mark.parametrize("big", [1e4, -1e4, 1e30])
def test_softmax_huge_logits(big):
    z = np.array([[big, 0.0, -5.0], [big, big, big], [1.0, 2.0, 3.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = L.softmax(z)
    assert p.shape == z.shape
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p[1], [1 / 3] * 3)
    if big > 0:
        np.testing.assert_allclose(p[0], [1, 0, 0], atol=1e-300)


def test_softmax_axis_and_log_softmax():
    z = _rng(5).standard_normal((3, 4)) * 10
    e = np.exp(z - z.max(axis=0))
    np.testing.assert_allclose(L.softmax(z, axis=0), e / e.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(L.log_softmax(z), np.log(L.softmax(z)), rtol=1e-10, atol=1e-12)
    lp = L.log_softmax(np.array([[1e4, 0.0, -1e4]]))
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp, [[0.0, -1e4, -2e4]])


def test_cross_entropy_value():
    z = np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]])
    y = np.array([0, 2])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    want = -(np.log(p[0, 0]) + np.log(p[1, 2])) / 2
    assert isinstance(L.cross_entropy(z, y), float)
    assert L.cross_entropy(z, y) == pytest.approx(want, rel=1e-12)
    assert np.isfinite(L.cross_entropy(np.array([[1e4, -1e4]]), np.array([1])))


# ---------------------------------------------------------------- backward: finite differences


def _check_grad(analytic, f, x, rtol=1e-6, atol=1e-8):
    num = numeric_grad(f, x)
    assert analytic.shape == x.shape
    np.testing.assert_allclose(analytic, num, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", [
    (2, 2, 5, 5, 3, 3, 3, 1, 1),
    (1, 3, 6, 5, 2, 3, 3, 2, 1),
    (2, 1, 7, 6, 2, 2, 3, 3, 2),
    (1, 2, 4, 5, 2, 3, 2, 1, 0),
    (1, 2, 3, 4, 2, 2, 2, 1, 3),  # padding past the kernel: some outputs see only zeros
    (2, 1, 6, 6, 1, 3, 3, 2, 3),  # ... with a stride too
])
def test_conv2d_backward_finite_differences(case):
    N, C, H, W, F, KH, KW, s, p = case
    x, w, b = _conv_inputs(case, seed=6)
    y, _ = L.conv2d_forward(x, w, b, s, p)
    r = _rng(7).standard_normal(y.shape)  # loss = sum(y * r), so dL/dy = r

    def loss():
        return float(np.sum(L.conv2d(x, w, b, s, p) * r))

    dx, dw, db = L.conv2d_backward(r, x, w, s, p)
    _check_grad(dx, loss, x)
    _check_grad(dw, loss, w)
    _check_grad(db, loss, b)


def test_conv2d_backward_halves_and_the_table():
    """conv2d_backward is its two halves; the table's conv skips dx when asked and leaves out a missing bias."""
    case = (2, 3, 6, 5, 4, 3, 3, 2, 1)
    x, w, b = _conv_inputs(case, seed=21)
    y, cache = L.conv2d_forward(x, w, b, 2, 1)
    dy = _rng(22).standard_normal(y.shape)
    dx, dw, db = L.conv2d_backward(dy, x, w, 2, 1)
    dw2, db2 = L.conv2d_backward_weights(dy, x, w, 2, 1)
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)
    np.testing.assert_array_equal(L.conv2d_backward_input(dy, x.shape, w, 2, 1), dx)
    conv = L.KINDS["conv"]
    options = {"stride": 2, "padding": 1}
    y2, cache2 = conv.forward(x, {"weight": w}, options)
    np.testing.assert_allclose(y2 + b[:, None, None], y, rtol=1e-12, atol=1e-12)
    none, grads = conv.backward(dy, cache2, {"weight": w}, options, False)
    assert none is None and grads.keys() == {"weight"}
    np.testing.assert_allclose(grads["weight"], dw, rtol=1e-12, atol=1e-12)
    dx3, grads = conv.backward(dy, cache, {"weight": w, "bias": b}, options, True)
    assert grads.keys() == {"weight", "bias"}
    np.testing.assert_allclose(dx3, dx, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       KH=st.integers(1, 4), KW=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 4),
       seed=st.integers(0, 2**16))
def test_fast_conv_matches_loop_and_its_input_gradient_is_its_adjoint(N, C, H, W, KH, KW, stride, padding, seed):
    """For any shapes: im2col's columns are the loop's windows, the fast conv equals the loop, and
    <conv2d(x), r> == <x, conv2d_backward_input(r)> (the input gradient of a linear map is its adjoint)."""
    assume(H + 2 * padding >= KH and W + 2 * padding >= KW)
    rng = _rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((2, C, KH, KW))
    Ho, Wo = L.conv_output_size(H, KH, stride, padding), L.conv_output_size(W, KW, stride, padding)
    cols = L.im2col(x, KH, KW, stride, padding)
    assert cols.shape == (N, C * KH * KW, Ho * Wo)
    for n, i, j in ((0, 0, 0), (N - 1, Ho - 1, Wo - 1), (0, Ho // 2, Wo - 1)):
        want = L.window(x[n], i, j, KH, KW, stride, padding).ravel()  # the window maths, with its own loops
        np.testing.assert_array_equal(cols[n, :, i * Wo + j], want)
    y = L.conv2d(x, w, None, stride, padding)
    np.testing.assert_allclose(y, L.conv2d_loop(x, w, None, stride, padding), rtol=1e-10, atol=1e-10)
    r = rng.standard_normal(y.shape)
    dx = L.conv2d_backward_input(r, x.shape, w, stride, padding)
    assert dx.shape == x.shape
    assert np.sum(y * r) == pytest.approx(np.sum(x * dx), rel=1e-9, abs=1e-9)


def test_conv2d_blocks_and_pieces_agree(monkeypatch):
    """A batch is unfolded a few pictures at a time and multiplied in pieces of positions: small blocks,
    a last block that is not full and pieces that do not divide a picture give the same numbers."""
    rng = _rng(23)
    x = rng.standard_normal((9, 4, 13, 11)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    y, _ = L.conv2d_forward(x, w, b, 1, 1)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    whole = L.conv2d_backward(dy, x, w, 1, 1)
    monkeypatch.setattr(L, "BLOCK_BYTES", 2 * 37 * 13 * 13 * 4)  # two pictures a block: 2, 2, 2, 2, 1
    monkeypatch.setattr(L, "PIECE", 50)  # 13 * 13 positions: pieces of 50 and a rest of 19
    y2, _ = L.conv2d_forward(x, w, b, 1, 1)
    np.testing.assert_allclose(y2, y, rtol=1e-5, atol=1e-5)
    for got, want in zip(L.conv2d_backward(dy, x, w, 1, 1), whole, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for n in (0, 8):
        np.testing.assert_allclose(L.conv2d(x[n:n + 1], w, b, 1, 1)[0], y[n], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, L.conv2d_loop(x.astype(np.float64), w, b, 1, 1), rtol=1e-4, atol=1e-4)
    ref = L.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64), 1, 1)
    for got, want in zip(whole, ref, strict=True):
        assert got.dtype == np.float32  # float32 in, float32 out: the trainer never silently doubles its work
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activation_backward_finite_differences(name):
    rng = _rng(8)
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from relu's kink
    r = rng.standard_normal(x.shape)
    fwd, bwd = getattr(L, name), getattr(L, name + "_backward")
    y = fwd(x)
    # relu's backward takes the input; tanh's and sigmoid's take their output
    dx = bwd(r, x if name == "relu" else y)
    _check_grad(dx, lambda: float(np.sum(fwd(x) * r)), x)


@pytest.mark.parametrize("shape,size,stride", POOL_CASES)
def test_pool_backward_finite_differences(shape, size, stride):
    rng = _rng(9)
    x = rng.standard_normal(shape)
    y = L.max_pool2d(x, size, stride)
    r = rng.standard_normal(y.shape)
    dx = L.max_pool2d_backward(r, x, size, stride)
    _check_grad(dx, lambda: float(np.sum(L.max_pool2d(x, size, stride) * r)), x)
    dx = L.avg_pool2d_backward(r, x.shape, size, stride)
    _check_grad(dx, lambda: float(np.sum(L.avg_pool2d(x, size, stride) * r)), x)


def test_max_pool_backward_tie_goes_to_first():
    x = np.ones((1, 1, 2, 2))
    dx = L.max_pool2d_backward(np.array([[[[5.0]]]]), x)
    np.testing.assert_array_equal(dx, [[[[5.0, 0.0], [0.0, 0.0]]]])


def test_dense_backward_finite_differences():
    rng = _rng(10)
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((3, 6)), rng.standard_normal(3)
    r = rng.standard_normal((4, 3))

    def loss():
        return float(np.sum(L.dense(x, w, b) * r))

    dx, dw, db = L.dense_backward(r, x, w)
    _check_grad(dx, loss, x)
    _check_grad(dw, loss, w)
    _check_grad(db, loss, b)


def test_cross_entropy_backward_finite_differences():
    rng = _rng(11)
    z = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    d = L.cross_entropy_backward(z, labels)
    _check_grad(d, lambda: L.cross_entropy(z, labels), z)
    np.testing.assert_allclose(d.sum(axis=1), 0.0, atol=1e-15)


# ---------------------------------------------------------------- torch.nn.functional


def _t(a):
    torch = require_torch()
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_torch(case):
    torch = require_torch()
    *_, s, p = case
    x, w, b = _conv_inputs(case, seed=12)
    y = L.conv2d(x, w, b, s, p)
    ref = torch.nn.functional.conv2d(_t(x), _t(w), _t(b), stride=s, padding=p).numpy()
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,size,stride", POOL_CASES)
def test_pools_match_torch(shape, size, stride):
    torch = require_torch()
    F = torch.nn.functional
    x = _rng(13).standard_normal(shape)
    for ours, theirs in ((L.max_pool2d, F.max_pool2d), (L.avg_pool2d, F.avg_pool2d)):
        y = ours(x, size, stride)
        ref = theirs(_t(x), size, stride).numpy()
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=1e-13)


def test_elementwise_flatten_dense_softmax_match_torch():
    torch = require_torch()
    F = torch.nn.functional
    rng = _rng(14)
    x = rng.standard_normal((2, 3, 4, 5)) * 4
    np.testing.assert_array_equal(L.relu(x), F.relu(_t(x)).numpy())
    np.testing.assert_allclose(L.tanh(x), torch.tanh(_t(x)).numpy(), rtol=1e-14)
    np.testing.assert_allclose(L.sigmoid(x), torch.sigmoid(_t(x)).numpy(), rtol=1e-14)
    np.testing.assert_array_equal(L.flatten(x), torch.flatten(_t(x), 1).numpy())
    v, w, b = rng.standard_normal((4, 60)), rng.standard_normal((7, 60)), rng.standard_normal(7)
    np.testing.assert_allclose(L.dense(v, w, b), F.linear(_t(v), _t(w), _t(b)).numpy(), rtol=1e-12)
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [0.3, -2.0, 5.0]])
    np.testing.assert_allclose(L.softmax(z), F.softmax(_t(z), dim=-1).numpy(), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(L.log_softmax(z), F.log_softmax(_t(z), dim=-1).numpy(), rtol=1e-13)
    labels = np.array([2, 0, 1])
    assert L.cross_entropy(z, labels) == pytest.approx(F.cross_entropy(_t(z), _t(labels)).item(), rel=1e-12)


def test_backward_matches_torch_autograd():
    """The whole Tiny-VGG chain of backward functions against autograd, in float64."""
    torch = require_torch()
    F = torch.nn.functional
    rng = _rng(15)
    x = rng.standard_normal((3, 2, 17, 13))
    w1, b1 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    w2, b2 = rng.standard_normal((3, 4, 2, 2)), rng.standard_normal(3)
    wd, bd = rng.standard_normal((5, 3 * 2 * 1)), rng.standard_normal(5)
    labels = np.array([4, 0, 2])

    # ours: conv(stride 1, pad 1) - relu - maxpool 3/2 - conv(stride 2, pad 0) - tanh - avgpool 2 - dense
    # (3, 2, 17, 13) -> (3, 4, 17, 13) -> (3, 4, 8, 6) -> (3, 3, 4, 3) -> (3, 3, 2, 1) -> (3, 6) -> (3, 5)
    h1, _ = L.conv2d_forward(x, w1, b1, 1, 1)
    a1 = L.relu(h1)
    p1 = L.max_pool2d(a1, 3, 2)
    h2, _ = L.conv2d_forward(p1, w2, b2, 2, 0)
    a2 = L.tanh(h2)
    p2 = L.avg_pool2d(a2, 2)
    z = L.dense(L.flatten(p2), wd, bd)
    loss = L.cross_entropy(z, labels)

    dz = L.cross_entropy_backward(z, labels)
    df, dwd, dbd = L.dense_backward(dz, L.flatten(p2), wd)
    da2 = L.avg_pool2d_backward(df.reshape(p2.shape), a2.shape, 2)
    dh2 = L.tanh_backward(da2, a2)
    dp1, dw2, db2 = L.conv2d_backward(dh2, p1, w2, 2, 0)
    da1 = L.max_pool2d_backward(dp1, a1, 3, 2)
    dh1 = L.relu_backward(da1, h1)
    dx, dw1, db1 = L.conv2d_backward(dh1, x, w1, 1, 1)

    ts = {k: _t(v).requires_grad_() for k, v in dict(x=x, w1=w1, b1=b1, w2=w2, b2=b2, wd=wd, bd=bd).items()}
    t = F.conv2d(ts["x"], ts["w1"], ts["b1"], padding=1)
    t = F.max_pool2d(F.relu(t), 3, 2)
    t = F.avg_pool2d(torch.tanh(F.conv2d(t, ts["w2"], ts["b2"], stride=2)), 2)
    tz = F.linear(torch.flatten(t, 1), ts["wd"], ts["bd"])
    tloss = F.cross_entropy(tz, _t(labels))
    tloss.backward()

    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    ours = dict(x=dx, w1=dw1, b1=db1, w2=dw2, b2=db2, wd=dwd, bd=dbd)
    for k, g in ours.items():
        ref = ts[k].grad.numpy()
        assert g.shape == ref.shape, k
        np.testing.assert_allclose(g, ref, rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_backward_matches_torch(case):
    torch = require_torch()
    *_, s, p = case
    x, w, b = _conv_inputs(case, seed=16)
    y, _ = L.conv2d_forward(x, w, b, s, p)
    r = _rng(17).standard_normal(y.shape)
    dx, dw, db = L.conv2d_backward(r, x, w, s, p)
    tx, tw, tb = (_t(a).requires_grad_() for a in (x, w, b))
    torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p).backward(_t(r))
    for ours, ref in ((dx, tx), (dw, tw), (db, tb)):
        assert ours.shape == tuple(ref.shape)
        np.testing.assert_allclose(ours, ref.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,size,stride", POOL_CASES)
def test_pool_backward_matches_torch(shape, size, stride):
    torch = require_torch()
    F = torch.nn.functional
    rng = _rng(18)
    x = rng.standard_normal(shape)
    x[0, 0, :2, :2] = 1.5  # a tie: both libraries send the gradient to the first maximum
    for fwd, bwd, theirs, arg in ((L.max_pool2d, L.max_pool2d_backward, F.max_pool2d, x),
                                  (L.avg_pool2d, L.avg_pool2d_backward, F.avg_pool2d, x.shape)):
        r = rng.standard_normal(fwd(x, size, stride).shape)
        tx = _t(x).requires_grad_()
        theirs(tx, size, stride).backward(_t(r))
        dx = bwd(r, arg, size, stride)
        assert dx.shape == x.shape
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_activation_backward_matches_torch(name):
    torch = require_torch()
    rng = _rng(19)
    x, r = rng.standard_normal((2, 3, 4, 4)) * 3, rng.standard_normal((2, 3, 4, 4))
    tx = _t(x).requires_grad_()
    getattr(torch, name)(tx).backward(_t(r))
    dx = getattr(L, name + "_backward")(r, x if name == "relu" else getattr(L, name)(x))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_dense_and_cross_entropy_backward_match_torch():
    torch = require_torch()
    F = torch.nn.functional
    rng = _rng(20)
    x, w, b = rng.standard_normal((6, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    labels = np.array([0, 1, 2, 3, 3, 1])
    tx, tw, tb = (_t(a).requires_grad_() for a in (x, w, b))
    tz = F.linear(tx, tw, tb)
    tz.retain_grad()
    F.cross_entropy(tz, _t(labels)).backward()
    z = L.dense(x, w, b)
    dz = L.cross_entropy_backward(z, labels)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-12, atol=1e-15)
    dx, dw, db = L.dense_backward(dz, x, w)
    for ours, ref in ((dx, tx), (dw, tw), (db, tb)):
        assert ours.shape == tuple(ref.shape)
        np.testing.assert_allclose(ours, ref.grad.numpy(), rtol=1e-12, atol=1e-15)
