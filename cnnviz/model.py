"""A CNN as a value: layers, class names and preprocessing, with forward and trace.

A `Model` is never changed in place. Its parameter arrays are read-only, and
an edit (one new filter, another activation) builds a new `Model` that shares
every untouched array with the original. So the default model cached for a
whole classroom can be handed to every session safely.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import layers as L
from .images import fit_to_input
from .safenpz import NpzError, NpzLimits, read_npz

KINDS = ("conv", "relu", "tanh", "sigmoid", "maxpool", "avgpool", "flatten", "dense", "softmax")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "models" / "cifar10_tinyvgg.npz"
FORMAT = "cnnviz-model/1"


class ModelError(ValueError):
    """A model file or description that cannot be used, with a message that says why."""


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float32)  # always a private copy
    a.flags.writeable = False
    return a


@dataclass(frozen=True)
class Layer:
    """One layer: `name` like "conv1_1", `kind` from KINDS, `params` and `options`.

    params: {"weight": (F, C, KH, KW), "bias": (F,)} for conv, {"weight": (out, in),
    "bias": (out,)} for dense, {} otherwise. options: {"stride": 1, "padding": 1}
    for conv, {"size": 2} for pools, {} otherwise.
    """

    name: str
    kind: str
    params: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ModelError(f"layer {self.name!r} has unknown kind {self.kind!r}")
        object.__setattr__(self, "params", {k: _frozen(v) for k, v in self.params.items()})
        object.__setattr__(self, "options", dict(self.options))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch: (N, ...) -> (N, ...)."""
        p, o = self.params, self.options
        if self.kind == "conv":
            return L.conv2d(x, p["weight"], p.get("bias"), o.get("stride", 1), o.get("padding", 0))
        if self.kind == "dense":
            return L.dense(x, p["weight"], p.get("bias"))
        if self.kind in ("maxpool", "avgpool"):
            pool = L.max_pool2d if self.kind == "maxpool" else L.avg_pool2d
            return pool(x, o.get("size", 2), o.get("stride"))
        return _ELEMENTWISE[self.kind](x)

    def spec(self) -> dict:
        """The architecture part of this layer, JSON-ready (no arrays)."""
        return {"name": self.name, "kind": self.kind, "options": self.options,
                "params": {k: list(v.shape) for k, v in self.params.items()}}


_ELEMENTWISE = {
    "relu": L.relu,
    "tanh": L.tanh,
    "sigmoid": L.sigmoid,
    "flatten": L.flatten,
    "softmax": L.softmax,
}


