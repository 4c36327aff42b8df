"""Bring your own network: read an ONNX file into a cnnviz Model, and write any Model as ONNX.

Import follows the picture through the graph one node at a time. Each node either
- computes a small fixed value (Constant, Shape and the Gather/Unsqueeze/Concat that exporters
  chain into a Reshape's target shape): worked out here, on a few integers;
- or takes the picture's numbers one step on (Conv, Relu, MaxPool, Gemm, ...): it becomes one
  cnnviz layer, or folds into the layer before it (BatchNormalization into a Conv, Add into the
  bias of a MatMul), or disappears (Dropout, Identity).
Anything else, and anything that is not one straight chain, is refused with ModelError naming
the node, its operator and what cnnviz understands. Nothing half-loads: the Model is built only
once every node has been read, and it passes `modelfile.check_model`.

The file may come from anyone, so it is read as bytes and parsed with protobuf alone (no ONNX
runtime); tensors kept in other files (external data) are refused, never opened; every
tensor's size is checked from its declared dims before any array is made.

Class names and preprocessing travel in the model's metadata_props (see METADATA):
    cnnviz.classes  JSON list of names        cnnviz.mean / cnnviz.std  JSON lists of 3 numbers
    cnnviz.meta     JSON object (dataset, test accuracy, ...)
An imported model's meta adds "source": "onnx", "producer" (the exporting program), "classes_from"
and "preprocessing_from" ("given", "metadata" or "default") and "batchnorm_folded" (a count, if any).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from . import layers as L
from . import modelfile as MF
from .model import Layer, Model, ModelError, thaw

MAX_FILE_BYTES = 50 * 2**20
MAX_NODES = 500
MAX_TENSORS = 1000  # initializers plus Constant values
MAX_SHAPE_VALUES = 64  # the integer arrays of a shape computation are a handful of numbers
INPUT_SIDES = (8, 128)
OPSET = 17
IR_VERSION = 8  # what opset 17 came with; runtimes from 2022 on read it
PRODUCER = "cnnviz"
METADATA = ("cnnviz.classes", "cnnviz.mean", "cnnviz.std", "cnnviz.meta")
SUPPORTED = ("Conv, Relu, Tanh, Sigmoid, MaxPool, AveragePool, BatchNormalization (after a Conv), Flatten, "
             "Reshape (to one list per picture), Gemm, MatMul + Add, Softmax, Dropout and Identity")
_BATCH = -(2**40)  # stands for the picture count N in shape computations: never a real size
_FLOATS = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16}
_INTS = {TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL}  # BOOL: Dropout's training_mode
_NOT_ONNX = ((b"\x89PNG", "a PNG picture"), (b"\xff\xd8\xff", "a JPEG picture"),
             (b"PK\x03\x04", "a zip archive (a cnnviz .npz model file?)"))


# ---------------------------------------------------------------- import: the public function


def import_onnx(data, classes=None, input_size=None, mean=None, std=None) -> Model:
    """An ONNX model (bytes, a path or a file object) -> a checked cnnviz Model.

    classes: names for the K outputs; input_size: (H, W) when the file leaves them open;
    mean, std: three numbers each, applied to 0..1 pixels. Given ones win over the file's
    metadata_props; without either, classes are "class 1".."class K" and pixels are only
    scaled to 0..1, and meta["classes_from"] / meta["preprocessing_from"] say "default".
    Raises ModelError, with the reason in plain words, and nothing else.
    """
    try:
        return _import(_parse(_read(data)), classes, input_size, mean, std)
    except ModelError:
        raise
    except Exception as e:  # a stranger's file must never crash the page: any surprise is one plain message
        raise ModelError(f"the ONNX model is broken ({type(e).__name__}: {MF.first_line(e)})") from None


def classes_from_text(text: str) -> list[str]:
    """The text of a classes.txt -> class names: one a line, blank lines left out."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _read(data) -> bytes:
    """bytes, a path or a file object -> at most MAX_FILE_BYTES bytes (one more is read to notice a bigger file)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    elif isinstance(data, (str, os.PathLike)):
        try:
            with open(data, "rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise ModelError(f"cannot read {os.fspath(data)!s:.200}: {e.strerror or e}") from None
    elif hasattr(data, "read"):
        raw = data.read(MAX_FILE_BYTES + 1)
        if not isinstance(raw, bytes):
            raise ModelError("the ONNX file must be opened in binary mode")
    else:
        raise ModelError(f"cannot read an ONNX model from a {type(data).__name__}")
    if len(raw) > MAX_FILE_BYTES:
        raise ModelError(f"the file is larger than {MAX_FILE_BYTES // 2**20} MB, the most cnnviz reads")
    if not raw:
        raise ModelError("the file is empty")
    return raw


def _parse(raw: bytes) -> onnx.ModelProto:
    """Bytes -> ModelProto, by protobuf alone: nothing else is opened and no external data is loaded."""
    for magic, what in _NOT_ONNX:
        if raw.startswith(magic):
            raise ModelError(f"this is {what}, not an ONNX model")
    try:
        proto = onnx.load_model_from_string(raw)
    except Exception as e:  # protobuf's DecodeError and whatever a damaged file provokes
        raise ModelError(f"this is not an ONNX model, or the file is cut short: it cannot be read as one "
                         f"({MF.first_line(e)})") from None
    if not proto.HasField("graph") or not proto.graph.node:
        raise ModelError("this is not an ONNX model: it holds no network")
    return proto


def _import(proto: onnx.ModelProto, classes, input_size, mean, std) -> Model:
    g = proto.graph
    _check_graph(proto)
    consts = _initializers(proto)
    x, N, size = _graph_input(g, consts, input_size)
    chain = _Chain(x, (3, *size), N, consts, _opset(proto), _used(g))
    for node in g.node:
        _step(chain, node)
    _check_end(chain, g)
    specs = chain.layers
    if specs[-1].kind != "softmax":  # model.forward adds it anyway; a layer makes traces end with probabilities
        specs.append(_Spec("softmax", "", {}, {}))
    names = _layer_names(specs, proto.producer_name == PRODUCER)
    layers = tuple(Layer(n, s.kind, s.params, s.options) for n, s in zip(names, specs))
    class_names, pre, meta = _labels(proto, chain.shape[0], classes, mean, std, chain.folded)
    model = Model(layers, class_names, size, pre, meta)
    _check_weights(model)
    MF.check_model(model)
    return model


# ---------------------------------------------------------------- import: checks before any array is made


def _check_graph(proto: onnx.ModelProto) -> None:
    """Refuse what cnnviz never follows: huge graphs, functions, sparse tensors, control flow, other domains."""
    g = proto.graph
    if len(g.node) > MAX_NODES:
        raise ModelError(f"the graph has {len(g.node)} nodes; cnnviz reads networks of up to {MAX_NODES}")
    if proto.functions:
        raise ModelError("the model defines its own functions (local ONNX functions); cnnviz reads plain graphs only")
    if g.sparse_initializer:
        raise ModelError("the model holds sparse tensors; cnnviz reads plain (dense) tensors only")
    for node in g.node:
        where = _where(node)
        if node.domain not in ("", "ai.onnx"):
            raise ModelError(f"{where} comes from the custom operator domain {_name(node.domain, 60)}; "
                             f"cnnviz understands standard ONNX operators only: {SUPPORTED}")
        if node.op_type in ("If", "Loop", "Scan"):
            raise ModelError(f"{where} is control flow ({node.op_type}); cnnviz reads a straight chain of "
                             f"layers: {SUPPORTED}")
        for a in node.attribute:
            if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) or a.HasField("g") or a.graphs:
                raise ModelError(f"{where} holds a graph inside it; cnnviz reads a straight chain of layers")
            if a.type in (AttributeProto.SPARSE_TENSOR, AttributeProto.SPARSE_TENSORS) or a.HasField("sparse_tensor"):
                raise ModelError(f"{where} holds a sparse tensor; cnnviz reads plain (dense) tensors only")
    known = {t.name for t in g.initializer} | {i.name for i in g.input}
    for y in (y for n in g.node for y in n.output if y):
        if y in known:  # every tensor has one maker, or "the node before" would mean nothing
            raise ModelError(f"the graph makes the tensor {_name(y, 60)} twice; it is not a valid ONNX graph")
        known.add(y)
    tensors = [(t, f"the tensor {_name(t.name, 60)}") for t in g.initializer]
    tensors += [(t, f"the value of {_where(n)}") for n in g.node for a in n.attribute for t in [a.t, *a.tensors]
                if a.HasField("t") or a.tensors]
    if len(tensors) > MAX_TENSORS:
        raise ModelError(f"the model holds {len(tensors)} tensors; cnnviz reads up to {MAX_TENSORS}")
    total = 0
    for t, what in tensors:
        total += _check_tensor(t, what)
    if total > MF.LIMITS.max_total:
        raise ModelError(f"the model declares {total:,} numbers in all; the limit is {MF.LIMITS.max_total:,}")


def _check_tensor(t: TensorProto, what: str) -> int:
    """Refuse external data and oversized tensors from the declared dims alone -> the tensor's element count."""
    if t.data_location == TensorProto.EXTERNAL or t.external_data:
        raise ModelError(f"{what} is kept in another file (ONNX external data); cnnviz reads only self-contained "
                         ".onnx files and never opens other files")
    if t.data_type not in _FLOATS | _INTS:
        name = TensorProto.DataType.Name(t.data_type) if t.data_type in TensorProto.DataType.values() else "unknown"
        raise ModelError(f"{what} is of type {name}; cnnviz reads float, integer and boolean tensors")
    if len(t.dims) > 8 or any(d < 0 for d in t.dims):
        raise ModelError(f"{what} has an impossible shape {list(t.dims)[:10]}")
    n = math.prod(t.dims)
    if n > MF.LIMITS.max_elements:
        raise ModelError(f"{what} declares {n:,} numbers; the limit is {MF.LIMITS.max_elements:,} a tensor")
    return n


