"""Why the network said what it said: gradients, saliency, Grad-CAM, occlusion, the adversarial nudge,
and what each filter looks for.

Every gradient here is the chain rule run backwards through the table of layer kinds
(`layers.KINDS[kind].backward`), the same backward passes the trainer uses; nothing is differentiated
by hand twice. The "score" of a class is what goes into softmax: the output of the last layer before
it. Scores, unlike probabilities, do not compete with each other, so their gradients say plainly what
pushes one class up.

Layouts are the core's: `image` is uint8 (H, W, 3) of any size, `x` a preprocessed float32 (3, h, w)
input, `target` a class index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import layers as L
from .images import fit_to_input
from .model import Model, forward

CHUNK = 256  # occluded pictures per batched forward pass (for 32x32 pictures about 17 MB of first-layer maps)


# ---------------------------------------------------------------- forward and backward through the table


def score_layers(model: Model) -> tuple:
    """The layers that make the class scores: every layer but a final softmax."""
    layers = model.layers
    return layers[:-1] if layers and layers[-1].kind == "softmax" else layers


def _forward(layers, x: np.ndarray):
    """x (N, ...) through `layers`, keeping what each backward pass needs -> (output, caches)."""
    caches = []
    for la in layers:
        x, cache = L.KINDS[la.kind].forward(x, la.params, la.options)
        caches.append(cache)
    return x, caches


def _backward(layers, caches, dy: np.ndarray) -> np.ndarray:
    """The gradient at the output of `layers` -> the gradient at their input, last layer first."""
    for la, cache in zip(reversed(layers), reversed(caches)):
        dy, _ = L.KINDS[la.kind].backward(dy, cache, la.params, la.options, True)
    return dy


def _split(model: Model, stage: str) -> tuple[tuple, tuple]:
    """The score layers cut after the layer called `stage` -> (up to and including it, the rest)."""
    layers = score_layers(model)
    names = [la.name for la in layers]
    if stage not in names:
        raise KeyError(f"no stage {stage!r} before the scores; stages: {', '.join(names)}")
    k = names.index(stage) + 1
    return layers[:k], layers[k:]


def _one_hot(n: int, k: int, target: int) -> np.ndarray:
    if not 0 <= target < k:
        raise IndexError(f"class {target} does not exist; this network has {k} classes")
    d = np.zeros((n, k), np.float32)
    d[:, target] = 1
    return d


def scores(model: Model, x: np.ndarray) -> np.ndarray:
    """Batched (N, 3, h, w) input -> class scores (N, K), what goes into softmax."""
    y, _ = _forward(score_layers(model), x)
    return y


def logit_gradient(model: Model, x: np.ndarray, target: int) -> np.ndarray:
    """d(score of `target`)/dx for one preprocessed input x (3, h, w) -> (3, h, w).

    How much the score would rise if one number of the input rose a little: the first thing every
    explanation below is built from.
    """
    return logit_gradients(model, np.asarray(x)[None], target)[0]


def logit_gradients(model: Model, x: np.ndarray, target: int) -> np.ndarray:
    """logit_gradient for a batch: (N, 3, h, w) -> (N, 3, h, w), one forward and one backward pass."""
    layers = score_layers(model)
    z, caches = _forward(layers, np.asarray(x, np.float32))  # (N, K)
    return _backward(layers, caches, _one_hot(len(z), z.shape[1], target))


def saliency(model: Model, image: np.ndarray, target: int) -> np.ndarray:
    """The pixels whose change would move the score most: max over colours of |gradient|. -> (h, w)."""
    return np.abs(logit_gradient(model, model.preprocess(image), target)).max(axis=0)


def map_stages(model: Model) -> list[str]:
    """Names of the score layers whose output is maps (C, H, W), in order: where Grad-CAM can look."""
    shape, out = (3, *model.input_size), []
    for la in score_layers(model):
        shape = L.KINDS[la.kind].shape(shape, la.params, la.options)
        if len(shape) == 3:
            out.append(la.name)
    return out


def default_cam_stage(model: Model) -> str:
    """The last map stage before `flatten` (or before the first layer that makes a plain list)."""
    names = [la.name for la in score_layers(model)]
    stages = map_stages(model)
    flat = next((k for k, la in enumerate(score_layers(model)) if la.kind == "flatten"), len(names))
    before = [s for s in stages if names.index(s) < flat]
    if not before:
        raise ValueError("this network has no maps before its flatten layer")
    return before[-1]


def gradcam_parts(model: Model, image: np.ndarray, target: int, stage: str | None = None):
    """Grad-CAM's ingredients at `stage` -> (maps A (C, H', W'), weights a (C,), cam (H', W')).

    a_k is the average over positions of d(score)/dA_k: how much map k as a whole helps the score.
    """
    stage = stage or default_cam_stage(model)
    below, above = _split(model, stage)
    A, _ = _forward(below, model.preprocess(image)[None])  # (1, C, H', W')
    if A.ndim != 4:
        raise ValueError(f"stage {stage!r} makes a list, not maps")
    z, caches = _forward(above, A)  # (1, K)
    dA = _backward(above, caches, _one_hot(1, z.shape[1], target))[0]  # (C, H', W')
    a = dA.mean(axis=(1, 2))  # (C,)
    cam = L.relu(np.tensordot(a, A[0], axes=1))  # (H', W')
    return A[0], a, cam


def gradcam(model: Model, image: np.ndarray, target: int, stage: str | None = None) -> np.ndarray:
    """relu(sum_k a_k A_k) at a map stage (default: the last before flatten) -> (H', W'), not normalised.

    A_k are the stage's maps, a_k the spatial mean of d(score)/dA_k. Where the maps that help the
    score are lit, the result is large: the places the network used for this class.
    """
    return gradcam_parts(model, image, target, stage)[2]


# ---------------------------------------------------------------- occlusion


def occlusion_grid(size: int, patch: int, stride: int) -> int:
    """How many square positions fit along one side: (size - patch) // stride + 1."""
    if patch < 1 or stride < 1 or patch > size:
        raise ValueError(f"a {patch}-pixel square with stride {stride} does not fit in {size} pixels")
    return (size - patch) // stride + 1