@dataclass(frozen=True)
class Model:
    """A whole network. `preprocessing` holds per-channel `mean` and `std` of the 0..1 pixels."""

    layers: tuple
    classes: tuple
    input_size: tuple = (32, 32)
    preprocessing: dict = field(default_factory=lambda: {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]})
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "input_size", tuple(int(s) for s in self.input_size))

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) picture of any size -> float32 (3, h, w), exactly what the first layer sees.

        Centre-crop to the input's aspect, resize, scale to 0..1, then subtract
        the training set's mean and divide by its spread, channel by channel.
        """
        small = fit_to_input(image, self.input_size)  # (h, w, 3) uint8
        return self.normalize(small)

    def normalize(self, small: np.ndarray) -> np.ndarray:
        """uint8 (..., h, w, 3) already at input size -> float32 (..., 3, h, w)."""
        x = small.astype(np.float32) / 255.0
        mean = np.asarray(self.preprocessing["mean"], np.float32)
        std = np.asarray(self.preprocessing["std"], np.float32)
        x = (x - mean) / std
        return np.moveaxis(x, -1, -3)  # (..., 3, h, w)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def with_layer(self, name: str, new: Layer) -> Model:
        """A new model with one layer replaced; every other layer is shared, not copied."""
        if name not in [la.name for la in self.layers]:
            raise KeyError(name)
        return replace(self, layers=tuple(new if la.name == name else la for la in self.layers))

    def with_filter(self, layer_name: str, index: int, kernel: np.ndarray, bias: float | None = None) -> Model:
        """A new model whose conv layer `layer_name` has filter `index` set to `kernel` (C, KH, KW)."""
        old = self.layer(layer_name)
        w = np.array(old.params["weight"])
        if np.shape(kernel) != w.shape[1:]:
            raise ModelError(f"filter must have shape {w.shape[1:]}, got {np.shape(kernel)}")
        w[index] = kernel
        params = {**old.params, "weight": w}
        if bias is not None:
            b = np.array(old.params["bias"])
            b[index] = bias
            params["bias"] = b
        return self.with_layer(layer_name, replace(old, params=params))

    def with_activation(self, kind: str) -> Model:
        """A new model with every activation layer swapped for `kind` (relu, tanh or sigmoid)."""
        if kind not in ACTIVATIONS:
            raise ModelError(f"unknown activation {kind!r}")
        layers = tuple(replace(la, kind=kind, name=_rename(la.name, la.kind, kind)) if la.kind in ACTIVATIONS
                       else la for la in self.layers)
        return replace(self, layers=layers)


def _rename(name: str, old: str, new: str) -> str:
    return new + name[len(old):] if name.startswith(old) else name


@dataclass(frozen=True)
class Stage:
    """One step of a trace: `output` has no batch axis, (C, H, W) for maps or (K,) for vectors."""

    name: str
    kind: str
    output: np.ndarray
    layer: Layer | None = None


def forward(model: Model, x: np.ndarray) -> np.ndarray:
    """Batched (N, 3, h, w) float input -> class probabilities (N, K)."""
    for layer in model.layers:
        x = layer(x)
    if model.layers[-1].kind != "softmax":
        x = L.softmax(x)
    return x


def trace(model: Model, image: np.ndarray) -> list[Stage]:
    """One uint8 (H, W, 3) picture -> [input stage, one stage per layer].

    The input stage holds the preprocessed (3, h, w) array; the last stage
    holds the probabilities, which sum to 1.
    """
    x = model.preprocess(image)[None]  # (1, 3, h, w)
    stages = [Stage("input", "input", x[0], None)]
    for layer in model.layers:
        x = layer(x)
        stages.append(Stage(layer.name, layer.kind, x[0], layer))
    return stages


def tiny_vgg(classes, channels=(16, 16, 32, 32), input_size=(32, 32), seed=0, activation="relu") -> Model:
    """A freshly initialised Tiny-VGG: (conv-act-conv-act-pool) x 2, flatten, dense, softmax.

    He-normal weights (std = sqrt(2 / fan_in)), zero biases. 3x3 kernels, padding 1.
    """
    rng = np.random.default_rng(seed)
    h, w = input_size
    layers, c_in = [], 3
    for block in range(2):
        for k in range(2):
            c_out = channels[2 * block + k]
            name = f"{block + 1}_{k + 1}"
            wt = rng.standard_normal((c_out, c_in, 3, 3)) * np.sqrt(2 / (c_in * 9))
            layers.append(Layer(f"conv{name}", "conv", {"weight": wt, "bias": np.zeros(c_out)},
                                {"stride": 1, "padding": 1}))
            layers.append(Layer(f"{activation}{name}", activation))
            c_in = c_out
        layers.append(Layer(f"maxpool{block + 1}", "maxpool", options={"size": 2}))
        h, w = h // 2, w // 2
    n_in, k = c_in * h * w, len(classes)
    layers.append(Layer("flatten", "flatten"))
    layers.append(Layer("dense", "dense", {"weight": rng.standard_normal((k, n_in)) * np.sqrt(1 / n_in),
                                           "bias": np.zeros(k)}))
    layers.append(Layer("softmax", "softmax"))
    return Model(tuple(layers), tuple(classes), input_size)


TINY_VGG_CHANNELS = 64  # the most maps per conv layer the walkthrough shows
TINY_VGG_CLASSES = 100
TINY_VGG_INPUT = (16, 128)  # smallest and largest input side


def check_tiny_vgg(model: Model) -> None:
    """Raise ModelError unless `model` has the Tiny-VGG layout that the walkthrough teaches.

    That is the layout `tiny_vgg` builds (any channel counts, any activation): conv1_1, act1_1,
    conv1_2, act1_2, maxpool1, conv2_1, act2_1, conv2_2, act2_2, maxpool2, flatten, dense,
    softmax; 3x3 filters with stride 1 and padding 1, 2x2 pooling, at most TINY_VGG_CHANNELS
    maps a layer, TINY_VGG_CLASSES classes, and input sides from 16 to 128 that pool evenly.
    """
    act = model.layers[1].kind if len(model.layers) > 1 and model.layers[1].kind in ACTIVATIONS else "relu"
    want = [(f"conv{b}_{k}", "conv", f"{act}{b}_{k}", act) for b in (1, 2) for k in (1, 2)]
    names = [n for c, _, a, _ in want[:2] for n in (c, a)] + ["maxpool1"] \
        + [n for c, _, a, _ in want[2:] for n in (c, a)] + ["maxpool2", "flatten", "dense", "softmax"]
    kinds = ["conv", act] * 2 + ["maxpool"] + ["conv", act] * 2 + ["maxpool", "flatten", "dense", "softmax"]
    got = [(la.name, la.kind) for la in model.layers]
    if got != list(zip(names, kinds)):
        raise ModelError("the walkthrough can only show networks with the Tiny-VGG layout that cnnviz trains "
                         f"({', '.join(names)}); this one has {', '.join(n for n, _ in got[:16])}"
                         + (" ..." if len(got) > 16 else ""))
    for la in model.layers:
        if la.kind == "conv":
            F, _, KH, KW = la.params["weight"].shape
            if (KH, KW) != (3, 3) or la.options.get("stride", 1) != 1 or la.options.get("padding", 0) != 1:
                raise ModelError(f"the walkthrough needs 3x3 filters with stride 1 and padding 1; {la.name} has "
                                 f"{KH}x{KW} filters, stride {la.options.get('stride', 1)}, padding "
                                 f"{la.options.get('padding', 0)}")
            if F > TINY_VGG_CHANNELS:
                raise ModelError(f"{la.name} has {F} filters; the walkthrough shows at most {TINY_VGG_CHANNELS}")
        if la.kind == "maxpool" and (la.options.get("size", 2) != 2 or la.options.get("stride") not in (None, 2)):
            raise ModelError(f"the walkthrough needs 2x2 max pooling; {la.name} is different")
    lo, hi = TINY_VGG_INPUT
    if not all(lo <= s <= hi and s % 4 == 0 for s in model.input_size):
        raise ModelError(f"the walkthrough needs an input from {lo}x{lo} to {hi}x{hi} pixels, in steps of 4; "
                         f"this network takes {model.input_size[1]}x{model.input_size[0]}")
    if len(model.classes) > TINY_VGG_CLASSES:
        raise ModelError(f"this network knows {len(model.classes)} classes; the walkthrough shows at most "
                         f"{TINY_VGG_CLASSES}")


# ---------------------------------------------------------------- files


def save_model(model: Model, path) -> None:
    """Write one .npz: "architecture" (JSON text) plus one array per parameter. Never pickled."""
    arch = {
        "format": FORMAT,
        "layers": [la.spec() for la in model.layers],
        "classes": list(model.classes),
        "input_size": list(model.input_size),
        "preprocessing": model.preprocessing,
        "meta": model.meta,
    }
    arrays = {"architecture": np.array(json.dumps(arch))}
    for la in model.layers:
        for key, value in la.params.items():
            arrays[f"{la.name}.{key}"] = np.asarray(value, np.float32)
    np.savez(path, **arrays)


def load_model(path=None) -> Model:
    """Read a model saved by `save_model` (a path, bytes or file object); None loads the shipped default.

    The file may come from anyone, so nothing in it is trusted: anything that is not a valid
    cnnviz model raises ModelError with the reason in plain words, and nothing else escapes.
    Refused: not an .npz, pickled content (never unpickled), arrays declaring more numbers
    than LIMITS allow (checked from their headers, before any is read), an architecture that
    is not short plain JSON, unknown layer kinds or settings, missing or extra arrays, shapes
    that do not chain, non-finite or huge weights, a network that would need more than
    MAX_STAGE_VALUES numbers at any layer for one picture.
    """
    try:
        arrays = read_npz(DEFAULT_MODEL_PATH if path is None else path, LIMITS)
    except NpzError as e:
        raise ModelError(str(e)) from None
    return _model_from_arrays(arrays)


LIMITS = NpzLimits(max_arrays=256, max_elements=5_000_000, max_total=20_000_000, max_text=200_000)
MAX_JSON_DEPTH = 12  # the description's nesting: meta -> history -> one epoch's record is 4
MAX_LAYERS = 64
MAX_CLASSES = 1000
MAX_ABS_WEIGHT = 1e3  # trained weights stay far below this; bigger ones can overflow float32 on the way
MAX_STAGE_VALUES = 4_000_000  # numbers one picture may need at any layer (a conv's unfolded windows too)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
# Class names are shown in markdown: no brackets, backticks, stars, dollars, pipes or angle brackets,
# so a name can never turn into a link, a picture, code, maths or HTML.
_CLASS_NAME = re.compile(r"[\w][\w .,'/&+:()!?%#-]{0,39}")
_OPTIONS = {"conv": {"stride", "padding"}, "maxpool": {"size", "stride"}, "avgpool": {"size", "stride"}}
_PARAMS = {"conv": ({"weight", "bias"}, {"weight"}), "dense": ({"weight", "bias"}, {"weight"})}


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _model_from_arrays(arrays: dict) -> Model:
    arch = _architecture(arrays.pop("architecture", None))
    try:
        specs = arch.get("layers")
        if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_LAYERS:
            raise ModelError(f"the description must list from 1 to {MAX_LAYERS} layers")
        layers = [_layer(s, arrays) for s in specs]
        model = Model(tuple(layers), _classes(arch.get("classes")), _input_size(arch.get("input_size")),
                      _preprocessing(arch.get("preprocessing")), _meta(arch.get("meta", {})))
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ModelError(f"the model description is broken ({type(e).__name__}: {_first_line(e)})") from None
    if arrays:
        raise ModelError(f"the file holds arrays no layer uses: {', '.join(sorted(arrays)[:5])}")
    check_model(model)
    return model


def _architecture(a) -> dict:
    """The "architecture" text array -> the parsed description (a dict)."""
    if a is None:
        raise ModelError("this .npz has no 'architecture' entry, so it was not saved by cnnviz")
    if a.dtype.kind != "U" or a.shape != ():
        raise ModelError("the 'architecture' entry is not the text that cnnviz writes")
    try:
        arch = json.loads(str(a[()]))
    except RecursionError:
        raise ModelError("the model description is nested too deeply") from None
    except ValueError as e:
        raise ModelError(f"the model description is not valid JSON ({_first_line(e)})") from None
    if _depth(arch) > MAX_JSON_DEPTH:
        raise ModelError("the model description is nested too deeply")
    if not isinstance(arch, dict):
        raise ModelError("the model description is not a JSON object")
    if arch.get("format", FORMAT) != FORMAT:
        raise ModelError(f"the file says it is {str(arch['format'])[:40]!r}; this cnnviz reads {FORMAT!r}")
    return arch


def _depth(x) -> int:
    """How deeply lists and dicts nest in x (without recursion, whatever the depth)."""
    deepest, todo = 0, [(x, 0)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d + 1)
            todo += [(u, d + 1) for u in (v.values() if isinstance(v, dict) else v)]
    return deepest


def _layer(s, arrays: dict) -> Layer:
    """One layer's description plus its arrays (taken out of `arrays`) -> a checked Layer."""
    if not isinstance(s, dict):
        raise ModelError("a layer in the description is not a JSON object")
    name, kind = s.get("name"), s.get("kind")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ModelError(f"layer name {str(name)[:40]!r} is not a short plain name (letters, digits and _)")
    if kind not in KINDS:
        raise ModelError(f"layer {name!r} has unknown kind {str(kind)[:40]!r}; cnnviz knows {', '.join(KINDS)}")
    options, spec = s.get("options", {}), s.get("params", {})
    if not isinstance(options, dict) or not isinstance(spec, dict):
        raise ModelError(f"layer {name!r} has a broken description")
    unknown = sorted(set(options) - _OPTIONS.get(kind, set()))
    if unknown:
        raise ModelError(f"layer {name!r} has a setting cnnviz does not know: {unknown[0][:40]!r}")
    if set(spec) not in _PARAMS.get(kind, (set(),)):
        raise ModelError(f"layer {name!r} ({kind}) cannot have the parameters {sorted(spec)}")
    params = {}
    for key, shape in spec.items():
        a = arrays.pop(f"{name}.{key}", None)
        if a is None:
            raise ModelError(f"the file lacks the array {name}.{key}")
        if not isinstance(shape, list) or list(a.shape) != shape or a.dtype.kind not in "fiu":
            raise ModelError(f"{name}.{key} has shape {a.shape}, expected {tuple(shape)}")
        with np.errstate(over="ignore", invalid="ignore"):
            w = a.astype(np.float32)  # float64 1e300 is finite, but not as float32
        if not np.all(np.isfinite(w)):
            raise ModelError(f"{name}.{key} contains NaN or infinite numbers")
        if w.size and np.abs(w).max() > MAX_ABS_WEIGHT:
            raise ModelError(f"{name}.{key} holds numbers up to {np.abs(w).max():.3g}; a trained network's "
                             f"weights stay below {MAX_ABS_WEIGHT:g}")
        params[key] = w
    if params:
        ndim = 4 if kind == "conv" else 2
        w, b = params["weight"], params.get("bias")
        if w.ndim != ndim or 0 in w.shape or (b is not None and b.shape != w.shape[:1]):
            raise ModelError(f"layer {name!r} needs a {ndim}-D weight and one bias per output, "
                             f"not {w.shape} and {None if b is None else b.shape}")
    return Layer(name, kind, params, options)