def _initializers(proto: onnx.ModelProto) -> dict:
    """Every initializer as an array (each already checked by _check_graph)."""
    return {t.name: _array(t, f"the tensor {_name(t.name, 60)}") for t in proto.graph.initializer}


def _array(t: TensorProto, what: str) -> np.ndarray:
    _check_tensor(t, what)  # again: the one line that guards numpy_helper against external data
    try:
        return numpy_helper.to_array(t)
    except (ValueError, TypeError) as e:
        raise ModelError(f"{what} is broken: the numbers stored do not match the shape "
                         f"({MF.first_line(e)})") from None


def _opset(proto: onnx.ModelProto) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    top = onnx.defs.onnx_opset_version()
    if not versions:
        raise ModelError("the model does not say which ONNX version (opset) it uses; the file may be cut short")
    if not 7 <= versions[0] <= top:
        raise ModelError(f"the model uses ONNX opset {versions[0]}; cnnviz reads opsets 7 to {top}")
    return versions[0]


def _graph_input(g: onnx.GraphProto, consts: dict, input_size) -> tuple[str, int | None, tuple]:
    """The one picture input N x 3 x H x W -> (its name, N or None when open, (H, W))."""
    inputs = [i for i in g.input if i.name not in consts]  # old files list their weights as inputs too
    if len(inputs) != 1:
        raise ModelError(f"the model takes {len(inputs)} inputs; cnnviz needs exactly one, a batch of pictures")
    i = inputs[0]
    tt = i.type.tensor_type
    if not i.type.HasField("tensor_type") or tt.elem_type != TensorProto.FLOAT:
        raise ModelError(f"the input {_name(i.name, 60)} is not a float tensor; cnnviz gives pictures as float32")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
    if not tt.HasField("shape") or len(dims) != 4 or dims[1] != 3:
        shown = "x".join("?" if d is None else str(d) for d in dims) or "unknown"
        raise ModelError(f"the input {_name(i.name, 60)} has shape {shown}; cnnviz needs N x 3 x H x W "
                         "(colour pictures)")
    size = tuple(input_size) if input_size is not None else tuple(dims[2:])
    if None in size:
        raise ModelError("the file leaves the picture size open; give it (input_size, or --input-size H W)")
    if any(d is not None and d != s for d, s in zip(dims[2:], size)):
        raise ModelError(f"the model takes {dims[2]}x{dims[3]} pictures, not {size[0]}x{size[1]}")
    lo, hi = INPUT_SIDES
    if not all(isinstance(s, int) and lo <= s <= hi for s in size):
        raise ModelError(f"the model takes {size[0]}x{size[1]} pictures; cnnviz shows sizes from "
                         f"{lo}x{lo} to {hi}x{hi}")
    return i.name, dims[0] or None, size