def occluded_batch(x: np.ndarray, patch: int, stride: int, rows: range, cols: int) -> np.ndarray:
    """Copies of x (3, h, w), one per square position (r in `rows`, c < cols), each with its square set to 0.

    -> (len(rows) * cols, 3, h, w), row by row. 0 is the training mean after normalisation: "nothing here".
    """
    batch = np.repeat(x[None], len(rows) * cols, axis=0)  # (n, 3, h, w)
    k = 0
    for r in rows:
        for c in range(cols):
            batch[k, :, r * stride:r * stride + patch, c * stride:c * stride + patch] = 0
            k += 1
    return batch


def occlusion(model: Model, image: np.ndarray, target: int, patch: int = 8, stride: int = 4) -> np.ndarray:
    """How much the target's probability drops when a square of the input is hidden -> (rows, cols) float32.

    Entry (r, c) is p(target) minus p(target) with the patch x patch square at row r*stride, column
    c*stride of the preprocessed input set to 0 (the training mean). rows = (h - patch) // stride + 1,
    likewise cols. Every hidden copy goes through the network in a few batched passes.
    """
    x = model.preprocess(image)  # (3, h, w)
    h, w = x.shape[1:]
    rows, cols = occlusion_grid(h, patch, stride), occlusion_grid(w, patch, stride)
    per_chunk = max(1, CHUNK // cols)
    out = np.empty((rows, cols), np.float32)
    for r0 in range(0, rows, per_chunk):
        block = range(r0, min(rows, r0 + per_chunk))
        # The unhidden input rides along in every pass, so that a square that changes nothing gives exactly 0
        # (one picture alone and a batch can round differently in the last bit).
        p = forward(model, np.concatenate([x[None], occluded_batch(x, patch, stride, block, cols)]))[:, target]
        out[block.start:block.stop] = (p[0] - p[1:]).reshape(len(block), cols)
    return out


def occlusion_pixels(occ: np.ndarray, shape, patch: int, stride: int) -> np.ndarray:
    """Occlusion (rows, cols) -> (h, w): each pixel gets the average drop of every square that covered it
    (0 where none did), so the map lies on the picture."""
    h, w = shape
    total, count = np.zeros((h, w), np.float64), np.zeros((h, w), np.int64)
    for r in range(occ.shape[0]):
        for c in range(occ.shape[1]):
            total[r * stride:r * stride + patch, c * stride:c * stride + patch] += occ[r, c]
            count[r * stride:r * stride + patch, c * stride:c * stride + patch] += 1
    return (total / np.maximum(count, 1)).astype(np.float32)


# ---------------------------------------------------------------- the adversarial nudge


def pixel_gradient(model: Model, image: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (fitted picture uint8 (h, w, 3), d(score)/d(pixel value) (h, w, 3) in 0..255 units)."""
    small = fit_to_input(image, model.input_size)  # (h, w, 3)
    g = logit_gradient(model, model.normalize(small), target)  # (3, h, w)
    std = np.asarray(model.preprocessing["std"], np.float32)
    return small, np.moveaxis(g, 0, -1) / (255 * std)  # x = (v / 255 - mean) / std


def nudge(small: np.ndarray, direction: np.ndarray, epsilon: float) -> np.ndarray:
    """small uint8 (h, w, 3) moved by floor(epsilon) against `direction`'s sign, clipped to 0..255."""
    step = int(np.floor(max(0.0, float(epsilon))))  # whole 0-255 units, so no value moves more than epsilon
    moved = small.astype(np.int16) - step * np.sign(direction).astype(np.int16)
    return np.clip(moved, 0, 255).astype(np.uint8)


def fgsm(model: Model, image: np.ndarray, target: int, epsilon: float) -> np.ndarray:
    """The fitted input picture nudged to lower the target's score -> uint8 (h, w, 3).

    Every value moves by at most `epsilon` (0-255 units; whole units, since the result is a picture),
    each in the direction that lowers the score (the sign of the gradient: the "fast gradient sign
    method"), then clipped to 0..255. Small enough to be invisible, often enough to change the answer.
    """
    small, g = pixel_gradient(model, image, target)
    return nudge(small, g, epsilon)


def smallest_flip(model: Model, image: np.ndarray, largest: int = 64) -> int | None:
    """The smallest whole epsilon whose fgsm nudge (against the current winner) changes the prediction,
    or None up to `largest`. One gradient, then every epsilon in one batched pass."""
    small = fit_to_input(image, model.input_size)
    winner = int(np.argmax(forward(model, model.normalize(small)[None])[0]))
    small, g = pixel_gradient(model, image, winner)
    eps = np.arange(1, largest + 1)
    batch = np.stack([nudge(small, g, e) for e in eps])  # (n, h, w, 3)
    moved = np.argmax(forward(model, model.normalize(batch)), axis=1) != winner
    return int(eps[np.argmax(moved)]) if moved.any() else None


# ---------------------------------------------------------------- changes a person would shrug at


@dataclass(frozen=True)
class Change:
    """Changes to a picture at the model's input size, applied in this order. Values are 0-255 units,
    positions are pixels counted from 0, angles degrees."""

    brightness: float = 0.0  # added to every value
    contrast: float = 1.0  # every value's distance from mid-grey (128) times this
    rotation: float = 0.0  # anticlockwise, about the centre
    shift_down: float = 0.0
    shift_right: float = 0.0
    noise: float = 0.0  # spread (standard deviation) of the random noise added to every value
    square: tuple | None = None  # (centre row, centre column, side): hidden by the training mean colour
    epsilon: float = 0.0  # last, an fgsm nudge of this size against the target class


def mean_colour(model: Model) -> np.ndarray:
    """The training pictures' average colour, uint8 (3,): what 0 means after normalisation."""
    mean = np.asarray(model.preprocessing["mean"], np.float64)
    return np.clip(np.round(mean * 255), 0, 255).astype(np.uint8)


def square_box(square, shape) -> tuple[int, int, int, int]:
    """(centre row, centre column, side) -> (top, left, bottom, right), half-open, clipped to shape (h, w)."""
    r, c, side = (int(v) for v in square)
    top, left = r - side // 2, c - side // 2
    return max(top, 0), max(left, 0), min(top + side, shape[0]), min(left + side, shape[1])


def _move(img: np.ndarray, rotation: float, down: float, right: float, fill: np.ndarray) -> np.ndarray:
    """float (h, w, 3) turned `rotation` degrees anticlockwise about its centre, then shifted; bilinear,
    with `fill` (3,) wherever the picture has moved away."""
    h, w = img.shape[:2]
    t = np.deg2rad(rotation)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = np.mgrid[:h, :w].astype(np.float64)
    y, x = y - cy - down, x - cx - right
    sy = cy + np.cos(t) * y + np.sin(t) * x  # where each output pixel comes from (y points down)
    sx = cx - np.sin(t) * y + np.cos(t) * x
    y0, x0 = np.floor(sy).astype(np.intp), np.floor(sx).astype(np.intp)
    fy, fx = (sy - y0)[..., None], (sx - x0)[..., None]
    out = np.zeros(img.shape, np.float64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))[..., None]
            out += wy * wx * np.where(inside, img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], fill)
    return out