def _classes(classes) -> tuple:
    if not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES:
        raise ModelError(f"the model must name from 1 to {MAX_CLASSES} classes")
    for c in classes:
        if not isinstance(c, str) or not _CLASS_NAME.fullmatch(c):
            raise ModelError(f"the class name {str(c)[:40]!r} is not a short plain name (up to 40 letters, "
                             "digits, spaces and simple punctuation)")
    return tuple(classes)


def _input_size(size) -> tuple:
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)):
        raise ModelError(f"the input size {str(size)[:40]} is not two whole numbers")
    return tuple(size)


def _preprocessing(pre) -> dict:
    if pre is None:
        return {"mean": [0.0] * 3, "std": [1.0] * 3}
    _check_preprocessing(pre)
    return {"mean": [float(v) for v in pre["mean"]], "std": [float(v) for v in pre["std"]]}


def _meta(meta) -> dict:
    """The description's facts (dataset, accuracy, ...); the ones the app formats as numbers must be numbers."""
    if not isinstance(meta, dict):
        raise ModelError("the model's meta facts are not a JSON object")
    acc = meta.get("test_accuracy")
    if acc is not None and (isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0 <= acc <= 1):
        raise ModelError(f"the test accuracy {str(acc)[:40]!r} is not a number from 0 to 1")
    return dict(meta)