def _used(g: onnx.GraphProto) -> set:
    return {x for n in g.node for x in n.input} | {o.name for o in g.output}


# ---------------------------------------------------------------- import: walking the chain


@dataclass
class _Spec:
    """One layer before it is named: its kind, the node it came from, params and options."""

    kind: str
    node: str
    params: dict
    options: dict


@dataclass
class _Chain:
    """The walk so far: `current` is the tensor that holds the picture's numbers now, `shape` its
    shape for one picture ((C, H, W) maps or (n,) a list), `consts` every fixed tensor by name."""

    current: str
    shape: tuple
    N: int | None
    consts: dict
    opset: int
    used: set
    layers: list = field(default_factory=list)
    past: set = field(default_factory=set)  # earlier picture tensors: reading one again is a branch
    folded: int = 0  # BatchNormalizations folded into convs


def _step(chain: _Chain, node) -> None:
    """Read one node: a fixed computation, or one step of the picture through the chain."""
    if _fixed(chain, node):
        chain.consts[node.output[0]] = _CONST_OPS[node.op_type](chain, node)
        return
    op = _OPS.get(node.op_type)
    if op is None:
        raise ModelError(f"{_where(node)}: cnnviz does not support the {_text(node.op_type, 40)} operator; "
                         f"it reads {SUPPORTED}")
    args = list(node.input)
    if node.op_type == "Add" and args[1:] == [chain.current]:  # bias + x is x + bias
        args.reverse()
    _check_inputs(chain, node, args)
    if chain.layers and chain.layers[-1].kind == "softmax" and node.op_type not in ("Dropout", "Identity"):
        raise ModelError(f"{_where(node)} comes after Softmax; cnnviz needs Softmax to be the last step")
    op(chain, node, args)
    chain.past.add(chain.current)
    chain.current = node.output[0]


