"""A CNN as a value: layers, class names and preprocessing, with forward and trace.

A `Model` is never changed in place. Its parameter arrays are read-only, its
dicts (options, preprocessing, meta) are read-only views, and an edit (one
new filter, another activation) builds a new `Model` that shares every
untouched array with the original. So the default model cached for a whole
classroom can be handed to every session safely.

Reading and checking model files lives in `cnnviz.modelfile`; `load_model`
and `save_model` are importable from here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from . import layers as L
from .images import fit_to_input

KINDS = tuple(L.KINDS)
ACTIVATIONS = L.ACTIVATIONS
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "assets" / "models" / "cifar10_tinyvgg.npz"


class ModelError(ValueError):
    """A model file or description that cannot be used, with a message that says why."""


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float32)  # always a private copy
    a.flags.writeable = False
    return a


def freeze(value):
    """A read-only deep copy of JSON-like data: dicts become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value):
    """The plain dicts and lists back from `freeze` (for JSON, or to build an edited copy)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Layer:
    """One layer: `name` like "conv1_1", `kind` from KINDS, `params` and `options`.

    params: {"weight": (F, C, KH, KW), "bias": (F,)} for conv, {"weight": (out, in),
    "bias": (out,)} for dense (the bias may be left out), {} otherwise. options:
    {"stride": 1, "padding": 1} for conv, {"size": 2} for pools, {} otherwise.
    """

    name: str
    kind: str
    params: Mapping = field(default_factory=dict)
    options: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in L.KINDS:
            raise ModelError(f"layer {self.name!r} has unknown kind {self.kind!r}")
        object.__setattr__(self, "params", MappingProxyType({k: _frozen(v) for k, v in self.params.items()}))
        object.__setattr__(self, "options", freeze(self.options))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch: (N, ...) -> (N, ...)."""
        y, _ = L.KINDS[self.kind].forward(x, self.params, self.options)
        return y

    def spec(self) -> dict:
        """The architecture part of this layer, JSON-ready (no arrays)."""
        return {"name": self.name, "kind": self.kind, "options": thaw(self.options),
                "params": {k: list(v.shape) for k, v in self.params.items()}}


@dataclass(frozen=True)
class Model:
    """A whole network. `preprocessing` holds per-channel `mean` and `std` of the 0..1 pixels."""

    layers: tuple
    classes: tuple
    input_size: tuple = (32, 32)
    preprocessing: Mapping = field(default_factory=lambda: {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]})
    meta: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "input_size", tuple(int(s) for s in self.input_size))
        object.__setattr__(self, "preprocessing", freeze(self.preprocessing))
        object.__setattr__(self, "meta", freeze(self.meta))

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
        """A new model whose conv layer `layer_name` has filter `index` set to `kernel` (C, KH, KW).

        A layer without biases gets them (all 0) when `bias` is given.
        """
        old = self.layer(layer_name)
        w = np.array(old.params["weight"])
        if np.shape(kernel) != w.shape[1:]:
            raise ModelError(f"filter must have shape {w.shape[1:]}, got {np.shape(kernel)}")
        w[index] = kernel
        params = {**old.params, "weight": w}
        if bias is not None:
            b = np.array(old.params["bias"]) if "bias" in old.params else np.zeros(w.shape[0], np.float32)
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


# The file format lives in cnnviz.modelfile, which builds on the values above; these two names
# stay here too, as the core contract promises. Imported on call, since modelfile imports this module.
def load_model(path=None) -> Model:
    """Read a model file (a path, bytes or file object); None loads the shipped default. See modelfile."""
    from .modelfile import load_model as load
    return load(path)


def save_model(model: Model, path) -> None:
    """Write `model` as one .npz (see modelfile.save_model)."""
    from .modelfile import save_model as save
    save(model, path)