def check_model(model: Model) -> None:
    """Raise ModelError unless a picture flows through every layer to one score per class."""
    if not model.layers or not model.classes:
        raise ModelError("the model has no layers or no classes")
    if len(model.input_size) != 2 or not all(4 <= s <= 256 for s in model.input_size):
        raise ModelError(f"input size {model.input_size} is not between 4x4 and 256x256")
    _check_preprocessing(model.preprocessing)
    for la in model.layers:
        _check_options(la)
    _check_sizes(model)
    x = np.zeros((1, 3, *model.input_size), np.float32)
    try:
        for la in model.layers:
            x = la(x)
    except (ValueError, IndexError) as e:
        raise ModelError(f"the layer shapes do not fit together at {la.name}: {_first_line(e)}") from None
    if x.shape != (1, len(model.classes)):
        raise ModelError(f"the model ends with {x.shape[1:]} values but names {len(model.classes)} classes")


def _check_sizes(model: Model) -> None:
    """Follow one picture's shape through the layers without computing anything, so that a file can
    never make the server allocate gigabytes: every layer must need at most MAX_STAGE_VALUES numbers."""
    shape = (3, *model.input_size)  # (C, H, W), later (n,)
    for la in model.layers:
        work = 0
        if la.kind == "conv":
            F, C, KH, KW = la.params["weight"].shape
            stride, pad = la.options.get("stride", 1), la.options.get("padding", 0)
            if len(shape) != 3 or shape[0] != C:
                raise ModelError(f"the layer shapes do not fit together at {la.name}: its filters expect "
                                 f"{C} maps, it gets {'x'.join(map(str, shape))}")
            H, W = (L.conv_output_size(n, k, stride, pad) for n, k in zip(shape[1:], (KH, KW)))
            work = C * KH * KW * max(H, 0) * max(W, 0)  # im2col's unfolded windows
            if H < 1 or W < 1:
                raise ModelError(f"the layer shapes do not fit together at {la.name}: {KH}x{KW} filters do "
                                 f"not fit in {shape[1]}x{shape[2]} maps")
            shape = (F, H, W)
        elif la.kind in ("maxpool", "avgpool"):
            size = la.options.get("size", 2)
            stride = la.options.get("stride") or size
            if len(shape) != 3 or min(shape[1:]) < size:
                raise ModelError(f"the layer shapes do not fit together at {la.name}: a {size}x{size} window "
                                 f"does not fit in {'x'.join(map(str, shape))}")
            shape = (shape[0], *(L.conv_output_size(n, size, stride) for n in shape[1:]))
        elif la.kind == "flatten":
            shape = (math.prod(shape),)
        elif la.kind == "dense":
            out, n_in = la.params["weight"].shape
            if shape != (n_in,):
                raise ModelError(f"the layer shapes do not fit together at {la.name}: it expects a list of "
                                 f"{n_in} numbers, it gets {'x'.join(map(str, shape))}")
            shape = (out,)
        if max(work, math.prod(shape)) > MAX_STAGE_VALUES:
            raise ModelError(f"layer {la.name!r} would need {max(work, math.prod(shape)):,} numbers for one "
                             f"picture; the limit is {MAX_STAGE_VALUES:,}")