def _fixed(chain: _Chain, node) -> bool:
    """Does the node compute a fixed value: a Constant, the picture's Shape, or a shape step on fixed values?"""
    ins = [x for x in node.input if x]
    if node.op_type == "Shape":
        return ins == [chain.current] or (len(ins) == 1 and ins[0] in chain.consts)
    if node.op_type == "Constant":
        return True
    return node.op_type in _CONST_OPS and bool(ins) and all(x in chain.consts for x in ins)


def _check_inputs(chain: _Chain, node, args: list) -> None:
    """The first input must be the picture as the node before left it, the others fixed tensors;
    outputs past the first (a Dropout mask, MaxPool indices) must be unused."""
    first, *rest = args or [""]
    for x in (first, *rest):
        if x in chain.past:
            raise ModelError(f"{_where(node)} reads {_name(x, 60)}, an earlier layer's output: cnnviz reads one "
                             "straight chain (no branches or skip connections)")
    if first != chain.current:
        raise ModelError(f"{_where(node)} does not work on the output of the node before it; cnnviz reads one "
                         "straight chain of layers, each working on the one before")
    for x in rest:
        if x and x not in chain.consts:
            raise ModelError(f"{_where(node)} combines the picture with {_name(x, 60)}, which is not a fixed "
                             "tensor; cnnviz reads one straight chain of layers")
    for y in node.output[1:]:
        if y and y in chain.used:
            raise ModelError(f"{_where(node)} has a second output that is used; cnnviz follows one output a node")


def _check_end(chain: _Chain, g: onnx.GraphProto) -> None:
    if [o.name for o in g.output] != [chain.current]:
        raise ModelError("the graph's output is not the end of its chain of layers; cnnviz needs one output, "
                         "the scores (or probabilities) the last node makes")
    if not chain.layers or len(chain.shape) != 1:
        raise ModelError(f"the network ends with {'x'.join(map(str, chain.shape))} maps, not one score per class; "
                         "it needs Flatten and a fully connected layer (Gemm or MatMul)")


def _where(node) -> str:
    op = _text(node.op_type, 40) or "nameless"
    return f"node {_name(node.name, 60)} ({op})" if node.name else f"a {op} node"


def _text(s, n: int) -> str:
    """A string from the file, for a message: at most n characters (protobuf hands over bytes that are not UTF-8)."""
    return (s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s))[:n]


def _name(s, n: int) -> str:
    return repr(_text(s, n))


def _attrs(node) -> dict:
    """The node's attributes as plain values (ints, floats, strings, lists of them)."""
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return out


def _const(chain: _Chain, args: list, i: int) -> np.ndarray | None:
    """The node's i-th input as a fixed array, None when the input is left out."""
    return chain.consts[args[i]] if len(args) > i and args[i] else None


def _append(chain: _Chain, node, kind: str, params=None, options=None) -> None:
    """One new layer; its output shape must follow from the shape so far."""
    params, options = params or {}, options or {}
    try:
        chain.shape = L.KINDS[kind].shape(chain.shape, params, options)
    except ValueError as e:
        raise ModelError(f"{_where(node)} does not fit the numbers it gets: {MF.first_line(e)}") from None
    chain.layers.append(_Spec(kind, node.name, params, options))


def _need_list(chain: _Chain, node) -> None:
    if len(chain.shape) != 1:
        raise ModelError(f"{_where(node)} works on maps; cnnviz needs a Flatten (or Reshape) before it")


def _need_maps(chain: _Chain, node) -> None:
    if len(chain.shape) != 3:
        raise ModelError(f"{_where(node)} works on a list of numbers; cnnviz needs maps (C x H x W) there")


def _floats(a: np.ndarray | None, node, what: str, ndim: int) -> np.ndarray:
    if a is None or a.dtype.kind != "f" or a.ndim != ndim:
        raise ModelError(f"{_where(node)} needs its {what} as a {ndim}-D float tensor")
    return a.astype(np.float32)


# ------------------------------- picture steps: each appends a layer, folds into the last or passes on


