"""Properties of the layers that must hold for any shapes, strides, paddings and values (Hypothesis).

Exact numbers are checked elsewhere, against references: tests/test_layers.py (the loop version,
scipy and torch; it also fuzzes im2col/col2im and conv2d against the loop over random shapes).
Here: outputs are finite, shapes follow `conv_output_size`, pooling stays within its input's
range, softmax is a distribution even for huge logits, and a whole model's forward pass is one.
`load_image` on random bytes raising only ImageError is fuzzed in tests/test_images.py
(test_random_bytes_give_image_error_or_a_picture and its neighbours), so it is not repeated here.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnnviz import layers as L
from cnnviz import model as M

SETTINGS = settings(max_examples=60, deadline=None)
finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
BIG32 = float(np.finfo(np.float32).max)


@st.composite
def maps(draw, min_side=1, max_side=12, max_channels=3, elements=finite):
    """A float32 batch (N, C, H, W) of finite numbers."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, max_channels)),
             draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side)))
    return draw(hnp.arrays(np.float32, shape, elements=elements))


@SETTINGS
@given(x=maps(), F=st.integers(1, 4), KH=st.integers(1, 5), KW=st.integers(1, 5), stride=st.integers(1, 4),
       padding=st.integers(0, 3), seed=st.integers(0, 2**16), with_bias=st.booleans())
def test_conv2d_shape_follows_the_formula_and_outputs_are_finite(x, F, KH, KW, stride, padding, seed, with_bias):
    N, C, H, W = x.shape
    assume(H + 2 * padding >= KH and W + 2 * padding >= KW)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((F, C, KH, KW)).astype(np.float32)
    b = rng.standard_normal(F).astype(np.float32) if with_bias else None
    y = L.conv2d(x, w, b, stride, padding)
    assert y.shape == (N, F, L.conv_output_size(H, KH, stride, padding), L.conv_output_size(W, KW, stride, padding))
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    # Each output is at most the sum of |window| * |kernel|, plus |bias|: nothing blows up.
    bound = np.abs(x).max() * np.abs(w).sum(axis=(1, 2, 3)) + (np.abs(b) if with_bias else 0)  # (F,)
    assert np.all(np.abs(y) <= bound[None, :, None, None] * (1 + 1e-5) + 1e-3)


@SETTINGS
@given(x=maps(min_side=1), size=st.integers(1, 4), stride=st.one_of(st.none(), st.integers(1, 4)))
def test_max_pool_never_increases_the_maximum_and_avg_pool_stays_within_range(x, size, stride):
    N, C, H, W = x.shape
    assume(H >= size and W >= size)
    s = stride or size
    shape = (N, C, L.conv_output_size(H, size, s), L.conv_output_size(W, size, s))
    mx, av = L.max_pool2d(x, size, stride), L.avg_pool2d(x, size, stride)
    assert mx.shape == av.shape == shape
    assert np.all(np.isfinite(mx)) and np.all(np.isfinite(av))
    lo, hi = x.min(axis=(2, 3), keepdims=True), x.max(axis=(2, 3), keepdims=True)  # per map
    assert np.all(mx <= hi) and np.all(mx >= lo)
    assert np.all(np.isin(mx, x))  # max pooling picks numbers, it never makes new ones
    tol = 1e-4 * np.maximum(1, np.abs(x).max())  # float32 rounding in the mean
    assert np.all(av >= lo - tol) and np.all(av <= hi + tol)
    assert np.all(av <= mx + tol)  # a mean never beats its window's maximum


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # z - max(z) may reach -inf: exp gives 0
@SETTINGS
@given(logits=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12)),
                         elements=st.floats(-1e300, 1e300, allow_nan=False)),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_softmax_is_a_distribution_even_for_huge_logits(logits, dtype):
    with np.errstate(over="ignore"):
        z = logits.astype(dtype)  # float32 turns the biggest into +-inf: clip those to the float's range
    z = np.clip(z, np.finfo(dtype).min, np.finfo(dtype).max)
    p = L.softmax(z)
    assert p.shape == z.shape and np.all(np.isfinite(p))
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)
    top = np.take_along_axis(p, z.argmax(axis=-1)[:, None], axis=-1)[:, 0]
    assert np.all(top == p.max(axis=-1))  # the biggest score gets the biggest share (ties allowed)
    lp = L.log_softmax(z)  # -inf where the true value is below the float's range (a gap over 3e38)
    assert not np.any(np.isnan(lp)) and np.all(lp <= 1e-6) and np.all(np.isfinite(lp.max(axis=-1)))


@SETTINGS
@given(x=hnp.arrays(np.float32, hnp.array_shapes(max_dims=4, max_side=6),
                    elements=st.floats(-BIG32, BIG32, allow_nan=False, width=32)))
def test_activations_stay_in_their_ranges(x):
    r = L.relu(x)
    assert np.all(r >= 0) and np.all(r[x > 0] == x[x > 0]) and np.all(r[x <= 0] == 0)
    t, s = L.tanh(x), L.sigmoid(x)
    assert np.all(np.isfinite(t)) and np.all(np.abs(t) <= 1)
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))


@settings(max_examples=25, deadline=None)
@given(channels=st.tuples(*[st.integers(1, 4)] * 4), side=st.sampled_from([8, 12, 16, 20]),
       k=st.integers(1, 6), seed=st.integers(0, 2**16), act=st.sampled_from(M.ACTIVATIONS))
def test_a_whole_network_gives_a_distribution_with_the_shapes_of_the_formula(channels, side, k, seed, act):
    m = M.tiny_vgg([f"c{i}" for i in range(k)], channels, input_size=(side, side), seed=seed, activation=act)
    picture = np.random.default_rng(seed).integers(0, 256, (side + 7, side * 2, 3), dtype=np.uint8)
    stages = M.trace(m, picture)
    h = side
    for s in stages[1:]:
        assert np.all(np.isfinite(s.output)), s.name
        if s.kind == "conv":
            assert s.output.shape[1:] == (h, h)  # 3x3, stride 1, padding 1 keeps the size
        if s.kind == "maxpool":
            h = L.conv_output_size(h, 2, 2)
            assert s.output.shape[1:] == (h, h)
    p = stages[-1].output
    assert p.shape == (k,) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