def _check_preprocessing(pre: dict) -> None:
    """Three finite means near 0..1 and three spreads that are neither tiny nor huge (a spread of 1e-30
    would blow every pixel up to 1e30)."""
    try:
        mean = np.asarray(pre["mean"], np.float64)  # (3,)
        std = np.asarray(pre["std"], np.float64)  # (3,)
    except (KeyError, TypeError, ValueError, IndexError):
        mean = std = np.zeros(0)
    ok = mean.shape == std.shape == (3,) and np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    if not (ok and np.all(np.abs(mean) <= 10) and np.all((std >= 1e-3) & (std <= 1e3))):
        raise ModelError("preprocessing needs three means (from -10 to 10) and three spreads (from 0.001 to 1000)")


def _check_options(la: Layer) -> None:
    """Strides and sizes are whole numbers from 1, padding from 0. The cap of 64 keeps a file
    from asking for a gigantic padded array."""
    for key in ("stride", "padding", "size"):
        if key not in la.options or (key == "stride" and la.kind in ("maxpool", "avgpool")
                                     and la.options[key] is None):  # None: a pool's stride is its size
            continue
        value, low = la.options[key], 0 if key == "padding" else 1
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 64:
            raise ModelError(f"layer {la.name!r} has {key}={value!r:.40}; it must be a whole number from {low} to 64")