def _conv(chain: _Chain, node, args: list) -> None:
    _need_maps(chain, node)
    a = _attrs(node)
    w = _floats(_const(chain, args, 1), node, "filters", 4)  # (F, C, KH, KW)
    b = _const(chain, args, 2)
    if a.get("group", 1) != 1:
        raise ModelError(f"{_where(node)} is a grouped convolution (group={a['group']}); cnnviz supports group=1")
    if list(a.get("kernel_shape", w.shape[2:])) != list(w.shape[2:]):
        raise ModelError(f"{_where(node)} has kernel_shape {a['kernel_shape']} but {w.shape[2]}x{w.shape[3]} filters")
    stride = _stride(a, node)
    padding = _padding(chain.shape[1:], w.shape[2:], stride, a, node)
    params = {"weight": w} | ({} if b is None else {"bias": _floats(b, node, "bias", 1)})
    _append(chain, node, "conv", params, {"stride": stride, "padding": padding})


def _pool(kind: str):
    def pool(chain: _Chain, node, args: list) -> None:
        _need_maps(chain, node)
        a = _attrs(node)
        k = list(a.get("kernel_shape", []))
        if len(k) != 2 or k[0] != k[1]:
            raise ModelError(f"{_where(node)} has a {'x'.join(map(str, k))} window; cnnviz pools square windows")
        stride = _stride(a, node)
        if _padding(chain.shape[1:], k, stride, a, node) != 0:
            raise ModelError(f"{_where(node)} pads the maps; cnnviz pools without padding")
        _append(chain, node, kind, options={"size": k[0]} | ({} if stride == k[0] else {"stride": stride}))
    return pool


def _stride(a: dict, node) -> int:
    s = list(a.get("strides", [1, 1]))
    if len(s) != 2 or s[0] != s[1]:
        raise ModelError(f"{_where(node)} has strides {s}; cnnviz uses the same stride down and across")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ModelError(f"{_where(node)} is dilated (dilations {list(a['dilations'])}); cnnviz supports dilation 1")
    return s[0]