def changed_pictures(model: Model, small: np.ndarray, changes, target: int, seed: int = 0) -> np.ndarray:
    """small uint8 (h, w, 3) at the model's input size, one Change each -> uint8 (N, h, w, 3).

    The noise is one fixed pattern (from `seed`) times each Change's spread, so a bigger spread makes
    the same speckles stronger. The nudges are computed in one batched gradient pass.
    """
    h, w = small.shape[:2]
    pattern = np.random.default_rng(seed).standard_normal((h, w, 3))
    fill = mean_colour(model).astype(np.float64)
    base = small.astype(np.float64)
    out = np.empty((len(changes), h, w, 3), np.uint8)
    for n, ch in enumerate(changes):
        v = (base - 128) * ch.contrast + 128 + ch.brightness
        if ch.rotation or ch.shift_down or ch.shift_right:
            v = _move(v, ch.rotation, ch.shift_down, ch.shift_right, fill)
        v = np.clip(np.round(v + ch.noise * pattern), 0, 255)
        if ch.square is not None and ch.square[2] > 0:
            top, left, bottom, right = square_box(ch.square, (h, w))
            v[top:bottom, left:right] = fill
        out[n] = v.astype(np.uint8)
    nudged = [n for n, ch in enumerate(changes) if ch.epsilon >= 1]
    if nudged:
        std = np.asarray(model.preprocessing["std"], np.float32)
        g = logit_gradients(model, model.normalize(out[nudged]), target)  # (n, 3, h, w)
        g = np.moveaxis(g, 1, -1) / (255 * std)  # per 0-255 unit of each value
        for k, n in enumerate(nudged):
            out[n] = nudge(out[n], g[k], changes[n].epsilon)
    return out


