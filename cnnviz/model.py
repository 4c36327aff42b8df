"""A CNN as a value: layers, class names and preprocessing, with forward and trace.

A `Model` is never changed in place. Its parameter arrays are read-only, and
an edit (one new filter, another activation) builds a new `Model` that shares
every untouched array with the original. So the default model cached for a
whole classroom can be handed to every session safely.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import layers as L
from .images import fit_to_input

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

    Anything that is not a valid cnnviz model raises ModelError with the reason:
    not an .npz, pickled content (never unpickled), missing or extra arrays,
    shapes that do not chain, non-finite weights.
    """
    source = DEFAULT_MODEL_PATH if path is None else path
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        npz = np.load(source, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy array has no context manager
            raise ModelError("this is a single NumPy array (.npy), not a cnnviz model file (.npz)")
        with npz:
            arrays = {k: npz[k] for k in npz.files}
    except ModelError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        if "pickle" in str(e).lower():
            raise ModelError("this file holds pickled Python objects, which are never loaded (unsafe)") from None
        raise ModelError("this is not a cnnviz model file (.npz): " + _first_line(e)) from None
    return _model_from_arrays(arrays)


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _model_from_arrays(arrays: dict) -> Model:
    if "architecture" not in arrays:
        raise ModelError("this .npz has no 'architecture' entry, so it was not saved by cnnviz")
    try:
        arch = json.loads(str(arrays.pop("architecture")))
        specs = arch["layers"]
        layers = []
        for s in specs:
            params = {}
            for key, shape in s.get("params", {}).items():
                a = arrays.pop(f"{s['name']}.{key}", None)
                if a is None:
                    raise ModelError(f"the file lacks the array {s['name']}.{key}")
                if list(a.shape) != list(shape) or a.dtype.kind not in "fiu":
                    raise ModelError(f"{s['name']}.{key} has shape {a.shape}, expected {tuple(shape)}")
                if not np.all(np.isfinite(a)):
                    raise ModelError(f"{s['name']}.{key} contains NaN or infinite numbers")
                params[key] = a
            layers.append(Layer(str(s["name"]), str(s["kind"]), params, dict(s.get("options", {}))))
        model = Model(tuple(layers), tuple(arch["classes"]), tuple(arch["input_size"]),
                      dict(arch.get("preprocessing") or {"mean": [0] * 3, "std": [1] * 3}), dict(arch.get("meta", {})))
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelError(f"the model description is broken ({type(e).__name__}: {_first_line(e)})") from None
    if arrays:
        raise ModelError(f"the file holds arrays no layer uses: {', '.join(sorted(arrays)[:5])}")
    check_model(model)
    return model


def check_model(model: Model) -> None:
    """Raise ModelError unless a picture flows through every layer to one score per class."""
    if not model.layers or not model.classes:
        raise ModelError("the model has no layers or no classes")
    if len(model.input_size) != 2 or not all(4 <= s <= 256 for s in model.input_size):
        raise ModelError(f"input size {model.input_size} is not between 4x4 and 256x256")
    _check_preprocessing(model.preprocessing)
    for la in model.layers:
        _check_options(la)
    x = np.zeros((1, 3, *model.input_size), np.float32)
    try:
        for la in model.layers:
            x = la(x)
    except (ValueError, IndexError) as e:
        raise ModelError(f"the layer shapes do not fit together at {la.name}: {_first_line(e)}") from None
    if x.shape != (1, len(model.classes)):
        raise ModelError(f"the model ends with {x.shape[1:]} values but names {len(model.classes)} classes")


def _check_preprocessing(pre: dict) -> None:
    try:
        mean = np.asarray(pre["mean"], np.float64)  # (3,)
        std = np.asarray(pre["std"], np.float64)  # (3,)
    except (KeyError, TypeError, ValueError):
        mean = std = np.zeros(0)
    ok = mean.shape == std.shape == (3,) and np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    if not (ok and np.all(std > 0)):
        raise ModelError("preprocessing needs three means and three positive spreads")


def _check_options(la: Layer) -> None:
    """Strides and sizes are whole numbers from 1, padding from 0. The cap of 64 keeps a file
    from asking for a gigantic padded array."""
    for key in ("stride", "padding", "size"):
        if key not in la.options or (key == "stride" and la.kind in ("maxpool", "avgpool")
                                     and la.options[key] is None):  # None: a pool's stride is its size
            continue
        value, low = la.options[key], 0 if key == "padding" else 1
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 64:
            raise ModelError(f"layer {la.name!r} has {key}={value!r}; it must be a whole number from {low} to 64")