def _padding(sizes, kernel, stride: int, a: dict, node) -> int:
    """ONNX padding (pads or auto_pad) -> one padding p on every side, when that gives the same windows.

    Padding (b, e) at the start and end of a side reads the same windows as (b, b) whenever both
    give the same number of outputs: the extra zeros at the end are then never read.
    """
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise ModelError(f"{_where(node)} has pads {pads}; cnnviz needs four numbers for a 2-D layer")
        begin, end = pads[:2], pads[2:]
    elif auto == "VALID":
        begin, end = [0, 0], [0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-n // stride) - 1) * stride + k - n, 0) for n, k in zip(sizes, kernel)]
        small = [t // 2 for t in total]
        big = [t - s for t, s in zip(total, small)]
        begin, end = (small, big) if auto == "SAME_UPPER" else (big, small)
    else:
        raise ModelError(f"{_where(node)} has auto_pad {_name(auto, 20)}; cnnviz reads NOTSET, VALID and SAME_UPPER "
                         "(or SAME_LOWER)")
    ceil = bool(a.get("ceil_mode", 0))
    p = begin[0]
    for n, k, b, e in zip(sizes, kernel, begin, end):
        span = n + b + e - k
        wanted = (-(-span // stride) if ceil else span // stride) + 1
        if b != p or min(b, e) < 0 or L.conv_output_size(n, k, stride, p) != wanted:
            raise ModelError(f"{_where(node)} pads {begin} at the start and {end} at the end"
                             + (" in ceil mode" if ceil else "")
                             + "; cnnviz needs the same padding on every side")
    return p


def _activation(kind: str):
    def activation(chain: _Chain, node, args: list) -> None:
        _append(chain, node, kind)
    return activation


def _batchnorm(chain: _Chain, node, args: list) -> None:
    """Fold y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta into the conv's own weights and bias."""
    last = chain.layers[-1] if chain.layers else None
    if last is None or last.kind != "conv":
        raise ModelError(f"{_where(node)} does not follow a Conv; cnnviz folds batch normalisation into the "
                         "filters of the convolution right before it and supports it nowhere else")
    a = _attrs(node)
    if a.get("training_mode", 0) or a.get("spatial", 1) != 1:
        raise ModelError(f"{_where(node)} is in training mode; cnnviz needs an inference (eval mode) export")
    w = last.params["weight"]  # (F, C, KH, KW)
    F = w.shape[0]
    gamma, beta, mean, var = (_floats(_const(chain, args, i), node, "statistics", 1).astype(np.float64)
                              for i in (1, 2, 3, 4))
    if not all(v.shape == (F,) for v in (gamma, beta, mean, var)):
        raise ModelError(f"{_where(node)} needs {F} numbers of each statistic, one per map of the conv before")
    s = gamma / np.sqrt(var + a.get("epsilon", 1e-5))  # (F,)
    b = last.params.get("bias", np.zeros(F))
    last.params = {"weight": (w * s[:, None, None, None]).astype(np.float32),
                   "bias": ((b - mean) * s + beta).astype(np.float32)}
    chain.folded += 1


def _bias(c: np.ndarray | None, out: int, node) -> np.ndarray:
    """A bias given as (), (1,), (out,) or (1, out) -> (out,)."""
    if c is None or c.dtype.kind != "f" or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1) or c.size not in (1, out):
        raise ModelError(f"{_where(node)} needs a bias of {out} numbers (or one for all)")
    return np.broadcast_to(c.reshape(-1).astype(np.float32), (out,)).copy()


def _gemm(chain: _Chain, node, args: list) -> None:
    """Gemm: y = x @ B (or x @ B.T with transB=1) + C, with alpha = beta = 1."""
    _need_list(chain, node)
    a = _attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise ModelError(f"{_where(node)} uses transA, alpha or beta; cnnviz reads Gemm as x @ weight + bias")
    B = _floats(_const(chain, args, 1), node, "weights", 2)
    w = B if a.get("transB", 0) else B.T  # (out, in)
    c = _const(chain, args, 2)
    params = {"weight": w} | ({} if c is None else {"bias": _bias(c, w.shape[0], node)})
    _append(chain, node, "dense", params)


def _matmul(chain: _Chain, node, args: list) -> None:
    _need_list(chain, node)
    B = _floats(_const(chain, args, 1), node, "weights", 2)  # (in, out)
    _append(chain, node, "dense", {"weight": B.T})


def _add(chain: _Chain, node, args: list) -> None:
    """The bias of the fully connected layer right before (a MatMul, or a Gemm without C)."""
    last = chain.layers[-1] if chain.layers else None
    if last is None or last.kind != "dense" or len(node.input) != 2:
        raise ModelError(f"{_where(node)} does not follow a MatMul; cnnviz reads Add only as the bias of "
                         "a fully connected layer")
    w = last.params["weight"]
    b = _bias(_const(chain, args, 1), w.shape[0], node)
    last.params = {"weight": w, "bias": last.params.get("bias", 0) + b}


def _flatten(chain: _Chain, node, args: list) -> None:
    axis = _attrs(node).get("axis", 1)
    if axis != 1 and not (len(chain.shape) == 1 and axis == -1):
        raise ModelError(f"{_where(node)} flattens from axis {axis}; cnnviz flattens each picture (axis 1)")
    if len(chain.shape) == 3:
        _append(chain, node, "flatten")


def _reshape(chain: _Chain, node, args: list) -> None:
    """Only the reshape to one list per picture: (N, -1), (N, C*H*W), (0, -1) or (-1, C*H*W)."""
    target = _const(chain, args, 1)
    n = math.prod(chain.shape)
    ok = target is not None and target.dtype.kind == "i" and target.shape == (2,)
    if ok:
        first, second = (int(v) for v in target)
        batch = {_BATCH, 0, chain.N} - {None} - ({0} if _attrs(node).get("allowzero", 0) else set())
        ok = (first in batch and second in (-1, n)) or (first == -1 and second == n)
    if not ok:
        shown = "computed" if target is None else list(np.asarray(target).ravel()[:8])
        raise ModelError(f"{_where(node)} reshapes to {shown}; cnnviz reads Reshape only as flattening each "
                         f"picture to one list, (N, -1) or (N, {n})")
    if len(chain.shape) == 3:
        _append(chain, node, "flatten")


def _softmax(chain: _Chain, node, args: list) -> None:
    _need_list(chain, node)
    axis = _attrs(node).get("axis", -1 if chain.opset >= 13 else 1)
    if axis not in (1, -1):
        raise ModelError(f"{_where(node)} works along axis {axis}; cnnviz takes softmax over the classes")
    _append(chain, node, "softmax")


def _dropout(chain: _Chain, node, args: list) -> None:
    """Dropout does nothing at inference, unless a file asks for training mode."""
    mode = _const(chain, args, 2)
    if mode is not None and np.any(mode):
        raise ModelError(f"{_where(node)} is in training mode; cnnviz needs an inference (eval mode) export")


def _identity(chain: _Chain, node, args: list) -> None:
    pass


_OPS = {
    "Conv": _conv, "Relu": _activation("relu"), "Tanh": _activation("tanh"), "Sigmoid": _activation("sigmoid"),
    "MaxPool": _pool("maxpool"), "AveragePool": _pool("avgpool"), "BatchNormalization": _batchnorm,
    "Flatten": _flatten, "Reshape": _reshape, "Gemm": _gemm, "MatMul": _matmul, "Add": _add,
    "Softmax": _softmax, "Dropout": _dropout, "Identity": _identity,
}


# ------------------------------- fixed computations: the shape chain exporters write before a Reshape


def _constant(chain: _Chain, node) -> np.ndarray:
    a = {x.name: x for x in node.attribute}
    if "value" in a:
        return _array(a["value"].t, f"the value of {_where(node)}")
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return np.array(helper.get_attribute_value(a[key]), dtype)
    raise ModelError(f"{_where(node)} holds a kind of value cnnviz does not read (only numbers)")


def _shape(chain: _Chain, node) -> np.ndarray:
    """Shape of the picture tensor: N (a stand-in, since it is open) then the shape of one picture."""
    x = node.input[0]
    s = np.array([_BATCH, *chain.shape] if x == chain.current else chain.consts[x].shape, np.int64)
    a = _attrs(node)
    return s[a.get("start", 0):a.get("end", len(s))]


def _small_ints(chain: _Chain, node) -> list[np.ndarray]:
    """The inputs of a shape computation, which must be a few integers each."""
    arrays = [chain.consts[x] for x in node.input if x]
    if any(v.dtype.kind not in "iu" or v.size > MAX_SHAPE_VALUES for v in arrays):
        raise ModelError(f"{_where(node)} computes with fixed numbers other than a shape; cnnviz follows only "
                         "the shape computations exporters write before a Reshape")
    return arrays


def _gather(chain: _Chain, node) -> np.ndarray:
    data, idx = _small_ints(chain, node)
    return np.take(data, idx, axis=_attrs(node).get("axis", 0))


def _unsqueeze(chain: _Chain, node) -> np.ndarray:
    arrays = _small_ints(chain, node)
    axes = arrays[1] if len(arrays) > 1 else _attrs(node).get("axes", [])
    return np.expand_dims(arrays[0], tuple(int(v) for v in np.ravel(axes)))


def _concat(chain: _Chain, node) -> np.ndarray:
    return np.concatenate(_small_ints(chain, node), axis=_attrs(node)["axis"])


def _same(chain: _Chain, node) -> np.ndarray:
    return chain.consts[node.input[0]]


_CONST_OPS = {"Constant": _constant, "Shape": _shape, "Gather": _gather, "Unsqueeze": _unsqueeze,
              "Concat": _concat, "Identity": _same}


# ---------------------------------------------------------------- import: names, labels, final checks


_PREFIX = {"maxpool": "pool", "avgpool": "pool"}


def _layer_names(specs: list, from_cnnviz: bool) -> list[str]:
    """conv1, relu1, pool1, ..., flatten, dense1, softmax; a file cnnviz wrote keeps its own names."""
    if from_cnnviz:
        names = [s.node for s in specs[:-1]] + [specs[-1].node or "softmax"]
        if all(MF.LAYER_NAME.fullmatch(n) for n in names) and len(set(names)) == len(names):
            return names
    prefixes = [_PREFIX.get(s.kind, s.kind) for s in specs]
    counts, seen, names = Counter(prefixes), Counter(), []
    for p in prefixes:
        seen[p] += 1
        names.append(p if p in ("flatten", "softmax") and counts[p] == 1 else f"{p}{seen[p]}")
    return names


def _labels(proto: onnx.ModelProto, K: int, classes, mean, std, folded: int) -> tuple:
    """-> (classes, preprocessing, meta): given values first, then the file's metadata_props, then defaults."""
    props = {p.key: p.value for p in proto.metadata_props if p.key in METADATA}
    file_meta = _json(props, "cnnviz.meta", dict) or {}
    if MF.json_depth(file_meta) > MF.MAX_JSON_DEPTH:
        raise ModelError("the model's cnnviz.meta is nested too deeply")
    file_meta = MF.check_meta(file_meta)
    names, classes_from = _pick(classes, _json(props, "cnnviz.classes", list), [f"class {k}" for k in range(1, K + 1)])
    names = list(MF.check_classes(list(names)))
    if len(names) != K:
        source = {"given": "given", "metadata": "in the file's cnnviz.classes"}[classes_from]
        raise ModelError(f"the network gives {K} scores but there are {len(names)} class names ({source})")
    m, mean_from = _pick(mean, _json(props, "cnnviz.mean", list), [0.0] * 3)
    s, std_from = _pick(std, _json(props, "cnnviz.std", list), [1.0] * 3)
    pre = {"mean": m, "std": s}
    MF.check_preprocessing(pre)
    pre = {k: [float(v) for v in vs] for k, vs in pre.items()}
    pre_from = next(f for f in ("given", "metadata", "default") if f in (mean_from, std_from))
    ours = {"source": "onnx", "producer": f"{proto.producer_name} {proto.producer_version}".strip()[:80],
            "classes_from": classes_from, "preprocessing_from": pre_from}
    if folded:
        ours["batchnorm_folded"] = folded
    for key, came in (("classes_from", classes_from), ("preprocessing_from", pre_from)):
        if came == "metadata" and key in file_meta:  # a file cnnviz wrote remembers where they first came from
            ours.pop(key)
    return names, pre, file_meta | ours


def _pick(given, from_file, default) -> tuple:
    """(value, where it came from): "given", "metadata" or "default"."""
    if given is not None:
        return list(given), "given"
    if from_file is not None:
        return from_file, "metadata"
    return default, "default"


def _json(props: dict, key: str, kind: type):
    """One metadata_props entry parsed as JSON of the expected kind, None when absent."""
    text = props.get(key)
    if text is None:
        return None
    if len(text) > MF.LIMITS.max_text:
        raise ModelError(f"the model's {key} is longer than {MF.LIMITS.max_text:,} characters")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, kind):
        raise ModelError(f"the model's {key} is not a JSON {'object' if kind is dict else 'list'}")
    return value


def _check_weights(model: Model) -> None:
    """The checks modelfile makes on a file's arrays: finite, and no bigger than a trained network's."""
    for la in model.layers:
        for key, w in la.params.items():
            if not np.all(np.isfinite(w)):
                raise ModelError(f"layer {la.name} ({key}) holds NaN or infinite numbers")
            if w.size and np.abs(w).max() > MF.MAX_ABS_WEIGHT:
                raise ModelError(f"layer {la.name} ({key}) holds numbers up to {np.abs(w).max():.3g}; a trained "
                                 f"network's weights stay below {MF.MAX_ABS_WEIGHT:g}")


# ---------------------------------------------------------------- export


def export_onnx(model: Model) -> bytes:
    """Any cnnviz Model -> an ONNX file (opset 17) that gives the same probabilities as `model.forward`.

    Input "input" (N, 3, H, W) float32 with N open, output "probabilities" (N, K); the class names,
    preprocessing and meta ride along in metadata_props. A model that does not end with softmax
    gets a Softmax node, since `model.forward` adds one.
    """
    H, W = model.input_size
    nodes, weights, x = [], [], "input"
    steps = [(la.name, la.kind, la) for la in model.layers]
    if model.layers[-1].kind != "softmax":
        names = {la.name for la in model.layers}
        steps.append((next(n for n in ("softmax", "probabilities", "softmax_end") if n not in names), "softmax", None))
    for i, (name, kind, la) in enumerate(steps):
        y = "probabilities" if i == len(steps) - 1 else name
        nodes.append(_EXPORT[kind](name, la, x, y, weights))
        x = y
    graph = helper.make_graph(
        nodes, "cnnviz", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, H, W])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(model.classes)])], weights)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
                              ir_version=IR_VERSION)
    helper.set_model_props(proto, {
        "cnnviz.classes": json.dumps(list(model.classes)),
        "cnnviz.mean": json.dumps([float(v) for v in model.preprocessing["mean"]]),
        "cnnviz.std": json.dumps([float(v) for v in model.preprocessing["std"]]),
        "cnnviz.meta": json.dumps(thaw(model.meta)),
    })
    return proto.SerializeToString()