# ---------------------------------------------------------------- what a filter looks for


def stage_maps(model: Model, stage: str, x: np.ndarray) -> np.ndarray:
    """Batched input (N, 3, h, w) -> the output of the layer called `stage`, (N, C, H', W')."""
    y, _ = _forward(_split(model, stage)[0], x)
    return y


def _blur(u: np.ndarray) -> np.ndarray:
    """A light 3x3 blur (1, 2, 1 / 4 each way) over the last two axes, edges repeated: (..., h, w)."""
    p = np.pad(u, [(0, 0)] * (u.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    v = (p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]) / 4
    return (v[..., 1:-1] * 2 + v[..., :-2] + v[..., 2:]) / 4


def _map_shape(model: Model, stage: str, layers) -> tuple:
    shape = (3, *model.input_size)
    for la in layers:
        shape = L.KINDS[la.kind].shape(shape, la.params, la.options)
    if len(shape) != 3:
        raise ValueError(f"stage {stage!r} makes a list, not maps")
    return shape


def map_gradients(model: Model, stage: str, indices, x: np.ndarray) -> np.ndarray:
    """For each input x[n] of a batch (N, 3, h, w): d(average of map indices[n] of `stage`)/dx[n] -> (N, 3, h, w).

    After an activation (ReLU), a map that is 0 everywhere gives no hint which way to go: for such an
    input this is the gradient of the same map before the activation instead.
    """
    below, _ = _split(model, stage)
    C, H, W = _map_shape(model, stage, below)
    body, last = (below[:-1], below[-1]) if L.KINDS[below[-1].kind].elementwise else (below, None)
    n = len(x)
    pick = np.zeros((n, C, H, W), np.float32)  # each input's own map, averaged over positions
    pick[np.arange(n), list(indices)] = 1 / (H * W)
    A, caches = _forward(body, np.asarray(x, np.float32))  # (N, C, H, W), before the activation if any
    d = pick
    if last is not None:
        _, cache = L.KINDS[last.kind].forward(A, last.params, last.options)
        d, _ = L.KINDS[last.kind].backward(pick, cache, last.params, last.options, True)
        flat = ~d.reshape(n, -1).any(axis=1)  # map all 0: climb it before the activation instead
        d[flat] = pick[flat]
    return _backward(body, caches, d)


def preferences(model: Model, stage: str, indices=None, steps: int = 64, seed: int = 0) -> np.ndarray:
    """filter_preference for several maps of one stage at once (one batched pass per step).

    -> uint8 (len(indices), h, w, 3). Each picture starts as faint noise around grey and climbs the
    average of its map (`map_gradients`). Each step shifts it by a pixel or two first (jitter) and every
    few steps it is blurred a little: without both, the climb finds a fine pixel-by-pixel pattern that
    means nothing to a person. Every picture takes steps of the same average size, in 0..1 pixel units.
    """
    below, _ = _split(model, stage)
    indices = list(range(_map_shape(model, stage, below)[0]) if indices is None else indices)
    h, w = model.input_size
    rng = np.random.default_rng(seed)
    mean = np.asarray(model.preprocessing["mean"], np.float32)[:, None, None]
    std = np.asarray(model.preprocessing["std"], np.float32)[:, None, None]
    u = (0.5 + 0.02 * rng.standard_normal((len(indices), 3, h, w))).astype(np.float32)  # pixels in 0..1
    for t in range(steps):
        dy, dx = rng.integers(-2, 3, size=2)
        x = np.roll((u - mean) / std, (dy, dx), axis=(2, 3))
        g = map_gradients(model, stage, indices, x)  # (n, 3, h, w)
        g = np.roll(g, (-dy, -dx), axis=(2, 3)) / std  # back to the unshifted pixels, in 0..1 units
        g /= np.abs(g).mean(axis=(1, 2, 3), keepdims=True) + 1e-12
        u = np.clip(u + 0.04 * g, 0, 1)
        if t % 4 == 3 and t < steps - 8:
            u = _blur(u)
    return np.round(np.moveaxis(u, 1, -1) * 255).astype(np.uint8)  # (n, h, w, 3)


def filter_preference(model: Model, stage: str, index: int, steps: int = 64, seed: int = 0) -> np.ndarray:
    """The picture that makes map `index` of stage `stage` (a layer name) largest on average -> uint8 (h, w, 3).

    Gradient ascent on the input picture: start from grey, and step by step change every pixel in the
    direction that raises the map's average, with jitter and blur so that it looks like something.
    """
    return preferences(model, stage, [index], steps, seed)[0]


def map_response(model: Model, stage: str, index: int, pictures) -> np.ndarray:
    """The average of map `index` of `stage` for each uint8 picture (any size) -> (N,): what
    filter_preference climbs."""
    x = np.stack([model.preprocess(p) for p in pictures])  # (N, 3, h, w)
    return stage_maps(model, stage, x)[:, index].mean(axis=(1, 2))


@dataclass(frozen=True)
class Patch:
    """A piece of a picture where a map responds strongly."""

    pixels: np.ndarray  # uint8 (ph, pw, 3): the position's receptive field, cut from the fitted picture
    value: float  # the map's value at that position
    picture: str  # the picture's name
    row: int  # the position in the map, from 0
    col: int
    box: tuple  # (top, left, bottom, right) in the fitted picture, half-open, clipped to it


def top_patches(model: Model, stage: str, index: int, pictures, k: int = 4, per_picture: int = 1) -> list[Patch]:
    """The k places among `pictures` where map `index` of `stage` responds most -> [Patch], largest first.

    pictures: {name: uint8 (H, W, 3)} (or a list, named by position). A place is a map position; its patch
    is that position's receptive field (`layers.receptive_field`), clipped to the fitted picture. At most
    `per_picture` places come from one picture, so one striking picture does not fill every slot.
    """
    return layer_top_patches(model, stage, pictures, k, per_picture, [index])[0]


def layer_top_patches(model: Model, stage: str, pictures, k: int = 4, per_picture: int = 1,
                      indices=None) -> list[list[Patch]]:
    """top_patches for several maps of one stage (default: all), from one pass over the pictures."""
    items = list(pictures.items()) if isinstance(pictures, Mapping) else [(str(i), p) for i, p in enumerate(pictures)]
    below, _ = _split(model, stage)
    C = _map_shape(model, stage, below)[0]
    indices = list(range(C) if indices is None else indices)
    if not items:
        return [[] for _ in indices]
    smalls = [fit_to_input(p, model.input_size) for _, p in items]
    maps = stage_maps(model, stage, model.normalize(np.stack(smalls)))  # (N, C, H', W')
    h, w = model.input_size
    out = []
    for f in indices:
        found = []
        for n, m in enumerate(maps[:, f]):
            for flat in np.argsort(-m, axis=None, kind="stable")[:per_picture]:
                i, j = (int(v) for v in np.unravel_index(flat, m.shape))
                top, left, bottom, right = L.receptive_field(below, i, j)
                box = (max(top, 0), max(left, 0), min(bottom, h), min(right, w))
                found.append(Patch(smalls[n][box[0]:box[2], box[1]:box[3]].copy(), float(m[i, j]), items[n][0],
                                   i, j, box))
        found.sort(key=lambda p: -p.value)
        out.append(found[:k])
    return out


# ---------------------------------------------------------------- keys for caches


def model_key(model: Model) -> str:
    """A digest of everything that decides the model's numbers: layers, weights, preprocessing, classes.

    For caches: two models with the same key compute the same thing, whatever object holds them.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((model.classes, model.input_size, dict(model.preprocessing))).encode())
    for la in model.layers:
        h.update(repr((la.name, la.kind, sorted(dict(la.options).items()))).encode())
        for name in sorted(la.params):
            a = np.ascontiguousarray(la.params[name])
            h.update(repr((name, a.shape, str(a.dtype))).encode())
            h.update(a.tobytes())
    return h.hexdigest()
