"""The layers of a CNN as pure NumPy functions, forward and backward.

Layouts are PyTorch's: images are (N, C, H, W), conv weights (F, C, KH, KW),
dense weights (out, in). Every forward function here gives the same numbers
as its `torch.nn.functional` namesake; every backward function takes the
gradient of the loss with respect to the output (`dy`) and returns the
gradients with respect to the inputs and parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

# The fast convolution unfolds the windows of a few pictures at a time, about this many bytes,
# into one reused buffer: the matrix product then reads windows still in the CPU cache.
# Unfolding a whole training batch at once (tens of MB) made the products two to three times slower.
BLOCK_BYTES = 2 * 2**20
# OpenBLAS multiplies a filter matrix by pieces of about this many output positions fastest:
# up to 1.5 times as fast as one product over a 32x32 picture's positions (measured, one thread).
PIECE = 128


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Length of one output side: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _pad(x: np.ndarray, padding: int) -> np.ndarray:
    """Zeros around the two spatial axes: (N, C, H, W) -> (N, C, H + 2p, W + 2p)."""
    if padding == 0:
        return x
    p = padding
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=x.dtype)  # a few times faster than np.pad
    xp[:, :, p:p + H, p:p + W] = x
    return xp


# ---------------------------------------------------------------- convolution


def conv2d_loop(x, weight, bias=None, stride=1, padding=0):
    """The teaching version of conv2d: four loops, one dot product per output.

    x (N, C, H, W), weight (F, C, KH, KW), bias (F,) -> (N, F, H', W').
    Each output value is the sum of a window of the input times the kernel,
    plus the bias. The kernel is not flipped, to match PyTorch (so strictly
    this is cross-correlation, which is what every CNN library computes).
    """
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    Ho = conv_output_size(H, KH, stride, padding)
    Wo = conv_output_size(W, KW, stride, padding)
    xp = _pad(x, padding)
    y = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, weight))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    r, c = i * stride, j * stride
                    window = xp[n, :, r:r + KH, c:c + KW]  # (C, KH, KW)
                    y[n, f, i, j] = np.sum(window * weight[f])
            if bias is not None:
                y[n, f] += bias[f]
    return y


# The fast version does the same sums as matrix products. Unfold ("im2col"): copy every window
# of the input into a column, so that filters (F, C*KH*KW) @ columns (C*KH*KW, positions) is the
# whole convolution. A last row of ones in the columns, times the bias as a last filter column,
# adds the bias in the same product (and gives its gradient for free in the backward pass).


class _Unfold:
    """Unfolds the windows of a few pictures at a time into one reused buffer: cols (n, K, H' * Wq).

    K = C*kh*kw rows in (C, kh, kw) order, plus a last row of ones with `ones`. The buffer stays
    in the CPU cache for the product that reads it (see BLOCK_BYTES). With stride 1 each output
    row is computed Wq = Wp wide (the padded width): then the windows of a picture at tap (i, j)
    are its flattened padded rows shifted by i*Wp + j, one long copy, and the last kw - 1 columns
    of every output row are junk to drop. With a larger stride Wq = W' and nothing is dropped.
    """

    def __init__(self, shape, kh, kw, stride, ph, pw, ones, dtype):
        N, C, H, W = shape
        Hp, Wp = H + 2 * ph, W + 2 * pw
        self.Ho, self.Wo = (Hp - kh) // stride + 1, (Wp - kw) // stride + 1
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(f"{kh}x{kw} filters do not fit in a {H}x{W} map with padding {ph}, {pw}")
        self.Wq = Wp if stride == 1 else self.Wo
        K = C * kh * kw
        self.n = n = max(1, min(N, BLOCK_BYTES // ((K + ones) * self.Ho * self.Wq * np.dtype(dtype).itemsize)))
        # The padded pictures, flattened, with kw - 1 spare zeros for the junk columns of the last row.
        self.xp = np.zeros((n, C, Hp * Wp + kw - 1), dtype)
        self.inside = self.xp[:, :, :Hp * Wp].reshape(n, C, Hp, Wp)[:, :, ph:ph + H, pw:pw + W]  # a view
        self.cols = np.empty((n, K + ones, self.Ho * self.Wq), dtype)  # every window row is written each time
        if ones:
            self.cols[:, K] = 1
        # Window of output (r, c) at tap (i, j) = xp[(r*stride + i) * Wp + c*stride + j]: a view of xp
        # (np.ndarray on its buffer: as_strided's checks cost more than a whole small convolution).
        e = self.xp.itemsize
        self.windows = np.ndarray((n, C, kh, kw, self.Ho, self.Wq), dtype, self.xp,
                                  strides=(*self.xp.strides[:2], Wp * e, e, stride * Wp * e, stride * e))
        self.dest = self.cols[:, :K].reshape(n, C, kh, kw, self.Ho, self.Wq)  # a view

    def __call__(self, x):
        """x (m, C, H, W), m <= n -> cols (m, K, H' * Wq), valid until the next call."""
        m = len(x)
        self.inside[:m] = x  # the zeros around it were written once
        self.dest[:m] = self.windows[:m]  # (m, C, kh, kw, H', Wq): with stride 1, C*kh*kw long copies
        return self.cols[:m]

    def blocks(self, N):
        """(start, stop) of each block of at most n pictures."""
        return [(i, min(N, i + self.n)) for i in range(0, N, self.n)]


def _pieces(a, m):
    """(n, K, P) -> (n, P // m, K, m) view, and the (n, K, P % m) rest: the positions cut into pieces of m."""
    n, K, P = a.shape
    q = P // m * m
    return a[:, :, :q].reshape(n, K, P // m, m).transpose(0, 2, 1, 3), a[:, :, q:]


def _product(w, cols, out):
    """out (n, F, P) = w (F, K) @ cols (n, K, P) for each picture, in pieces of PIECE positions."""
    for c, o in zip(_pieces(cols, PIECE), _pieces(out, PIECE)):
        if c.size:
            np.matmul(w, c, out=o)


def _conv(x, w, kh, kw, stride, ph, pw):
    """Correlation of x (N, C, H, W) with w (F, C*kh*kw [+ 1 bias column]) -> (N, F, H', W')."""
    N, C, H, W = x.shape
    F, K = w.shape
    unfold = _Unfold(x.shape, kh, kw, stride, ph, pw, K > C * kh * kw, w.dtype)
    Ho, Wo, Wq = unfold.Ho, unfold.Wo, unfold.Wq
    y = np.empty((N, F, Ho, Wo), w.dtype)
    wide = np.empty((unfold.n, F, Ho * Wq), w.dtype) if Wq != Wo else None
    for start, stop in unfold.blocks(N):
        cols = unfold(x[start:stop])
        if wide is None:
            _product(w, cols, y[start:stop].reshape(stop - start, F, Ho * Wo))
        else:
            out = wide[:stop - start]
            _product(w, cols, out)
            y[start:stop] = out.reshape(-1, F, Ho, Wq)[..., :Wo]  # drop the junk columns
    return y


def _filters(weight, bias, dtype):
    """weight (F, C, KH, KW) and bias (F,) or None -> (F, C*KH*KW [+ 1]), the bias as a last column."""
    w = weight.reshape(weight.shape[0], -1)  # (F, C*KH*KW)
    if bias is not None:
        w = np.concatenate([w, np.reshape(bias, (-1, 1))], axis=1)  # (F, C*KH*KW + 1)
    return np.ascontiguousarray(w, dtype=dtype)


def im2col(x, kh, kw, stride=1, padding=0):
    """Unfold every kh x kw window of x into a column.

    x (N, C, H, W) -> cols (N, C*kh*kw, H'*W'), rows in (C, kh, kw) order, so that
    `weight.reshape(F, -1) @ cols` is the convolution, (N, F, H'*W').
    """
    N, C, H, W = x.shape
    unfold = _Unfold(x.shape, kh, kw, stride, padding, padding, False, x.dtype)
    cols = np.empty((N, C * kh * kw, unfold.Ho, unfold.Wo), x.dtype)
    for start, stop in unfold.blocks(N):
        cols[start:stop] = unfold(x[start:stop]).reshape(stop - start, -1, unfold.Ho, unfold.Wq)[..., :unfold.Wo]
    return cols.reshape(N, C * kh * kw, unfold.Ho * unfold.Wo)


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Fast conv2d, same numbers as `conv2d_loop` and `torch.nn.functional.conv2d`.

    x (N, C, H, W), weight (F, C, KH, KW), bias (F,) or None -> (N, F, H', W'),
    H' = floor((H + 2*padding - KH) / stride) + 1, likewise W'.
    One matrix product over all windows at once (im2col), a few pictures at a time.
    """
    y, _ = conv2d_forward(x, weight, bias, stride, padding)
    return y


def conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """conv2d that also returns what the backward pass needs: -> (y (N, F, H', W'), x).

    The backward pass unfolds x again, a few pictures at a time, rather than keeping every
    window of the batch in memory (tens of MB, and slower to read back than to copy again).
    """
    N, C, H, W = x.shape
    F, C2, KH, KW = weight.shape
    if C != C2:
        raise ValueError(f"input has {C} channels but the filters expect {C2}")
    dtype = np.result_type(x, weight, *(() if bias is None else (bias,)))
    return _conv(x, _filters(weight, bias, dtype), KH, KW, stride, padding, padding), x


def conv2d_backward(dy, x, weight, stride=1, padding=0):
    """Gradients of conv2d: dy (N, F, H', W'), x its input -> dx (N, C, H, W), dw (F, C, KH, KW), db (F,)."""
    dw, db = conv2d_backward_weights(dy, x, weight, stride, padding)
    return conv2d_backward_input(dy, x.shape, weight, stride, padding), dw, db


def conv2d_backward_weights(dy, x, weight, stride=1, padding=0):
    """Only the parameter half of `conv2d_backward`: -> dw (F, C, KH, KW), db (F,).

    Enough for a first layer, whose input (the picture) needs no gradient. Each weight's gradient
    is the sum, over every position, of the input it saw there times that position's dy:
    dw = dy @ columns.T, with the columns unfolded again a few pictures at a time.
    """
    N, F, Ho, Wo = dy.shape
    _, C, KH, KW = weight.shape
    dtype = np.result_type(dy, x)
    unfold = _Unfold(x.shape, KH, KW, stride, padding, padding, True, dtype)
    wide = np.zeros((unfold.n, F, Ho, unfold.Wq), dtype)  # dy laid out like the columns: 0 at the junk
    total = np.zeros((C * KH * KW + 1, F), dtype)  # the last row, from the row of ones, is db
    for start, stop in unfold.blocks(N):
        cols = unfold(x[start:stop])
        d = wide[:stop - start]
        d[..., :Wo] = dy[start:stop]
        # columns (K, positions) @ dy (positions, F) for each picture, summed: (K, F)
        total += np.matmul(cols, d.reshape(stop - start, F, -1).swapaxes(1, 2)).sum(axis=0)
    return total[:-1].T.reshape(weight.shape), total[-1]


def conv2d_backward_input(dy, x_shape, weight, stride=1, padding=0):
    """dy (N, F, H', W') -> dx (N, C, H, W): a convolution too ("transposed convolution").

    Input pixel (h, w) fed output (i, j) through weight (u, v) when h = i*stride + u - padding.
    So dx is dy, spread back to the input's spacing, correlated with the same filters turned half
    a turn (flipped up-down and left-right) and with their in- and out-maps swapped.
    """
    F, C, KH, KW = weight.shape
    dtype = np.result_type(dy, weight)
    wt = _filters(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), None, dtype)  # (C, F*KH*KW)
    if stride == 1 and padding < min(KH, KW):  # dy is already at the input's spacing: pad it instead
        return _conv(dy, wt, KH, KW, 1, KH - 1 - padding, KW - 1 - padding)
    return _conv(_spread(dy, x_shape, KH, KW, stride, padding), wt, KH, KW, 1, 0, 0)


def _spread(dy, x_shape, kh, kw, stride, padding):
    """dy (N, F, H', W') -> (N, F, H + kh - 1, W + kw - 1): output (i, j) placed at (i*stride + kh-1 - padding,
    j*stride + kw-1 - padding), zeros elsewhere. Outputs that only saw padding fall outside and are dropped."""
    N, F, Ho, Wo = dy.shape
    H, W = x_shape[2:]
    d = np.zeros((N, F, H + kh - 1, W + kw - 1), dy.dtype)
    rows, cols = _span(H + kh - 1, Ho, kh - 1 - padding, stride), _span(W + kw - 1, Wo, kw - 1 - padding, stride)
    if rows and cols:
        d[:, :, rows[1], cols[1]] = dy[:, :, rows[0], cols[0]]
    return d


def _span(n: int, n_out: int, offset: int, step: int):
    """Outputs o in [lo, hi) whose place offset + o*step lies in [0, n) -> (output slice, place slice), or None."""
    lo = max(0, -(offset // step))  # ceil(-offset / step)
    hi = min(n_out, (n - 1 - offset) // step + 1)
    if lo >= hi:
        return None
    start = offset + lo * step
    return slice(lo, hi), slice(start, start + (hi - lo - 1) * step + 1, step)


# ---------------------------------------------------------------- activations


def relu(x):
    """max(0, x), element-wise; any shape."""
    return np.maximum(x, 0)


def relu_backward(dy, x):
    """The gradient passes where the input was positive and is cut where it was not."""
    return dy * (x > 0)


def tanh(x):
    """tanh(x), element-wise; squashes into (-1, 1)."""
    return np.tanh(x)


def tanh_backward(dy, y):
    """Gradient of tanh given its output y: dy * (1 - y^2)."""
    return dy * (1 - y * y)


def sigmoid(x):
    """1 / (1 + exp(-x)), element-wise; squashes into (0, 1). Never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.result_type(x, np.float32), copy=False)


def sigmoid_backward(dy, y):
    """Gradient of sigmoid given its output y: dy * y * (1 - y)."""
    return dy * y * (1 - y)


# ---------------------------------------------------------------- pooling


def _window_slices(x_shape, size, stride):
    """One slice per position (i, j) inside a pooling window, picking that position from every window.

    Pooling is then a reduction over size*size strided views of x, each (N, C, H', W'):
    no window array is built, which is several times faster than reshaping into windows.
    """
    N, C, H, W = x_shape
    Ho = conv_output_size(H, size, stride)
    Wo = conv_output_size(W, size, stride)
    if Ho < 1 or Wo < 1:  # as in PyTorch; also keeps the slices below from wrapping around
        raise ValueError(f"a {size}x{size} pooling window does not fit in a {H}x{W} map")
    for i in range(size):
        for j in range(size):
            yield (slice(None), slice(None), slice(i, i + stride * (Ho - 1) + 1, stride),
                   slice(j, j + stride * (Wo - 1) + 1, stride))


def max_pool2d(x, size=2, stride=None):
    """Largest value of each size x size window. (N, C, H, W) -> (N, C, H', W').

    stride defaults to size; windows that do not fit are dropped (floor mode),
    like `torch.nn.functional.max_pool2d`.
    """
    stride = stride or size
    y = None
    for s in _window_slices(x.shape, size, stride):
        y = x[s].copy() if y is None else np.maximum(y, x[s], out=y)  # (N, C, H', W')
    return y


def max_pool2d_backward(dy, x, size=2, stride=None):
    """Each window's gradient goes to its largest input (the first one on a tie, as in PyTorch)."""
    stride = stride or size
    y = max_pool2d(x, size, stride)  # (N, C, H', W')
    dx = np.zeros(x.shape, dtype=dy.dtype)
    open_ = np.ones(y.shape, dtype=bool)  # windows whose maximum has not been claimed yet
    for s in _window_slices(x.shape, size, stride):  # in row-major order, so the first tie wins
        hit = x[s] == y
        hit &= open_
        open_ ^= hit
        if stride >= size:  # windows do not overlap, so each input gets at most one gradient
            np.multiply(hit, dy, out=dx[s])
        else:
            dx[s] += hit * dy
    return dx


def avg_pool2d(x, size=2, stride=None):
    """Mean of each size x size window. (N, C, H, W) -> (N, C, H', W'), floor mode."""
    stride = stride or size
    total = sum(x[s] for s in _window_slices(x.shape, size, stride))  # (N, C, H', W')
    return total / (size * size)


def avg_pool2d_backward(dy, x_shape, size=2, stride=None):
    """Each window's gradient is shared equally by its size*size inputs."""
    stride = stride or size
    share = dy / (size * size)
    dx = np.zeros(x_shape, dtype=share.dtype)
    for s in _window_slices(x_shape, size, stride):
        dx[s] += share
    return dx


# ---------------------------------------------------------------- flatten, dense, softmax


def flatten(x):
    """(N, C, H, W) -> (N, C*H*W), in C, H, W order like `torch.flatten(x, 1)`."""
    return x.reshape(x.shape[0], -1)


def dense(x, weight, bias=None):
    """Fully connected layer: x (N, in), weight (out, in), bias (out,) -> (N, out). Like F.linear."""
    y = x @ weight.T
    if bias is not None:
        y = y + bias
    return y


def dense_backward(dy, x, weight):
    """dy (N, out) -> dx (N, in), dw (out, in), db (out,)."""
    return dy @ weight, dy.T @ x, dy.sum(axis=0)


def softmax(logits, axis=-1):
    """exp(z) / sum(exp(z)) along axis. Subtracting the max first keeps huge logits finite."""
    z = logits - np.max(logits, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(logits, axis=-1):
    """log(softmax(logits)), computed without overflow or log(0)."""
    z = logits - np.max(logits, axis=axis, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def cross_entropy(logits, labels):
    """Mean negative log-probability of the true class. logits (N, K), labels (N,) ints -> float.

    Same as `torch.nn.functional.cross_entropy` with the default mean reduction.
    """
    logp = log_softmax(logits)
    return float(-np.mean(logp[np.arange(len(labels)), labels]))


def cross_entropy_backward(logits, labels):
    """Gradient of `cross_entropy` with respect to the logits: (softmax - onehot) / N."""
    N = logits.shape[0]
    d = softmax(logits)
    d[np.arange(N), labels] -= 1
    return d / N


def softmax_backward(dy, y, axis=-1):
    """Gradient of softmax given its output y: y * (dy - sum(dy * y))."""
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


# ---------------------------------------------------------------- window maths


def window_box(i: int, j: int, kh: int, kw: int, stride: int = 1, padding: int = 0) -> tuple[int, int, int, int]:
    """The input rows and columns that output position (i, j) of a conv or pool reads.

    -> (top, left, bottom, right), half-open and in the unpadded input's coordinates, so a
    window that hangs over the edge (into the zero padding) starts below 0 or ends past the side.
    """
    top, left = i * stride - padding, j * stride - padding
    return top, left, top + kh, left + kw


def window(x: np.ndarray, i: int, j: int, kh: int, kw: int, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The numbers output position (i, j) of a conv or pool reads. x (C, H, W) -> (C, kh, kw).

    Positions in the padding are 0, exactly what `conv2d` multiplies there.
    """
    C, H, W = x.shape
    top, left, bottom, right = window_box(i, j, kh, kw, stride, padding)
    out = np.zeros((C, kh, kw), dtype=x.dtype)
    r0, c0, r1, c1 = max(top, 0), max(left, 0), min(bottom, H), min(right, W)
    if r0 < r1 and c0 < c1:
        out[:, r0 - top:r1 - top, c0 - left:c1 - left] = x[:, r0:r1, c0:c1]
    return out


def receptive_field(layers, i: int, j: int) -> tuple[int, int, int, int]:
    """The patch of the picture that position (i, j) after `layers` depends on.

    layers: the layers from the input up to the stage (anything with kind, params and options).
    -> (top, left, bottom, right), half-open, in picture pixels, not clipped to the picture.
    Every conv widens the patch by its kernel, every pool by its window, times the strides so far.
    """
    top, left, bottom, right = i, j, i + 1, j + 1
    for la in reversed(list(layers)):
        g = KINDS[la.kind].geometry
        if g is None:
            continue
        kh, kw, s, p = g(la.params, la.options)
        top, left = top * s - p, left * s - p
        bottom, right = (bottom - 1) * s - p + kh, (right - 1) * s - p + kw
    return top, left, bottom, right


# ---------------------------------------------------------------- the table of layer kinds


@dataclass(frozen=True)
class Kind:
    """Everything cnnviz knows about one kind of layer. Adding a kind means adding one entry to KINDS.

    forward(x, params, options) -> (y, cache); x is a batch (N, ...).
    backward(dy, cache, params, options, need_dx) -> (dx or None, {param name: gradient}).
    shape(in_shape, params, options) -> out_shape, one picture's shapes without the batch axis;
    raises ValueError with a plain reason when the layer cannot take that input.
    geometry(params, options) -> (kh, kw, stride, padding) for layers that read windows, else None.
    params: the parameter names it must have; optional: those it may leave out.
    options: the settings it takes, with their defaults.
    """

    name: str
    title: str  # plain words, for students
    describe: str  # one plain sentence
    formula: str  # the maths, for the overview and the curious
    forward: Callable
    backward: Callable
    shape: Callable
    geometry: Callable | None = None
    params: tuple = ()
    optional: tuple = ()
    options: Mapping = field(default_factory=lambda: MappingProxyType({}))
    elementwise: bool = False  # the same function on every number (an activation)
    weight_dims: int = 0  # axes of its "weight" (4 for conv filters, 2 for a fully connected table)
    unfolds: bool = False  # copies every window first (im2col), which costs memory: the file checks count it


def _conv_forward(x, p, o):
    return conv2d_forward(x, p["weight"], p.get("bias"), o.get("stride", 1), o.get("padding", 0))  # cache: x


def _conv_backward(dy, x, p, o, need_dx=True):
    s, pad = o.get("stride", 1), o.get("padding", 0)
    dw, db = conv2d_backward_weights(dy, x, p["weight"], s, pad)
    # Skipped when nothing below needs it (the picture itself, or frozen layers).
    dx = conv2d_backward_input(dy, x.shape, p["weight"], s, pad) if need_dx else None
    grads = {"weight": dw} | ({"bias": db} if "bias" in p else {})
    return dx, grads


def _conv_shape(shape, p, o):
    F, C, KH, KW = p["weight"].shape
    if len(shape) != 3 or shape[0] != C:
        raise ValueError(f"its filters expect {C} maps, it gets {'x'.join(map(str, shape))}")
    H, W = (conv_output_size(n, k, o.get("stride", 1), o.get("padding", 0)) for n, k in zip(shape[1:], (KH, KW)))
    if H < 1 or W < 1:
        raise ValueError(f"{KH}x{KW} filters do not fit in {shape[1]}x{shape[2]} maps")
    return (F, H, W)


def _conv_geometry(p, o):
    _, _, kh, kw = p["weight"].shape
    return kh, kw, o.get("stride", 1), o.get("padding", 0)


def _dense_forward(x, p, o):
    return dense(x, p["weight"], p.get("bias")), x


def _dense_backward(dy, x, p, o, need_dx=True):
    dx, dw, db = dense_backward(dy, x, p["weight"])
    return (dx if need_dx else None), {"weight": dw} | ({"bias": db} if "bias" in p else {})


def _dense_shape(shape, p, o):
    out, n_in = p["weight"].shape
    if tuple(shape) != (n_in,):
        raise ValueError(f"it expects a list of {n_in} numbers, it gets {'x'.join(map(str, shape))}")
    return (out,)


def _pool_geometry(p, o):
    size = o.get("size", 2)
    return size, size, o.get("stride") or size, 0


def _pool_shape(shape, p, o):
    size = o.get("size", 2)
    if len(shape) != 3 or min(shape[1:]) < size:
        raise ValueError(f"a {size}x{size} window does not fit in {'x'.join(map(str, shape))}")
    stride = o.get("stride") or size
    return (shape[0], *(conv_output_size(n, size, stride) for n in shape[1:]))


def _maxpool_forward(x, p, o):
    return max_pool2d(x, o.get("size", 2), o.get("stride")), x


def _maxpool_backward(dy, x, p, o, need_dx=True):
    return max_pool2d_backward(dy, x, o.get("size", 2), o.get("stride")), {}


def _avgpool_forward(x, p, o):
    return avg_pool2d(x, o.get("size", 2), o.get("stride")), x.shape


def _avgpool_backward(dy, shape, p, o, need_dx=True):
    return avg_pool2d_backward(dy, shape, o.get("size", 2), o.get("stride")), {}


def _same_shape(shape, p, o):
    return tuple(shape)


def _activation(f, f_backward, keep_output: bool):
    """forward/backward for an element-wise function whose gradient needs its input (or its output)."""
    def forward(x, p, o):
        y = f(x)
        return y, (y if keep_output else x)

    def backward(dy, cache, p, o, need_dx=True):
        return f_backward(dy, cache), {}
    return forward, backward


def _flatten_forward(x, p, o):
    return flatten(x), x.shape


def _flatten_backward(dy, shape, p, o, need_dx=True):
    return dy.reshape(shape), {}


_WEIGHTS = ("weight", "bias")
_relu = _activation(relu, relu_backward, keep_output=False)
_tanh = _activation(tanh, tanh_backward, keep_output=True)
_sigmoid = _activation(sigmoid, sigmoid_backward, keep_output=True)
_softmax = _activation(softmax, softmax_backward, keep_output=True)

KINDS: Mapping[str, Kind] = MappingProxyType({k.name: k for k in (
    Kind("conv", "filters", "Each filter slides over every map of the layer before, multiplies each window "
         "by its numbers, adds up the products and a bias, and so makes one new map.",
         "out[f, i, j] = bias[f] + sum over c, u, v of weight[f, c, u, v] * in[c, i*s + u - p, j*s + v - p]",
         _conv_forward, _conv_backward, _conv_shape, _conv_geometry, _WEIGHTS, ("bias",),
         MappingProxyType({"stride": 1, "padding": 0}), weight_dims=4, unfolds=True),
    Kind("relu", "ReLU", "Negative numbers become 0; positive ones stay as they are.", "out = max(0, in)",
         *_relu, _same_shape, elementwise=True),
    Kind("tanh", "tanh", "Squashes every number into the range -1 to 1.", "out = tanh(in)",
         *_tanh, _same_shape, elementwise=True),
    Kind("sigmoid", "sigmoid", "Squashes every number into the range 0 to 1.", "out = 1 / (1 + exp(-in))",
         *_sigmoid, _same_shape, elementwise=True),
    Kind("maxpool", "max pooling", "Keeps the largest number of each small window, so every map gets smaller.",
         "out[c, i, j] = max over u, v of in[c, i*s + u, j*s + v]",
         _maxpool_forward, _maxpool_backward, _pool_shape, _pool_geometry,
         options=MappingProxyType({"size": 2, "stride": None})),
    Kind("avgpool", "average pooling", "Keeps the average of each small window, so every map gets smaller.",
         "out[c, i, j] = mean over u, v of in[c, i*s + u, j*s + v]",
         _avgpool_forward, _avgpool_backward, _pool_shape, _pool_geometry,
         options=MappingProxyType({"size": 2, "stride": None})),
    Kind("flatten", "flatten", "Lays every number of every map out in one long list.",
         "out[c*H*W + i*W + j] = in[c, i, j]",
         _flatten_forward, _flatten_backward, lambda shape, p, o: (math.prod(shape),)),
    Kind("dense", "fully connected", "Every output is a weighted sum of all the inputs, plus a bias.",
         "out[k] = bias[k] + sum over n of weight[k, n] * in[n]",
         _dense_forward, _dense_backward, _dense_shape, None, _WEIGHTS, ("bias",), weight_dims=2),
    Kind("softmax", "softmax", "Turns the scores into chances that are all positive and add up to 1.",
         "out[k] = exp(in[k] - max) / sum over m of exp(in[m] - max)",
         *_softmax, _same_shape),
)})
ACTIVATIONS = tuple(name for name, k in KINDS.items() if k.elementwise)
