"""The .npz model file: writing one, and every check on a stranger's file before it is used.

    arrays = {"architecture": JSON text, "<layer>.<param>": float32 array, ...}

The JSON holds the format name, the layers (name, kind, options, parameter shapes), the
class names, the input size, the preprocessing and the meta facts. Nothing is pickled.
Which kinds exist, their parameters, settings and shapes come from `layers.KINDS`.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from . import layers as L
from .model import DEFAULT_MODEL_PATH, Layer, Model, ModelError, thaw
from .safenpz import NpzError, NpzLimits, read_npz

FORMAT = "cnnviz-model/1"


def save_model(model: Model, path) -> None:
    """Write one .npz: "architecture" (JSON text) plus one array per parameter. Never pickled."""
    arch = {
        "format": FORMAT,
        "layers": [la.spec() for la in model.layers],
        "classes": list(model.classes),
        "input_size": list(model.input_size),
        "preprocessing": thaw(model.preprocessing),
        "meta": thaw(model.meta),
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
LAYER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
# Class names are shown in markdown: no brackets, backticks, stars, dollars, pipes or angle brackets,
# so a name can never turn into a link, a picture, code, maths or HTML.
_CLASS_NAME = re.compile(r"[\w][\w .,'/&+:()!?%#-]{0,39}")


def first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _model_from_arrays(arrays: dict) -> Model:
    arch = _architecture(arrays.pop("architecture", None))
    try:
        specs = arch.get("layers")
        if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_LAYERS:
            raise ModelError(f"the description must list from 1 to {MAX_LAYERS} layers")
        layers = [_layer(s, arrays) for s in specs]
        model = Model(tuple(layers), check_classes(arch.get("classes")), _input_size(arch.get("input_size")),
                      _preprocessing(arch.get("preprocessing")), check_meta(arch.get("meta", {})))
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ModelError(f"the model description is broken ({type(e).__name__}: {first_line(e)})") from None
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
        raise ModelError(f"the model description is not valid JSON ({first_line(e)})") from None
    if json_depth(arch) > MAX_JSON_DEPTH:
        raise ModelError("the model description is nested too deeply")
    if not isinstance(arch, dict):
        raise ModelError("the model description is not a JSON object")
    if arch.get("format", FORMAT) != FORMAT:
        raise ModelError(f"the file says it is {str(arch['format'])[:40]!r}; this cnnviz reads {FORMAT!r}")
    return arch


def json_depth(x) -> int:
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
    if not isinstance(name, str) or not LAYER_NAME.fullmatch(name):
        raise ModelError(f"layer name {str(name)[:40]!r} is not a short plain name (letters, digits and _)")
    if not isinstance(kind, str) or kind not in L.KINDS:
        raise ModelError(f"layer {name!r} has unknown kind {str(kind)[:40]!r}; cnnviz knows {', '.join(L.KINDS)}")
    k = L.KINDS[kind]
    options, spec = s.get("options", {}), s.get("params", {})
    if not isinstance(options, dict) or not isinstance(spec, dict):
        raise ModelError(f"layer {name!r} has a broken description")
    unknown = sorted(set(options) - set(k.options))
    if unknown:
        raise ModelError(f"layer {name!r} has a setting cnnviz does not know: {unknown[0][:40]!r}")
    if not set(k.params) - set(k.optional) <= set(spec) <= set(k.params):
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
        ndim = k.weight_dims
        w, b = params["weight"], params.get("bias")
        if w.ndim != ndim or 0 in w.shape or (b is not None and b.shape != w.shape[:1]):
            raise ModelError(f"layer {name!r} needs a {ndim}-D weight and one bias per output, "
                             f"not {w.shape} and {None if b is None else b.shape}")
    return Layer(name, kind, params, options)


def check_classes(classes) -> tuple:
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
    check_preprocessing(pre)
    return {"mean": [float(v) for v in pre["mean"]], "std": [float(v) for v in pre["std"]]}


def check_meta(meta) -> dict:
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
    check_preprocessing(model.preprocessing)
    for la in model.layers:
        _check_options(la)
    _check_sizes(model)
    x = np.zeros((1, 3, *model.input_size), np.float32)
    try:
        for la in model.layers:
            x = la(x)
    except (ValueError, IndexError) as e:
        raise ModelError(f"the layer shapes do not fit together at {la.name}: {first_line(e)}") from None
    if x.shape != (1, len(model.classes)):
        raise ModelError(f"the model ends with {x.shape[1:]} values but names {len(model.classes)} classes")


def _check_sizes(model: Model) -> None:
    """Follow one picture's shape through the layers without computing anything, so that a file can
    never make the server allocate gigabytes: every layer must need at most MAX_STAGE_VALUES numbers."""
    shape = (3, *model.input_size)  # (C, H, W), later (n,)
    for la in model.layers:
        kind = L.KINDS[la.kind]
        try:
            out = kind.shape(shape, la.params, la.options)
        except (ValueError, IndexError, KeyError) as e:
            raise ModelError(f"the layer shapes do not fit together at {la.name}: {first_line(e)}") from None
        work = math.prod(out)
        if kind.unfolds:  # im2col copies every window: positions x numbers per window
            work = max(work, math.prod(out[1:]) * math.prod(la.params["weight"].shape[1:]))
        if work > MAX_STAGE_VALUES:
            raise ModelError(f"layer {la.name!r} would need {work:,} numbers for one "
                             f"picture; the limit is {MAX_STAGE_VALUES:,}")
        shape = out


def check_preprocessing(pre: dict) -> None:
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
    """Strides and sizes are whole numbers from 1, padding from 0; a pool's stride may be None (its size).
    The cap of 64 keeps a file from asking for a gigantic padded array."""
    for key, value in la.options.items():
        if key == "stride" and value is None and L.KINDS[la.kind].options.get("stride", 0) is None:
            continue
        low = 0 if key == "padding" else 1
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 64:
            raise ModelError(f"layer {la.name!r} has {key}={value!r:.40}; it must be a whole number from {low} to 64")