def _weights(name: str, la: Layer, weights: list) -> list[str]:
    """Add the layer's parameters as initializers -> their names, weight then bias (if any)."""
    out = []
    for key in ("weight", "bias"):
        if key in la.params:
            weights.append(numpy_helper.from_array(np.asarray(la.params[key], np.float32), f"{name}.{key}"))
            out.append(f"{name}.{key}")
    return out


def _export_conv(name, la, x, y, weights):
    _, _, kh, kw = la.params["weight"].shape
    s, p = la.options.get("stride", 1), la.options.get("padding", 0)
    return helper.make_node("Conv", [x, *_weights(name, la, weights)], [y], name, kernel_shape=[kh, kw],
                            strides=[s, s], pads=[p] * 4, dilations=[1, 1], group=1)


def _export_pool(op):
    def export(name, la, x, y, weights):
        k = la.options.get("size", 2)
        s = la.options.get("stride") or k
        return helper.make_node(op, [x], [y], name, kernel_shape=[k, k], strides=[s, s])
    return export


def _export_plain(op, **attrs):
    def export(name, la, x, y, weights):
        return helper.make_node(op, [x], [y], name, **attrs)
    return export


def _export_dense(name, la, x, y, weights):
    return helper.make_node("Gemm", [x, *_weights(name, la, weights)], [y], name, transB=1)  # weight is (out, in)


_EXPORT = {
    "conv": _export_conv, "relu": _export_plain("Relu"), "tanh": _export_plain("Tanh"),
    "sigmoid": _export_plain("Sigmoid"), "maxpool": _export_pool("MaxPool"), "avgpool": _export_pool("AveragePool"),
    "flatten": _export_plain("Flatten", axis=1), "dense": _export_dense, "softmax": _export_plain("Softmax", axis=-1),
}
