"""ONNX import and export: networks built here with onnx.helper (and, where torch is installed, exported by
PyTorch) give the same probabilities in cnnviz as in onnxruntime; cnnviz models survive the trip out and
back; every hostile or unsupported file is one plain ModelError, and external data is never opened."""

from __future__ import annotations

import builtins
import io
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnnviz import layers as L
from cnnviz import model as M
from cnnviz import modelfile as MF
from cnnviz.onnx import MAX_FILE_BYTES, MAX_NODES, export_onnx, import_onnx
from tests.torchref import require_torch

ATOL = 1e-5  # float32 sums in a different order
FRUIT = ["apple", "banana", "cherry"]


# ---------------------------------------------------------------- building test networks


class Net:
    """An ONNX network built one node at a time: `op` adds a node that works on the picture so far."""

    def __init__(self, shape=(3, 11, 13), batch="N", opset=17, seed=0):
        self.shape, self.batch, self.opset = shape, batch, opset
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.x, self.count = [], [], "input", 0

    def const(self, a) -> str:
        """A fixed tensor (an initializer) -> its name."""
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def weight(self, *shape, scale=0.3, low=None) -> str:
        a = self.rng.standard_normal(shape) * scale if low is None else self.rng.uniform(low, 1.5, shape)
        return self.const(a.astype(np.float32))

    def op(self, op_type, *inputs, domain="", **attrs) -> Net:
        self.count += 1
        y = f"t{self.count}"
        self.nodes.append(helper.make_node(op_type, [self.x, *inputs], [y], f"{op_type.lower()}_{self.count}",
                                           domain=domain, **attrs))
        self.x = y
        return self

    def side(self, op_type, inputs, **attrs) -> str:
        """A node off the picture's path (a shape computation) -> its output's name."""
        self.count += 1
        y = f"s{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [y], f"{op_type.lower()}_{self.count}", **attrs))
        return y

    def proto(self, props=None, producer="tests") -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "test", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [self.batch, *self.shape])],
            [helper.make_tensor_value_info(self.x, TensorProto.FLOAT, None)], self.inits)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)], producer_name=producer,
                                  ir_version=8)
        if props:
            helper.set_model_props(proto, props)
        return proto

    def bytes(self, **kw) -> bytes:
        return self.proto(**kw).SerializeToString()


def reference(data: bytes, x: np.ndarray, logits=False) -> np.ndarray:
    """onnxruntime's probabilities for x (N, 3, H, W); `logits` when the graph ends before softmax."""
    y = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    return L.softmax(y) if logits else y


def pictures(model, n=4, seed=1) -> np.ndarray:
    """n random pictures at the model's input size, preprocessed: (n, 3, H, W) float32."""
    rng = np.random.default_rng(seed)
    return model.normalize(rng.integers(0, 256, (n, *model.input_size, 3), dtype=np.uint8))


def same_as_onnxruntime(data: bytes, logits=False, **kw) -> M.Model:
    """Import `data`, then check cnnviz's probabilities against onnxruntime's on random pictures."""
    model = import_onnx(data, **kw)
    x = pictures(model)
    ours = M.forward(model, x)
    assert ours.shape == (4, len(model.classes))
    np.testing.assert_allclose(ours, reference(data, x, logits), rtol=0, atol=ATOL)
    MF.check_model(model)
    return model


def flatten_chain(net: Net) -> Net:
    """The flatten PyTorch's x.view(x.size(0), -1) exports: Shape, Gather, Unsqueeze, Concat, Reshape."""
    shape = net.side("Shape", [net.x])
    zero = net.side("Constant", [], value=numpy_helper.from_array(np.array(0, np.int64)))
    n = net.side("Gather", [shape, zero], axis=0)
    if net.opset >= 13:
        n = net.side("Unsqueeze", [n, net.const(np.array([0], np.int64))])
    else:
        n = net.side("Unsqueeze", [n], axes=[0])
    minus_one = net.side("Constant", [], value_ints=[-1])
    return net.op("Reshape", net.side("Concat", [n, minus_one], axis=0))


def tour() -> Net:
    """Every supported picture step once at least, on an odd 11x13 picture, ending with two dense layers."""
    net = Net()
    net.op("Conv", net.weight(4, 3, 5, 5), net.weight(4), strides=[2, 2], pads=[2, 2, 2, 2])  # (4, 6, 7)
    net.op("BatchNormalization", net.weight(4, low=0.5), net.weight(4), net.weight(4), net.weight(4, low=0.5),
           epsilon=1e-3)
    net.op("Relu").op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])  # (4, 3, 3)
    net.op("Conv", net.weight(5, 4, 3, 3), auto_pad="SAME_UPPER").op("Sigmoid")  # no bias; (5, 3, 3)
    net.op("AveragePool", kernel_shape=[2, 2]).op("Tanh")  # ONNX's default stride is 1: (5, 2, 2)
    net.op("Flatten", axis=1).op("Dropout").op("Gemm", net.weight(7, 20), net.weight(7), transB=1)
    net.op("Relu").op("MatMul", net.weight(7, 3)).op("Add", net.weight(3)).op("Identity")
    return net.op("Softmax", axis=-1)


# ---------------------------------------------------------------- import: same numbers as onnxruntime


def test_every_supported_step_gives_onnxruntimes_probabilities():
    model = same_as_onnxruntime(tour().bytes())
    assert [(la.name, la.kind) for la in model.layers] == [
        ("conv1", "conv"), ("relu1", "relu"), ("pool1", "maxpool"), ("conv2", "conv"), ("sigmoid1", "sigmoid"),
        ("pool2", "avgpool"), ("tanh1", "tanh"), ("flatten", "flatten"), ("dense1", "dense"), ("relu2", "relu"),
        ("dense2", "dense"), ("softmax", "softmax")]
    assert model.input_size == (11, 13)
    assert dict(model.layer("conv1").options) == {"stride": 2, "padding": 2}
    assert dict(model.layer("conv2").options) == {"stride": 1, "padding": 1}
    assert set(model.layer("conv2").params) == {"weight"}
    assert dict(model.layer("pool1").options) == {"size": 2}
    assert dict(model.layer("pool2").options) == {"size": 2, "stride": 1}
    assert model.meta["batchnorm_folded"] == 1


def test_batchnorm_folds_into_the_conv_before_it_with_and_without_a_bias():
    for bias in (True, False):
        net = Net(shape=(3, 9, 9), seed=2)
        net.op("Conv", net.weight(2, 3, 3, 3), *([net.weight(2)] if bias else []), pads=[1, 1, 1, 1])
        net.op("BatchNormalization", net.weight(2, low=0.5), net.weight(2), net.weight(2), net.weight(2, low=0.5))
        model = same_as_onnxruntime(flatten_chain(net).op("Gemm", net.weight(81 * 2, 3)).bytes(), logits=True)
        conv = model.layer("conv1")
        assert set(conv.params) == {"weight", "bias"} and [la.kind for la in model.layers][:2] == ["conv", "flatten"]


def test_the_reshape_chain_of_older_opsets_and_a_graph_without_softmax():
    for opset in (11, 13, 17):
        net = Net(opset=opset, seed=opset)
        net.op("Conv", net.weight(3, 3, 3, 3), net.weight(3)).op("Relu")
        model = same_as_onnxruntime(flatten_chain(net).op("MatMul", net.weight(3 * 9 * 11, 4)).bytes(), logits=True)
        assert [la.kind for la in model.layers] == ["conv", "relu", "flatten", "dense", "softmax"]
        assert "bias" not in model.layer("dense1").params


@pytest.mark.parametrize("target", [[0, -1], [-1, 2 * 5 * 6], [1, -1]])
def test_fixed_reshape_targets_that_flatten(target):
    net = Net(batch=1 if target[0] == 1 else "N")
    net.op("Conv", net.weight(2, 3, 2, 2), strides=[2, 2])  # (2, 5, 6)
    net.op("Reshape", net.const(np.array(target, np.int64)))
    if target[0] == 1:  # a batch fixed at 1: onnxruntime takes one picture at a time
        model = import_onnx(net.op("Gemm", net.weight(3, 60), transB=1).bytes())
        x = pictures(model, n=1)
        np.testing.assert_allclose(M.forward(model, x), reference(net.bytes(), x, logits=True), atol=ATOL, rtol=0)
    else:
        same_as_onnxruntime(net.op("Gemm", net.weight(3, 60), transB=1).bytes(), logits=True)


@pytest.mark.parametrize("attrs, out", [
    ({"pads": [1, 1, 2, 2], "strides": [2, 2]}, (6, 7)),  # the extra row and column at the end are never read
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (6, 7)),
    ({"auto_pad": "SAME_LOWER"}, (11, 13)),
    ({"auto_pad": "VALID"}, (9, 11)),
    ({"pads": [0, 0, 0, 0], "kernel_shape": [3, 3], "dilations": [1, 1], "group": 1}, (9, 11)),
])
def test_paddings_that_are_the_same_on_every_side(attrs, out):
    net = Net(seed=3)
    net.op("Conv", net.weight(2, 3, 3, 3), net.weight(2), **attrs).op("Flatten")
    model = same_as_onnxruntime(net.op("Gemm", net.weight(2 * out[0] * out[1], 3), net.weight(1, 3)).bytes(),
                                logits=True)
    assert model.layers[0].options["padding"] == (0 if out == (9, 11) else 1)


def test_overlapping_and_ceil_mode_pools_where_they_equal_floor_mode():
    net = Net(shape=(3, 13, 13))
    net.op("MaxPool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)  # (13 - 3) / 2 is whole: no extra window
    net.op("AveragePool", kernel_shape=[3, 3], strides=[1, 1], auto_pad="VALID").op("Flatten")  # (3, 4, 4)
    model = same_as_onnxruntime(net.op("Gemm", net.weight(48, 2), net.weight(2)).bytes(), logits=True)
    assert [dict(la.options) for la in model.layers[:2]] == [{"size": 3, "stride": 2}, {"size": 3, "stride": 1}]


def test_a_symbolic_picture_size_needs_input_size():
    net = Net(shape=(3, "H", "W"))
    net.op("Conv", net.weight(2, 3, 3, 3), pads=[1, 1, 1, 1]).op("Flatten").op("Gemm", net.weight(2 * 16 * 20, 3))
    with pytest.raises(M.ModelError, match="size open"):
        import_onnx(net.bytes())
    assert same_as_onnxruntime(net.bytes(), logits=True, input_size=(16, 20)).input_size == (16, 20)
    with pytest.raises(M.ModelError, match="not 16x16"):
        import_onnx(tour().bytes(), input_size=(16, 16))


# ---------------------------------------------------------------- PyTorch's exporter


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter is on its way out
def test_a_pytorch_cnn_with_batchnorm_exported_by_torch_onnx():
    torch = require_torch()
    nn = torch.nn

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 4, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6)
            self.fc1, self.fc2 = nn.Linear(6 * 3 * 3, 8), nn.Linear(8, 3)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
            x = torch.tanh(self.bn2(self.conv2(x)))
            return self.fc2(torch.relu(self.fc1(x.view(x.size(0), -1))))

    torch.manual_seed(0)
    net = Small()
    for bn in (net.bn1, net.bn2):  # statistics a trained network would have, not the fresh 0 and 1
        for t, low in ((bn.running_mean, -1), (bn.running_var, 0.5), (bn.weight, 0.5), (bn.bias, -1)):
            t.data.uniform_(low, 1.5)
    net.eval()
    for folding in (True, False):  # folding keeps BatchNormalization out of the graph; without it, cnnviz folds
        buf = io.BytesIO()
        # The TorchScript exporter works offline; the default (dynamo) one needs onnxscript.
        torch.onnx.export(net, (torch.zeros(1, 3, 13, 11),), buf, dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "N"}}, do_constant_folding=folding)
        model = same_as_onnxruntime(buf.getvalue(), logits=True, classes=FRUIT)
        assert [la.kind for la in model.layers] == ["conv", "relu", "maxpool", "conv", "tanh", "flatten", "dense",
                                                    "relu", "dense", "softmax"]
        assert model.meta.get("batchnorm_folded", 0) == (0 if folding else 2)
        x = pictures(model)
        with torch.no_grad():
            expected = torch.softmax(net(torch.from_numpy(np.ascontiguousarray(x))), dim=1).numpy()
        np.testing.assert_allclose(M.forward(model, x), expected, rtol=0, atol=ATOL)


# ---------------------------------------------------------------- class names, preprocessing, meta


def test_defaults_say_where_they_came_from():
    model = import_onnx(tour().bytes())
    assert model.classes == ("class 1", "class 2", "class 3")
    assert {k: list(v) for k, v in model.preprocessing.items()} == {"mean": [0.0] * 3, "std": [1.0] * 3}
    assert model.meta["classes_from"] == model.meta["preprocessing_from"] == "default"
    assert model.meta["source"] == "onnx" and model.meta["producer"] == "tests"


def test_metadata_props_carry_classes_preprocessing_and_meta_and_given_values_win():
    props = {"cnnviz.classes": json.dumps(FRUIT), "cnnviz.mean": "[0.5, 0.4, 0.3]", "cnnviz.std": "[0.2, 0.25, 0.3]",
             "cnnviz.meta": json.dumps({"dataset": "fruit bowl", "test_accuracy": 0.9}), "other": "ignored"}
    data = tour().bytes(props=props)
    model = import_onnx(data)
    assert model.classes == tuple(FRUIT) and list(model.preprocessing["std"]) == [0.2, 0.25, 0.3]
    assert model.meta["dataset"] == "fruit bowl" and model.meta["classes_from"] == "metadata"
    assert model.meta["preprocessing_from"] == "metadata"
    given = import_onnx(data, classes=["a", "b", "c"], mean=[0.1, 0.1, 0.1])
    assert given.classes == ("a", "b", "c") and list(given.preprocessing["mean"]) == [0.1] * 3
    assert list(given.preprocessing["std"]) == [0.2, 0.25, 0.3]
    assert given.meta["classes_from"] == given.meta["preprocessing_from"] == "given"


@pytest.mark.parametrize("props, words", [
    ({"cnnviz.classes": "[\"a\", \"b\""}, "cnnviz.classes is not a JSON list"),
    ({"cnnviz.classes": json.dumps(["a", "b"])}, "3 scores but there are 2 class names"),
    ({"cnnviz.classes": json.dumps(["a", "[b](http://x)", "c"])}, "not a short plain name"),
    ({"cnnviz.mean": "[0.5, 0.5]"}, "three means"),
    ({"cnnviz.std": "[0, 1, 1]"}, "three spreads"),
    ({"cnnviz.meta": "[1]"}, "cnnviz.meta is not a JSON object"),
    ({"cnnviz.meta": "[" * 100_000 + "]" * 100_000}, "cnnviz.meta is not a JSON object"),
    ({"cnnviz.meta": json.dumps({"test_accuracy": 7})}, "test accuracy"),
    ({"cnnviz.meta": json.dumps({"a": [[[[[[[[[[[[[1]]]]]]]]]]]]]})}, "nested too deeply"),
])
def test_broken_metadata_is_refused(props, words):
    with pytest.raises(M.ModelError, match=words):
        import_onnx(tour().bytes(props=props))


def test_given_classes_must_match_the_outputs():
    with pytest.raises(M.ModelError, match="3 scores but there are 2"):
        import_onnx(tour().bytes(), classes=["a", "b"])


# ---------------------------------------------------------------- export and round trips


def test_the_shipped_model_exports_to_the_same_probabilities():
    model = M.load_model()
    data = export_onnx(model)
    proto = onnx.load_model_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17 and proto.graph.input[0].name == "input"
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, *model.input_size]
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["cnnviz.classes"]) == list(model.classes)
    assert json.loads(props["cnnviz.mean"]) == list(model.preprocessing["mean"])
    assert json.loads(props["cnnviz.meta"])["test_accuracy"] == model.meta["test_accuracy"]
    x = pictures(model, n=5)
    np.testing.assert_allclose(reference(data, x), M.forward(model, x), rtol=0, atol=ATOL)


def every_kind_model(softmax=True) -> M.Model:
    """Every layer kind, biases left out in places, 2x2 and 3x3 pools with strides."""
    rng = np.random.default_rng(4)
    w = lambda *s: rng.standard_normal(s) * 0.4  # noqa: E731
    layers = [M.Layer("conv_a", "conv", {"weight": w(4, 3, 3, 5), "bias": w(4)}, {"stride": 2, "padding": 2}),
              M.Layer("tanh_a", "tanh"), M.Layer("pool_a", "avgpool", options={"size": 2, "stride": 1}),
              M.Layer("conv_b", "conv", {"weight": w(5, 4, 3, 3)}, {"stride": 1, "padding": 0}),
              M.Layer("sig_b", "sigmoid"), M.Layer("pool_b", "maxpool", options={"size": 3}),
              M.Layer("flat", "flatten"), M.Layer("fc1", "dense", {"weight": w(6, 5)}), M.Layer("act", "relu"),
              M.Layer("fc2", "dense", {"weight": w(3, 6), "bias": w(3)})]
    layers += [M.Layer("probs", "softmax")] if softmax else []
    model = M.Model(layers, FRUIT, (11, 13), {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.3, 0.25]}, {"dataset": "x"})
    MF.check_model(model)
    return model


@pytest.mark.parametrize("softmax", [True, False])
def test_every_kind_exports_and_comes_back_unchanged(softmax):
    model = every_kind_model(softmax)
    data = export_onnx(model)
    onnx.checker.check_model(onnx.load_model_from_string(data), full_check=True)
    x = pictures(model)
    np.testing.assert_allclose(reference(data, x), M.forward(model, x), rtol=0, atol=ATOL)
    back = import_onnx(data)
    assert [(la.name, la.kind, dict(la.options)) for la in back.layers[:len(model.layers)]] == \
        [(la.name, la.kind, dict(la.options)) for la in model.layers]
    assert len(back.layers) == len(model.layers) + (not softmax)
    for a, b in zip(model.layers, back.layers):
        assert set(a.params) == set(b.params)
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
    assert back.classes == model.classes and back.preprocessing == model.preprocessing
    assert back.input_size == model.input_size and back.meta["dataset"] == "x"


def test_onnx_to_cnnviz_to_onnx_to_cnnviz_is_stable():
    first = import_onnx(tour().bytes())
    again = import_onnx(export_onnx(first))
    assert [(la.name, la.kind, dict(la.options)) for la in again.layers] == \
        [(la.name, la.kind, dict(la.options)) for la in first.layers]
    for a, b in zip(first.layers, again.layers):
        assert set(a.params) == set(b.params)
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
    assert again.classes == first.classes and again.preprocessing == first.preprocessing
    assert again.meta["classes_from"] == "default"  # still the made-up names, though now stored in the file
    graphs = [onnx.load_model_from_string(export_onnx(m)).graph for m in (first, again)]
    assert graphs[0] == graphs[1]  # the meta differs: the second producer is cnnviz


def test_a_file_object_and_a_path_read_like_bytes(tmp_path):
    data = tour().bytes()
    path = tmp_path / "tour.onnx"
    path.write_bytes(data)
    for source in (io.BytesIO(data), path, str(path), bytearray(data)):
        assert [la.name for la in import_onnx(source).layers] == [la.name for la in import_onnx(data).layers]


# ---------------------------------------------------------------- unsupported networks


def refused(net_or_bytes, *words, **kw) -> str:
    """Import must raise ModelError whose message has every one of `words` -> the message."""
    data = net_or_bytes if isinstance(net_or_bytes, bytes) else net_or_bytes.bytes()
    with pytest.raises(M.ModelError) as e:
        import_onnx(data, **kw)
    message = str(e.value)
    for w in words:
        assert w in message, message
    return message


def conv_net(**attrs) -> Net:
    net = Net()
    return net.op("Conv", net.weight(2, 3, 3, 3), **attrs)


def test_an_unsupported_operator_names_itself_its_node_and_what_works():
    net = Net()
    net.op("Conv", net.weight(2, 3, 3, 3)).op("LeakyRelu", alpha=0.1)
    refused(net, "'leakyrelu_2'", "does not support the LeakyRelu operator", "Conv", "Gemm", "Softmax")
    net = Net(shape=(3, 8, 8))
    net.op("Flatten").op("LSTM", net.weight(1, 8, 192), net.weight(1, 8, 2))
    refused(net, "the LSTM operator", "'lstm_2'", "Conv, Relu")


@pytest.mark.parametrize("attrs, words", [
    ({"group": 3}, "group"),
    ({"dilations": [2, 2]}, "dilat"),
    ({"pads": [1, 0, 1, 0]}, "same padding on every side"),
    ({"pads": [0, 0, 1, 1]}, "same padding on every side"),
    ({"kernel_shape": [5, 5]}, "kernel_shape [5, 5] but 3x3 filters"),
    ({"strides": [1, 2]}, "same stride"),
])
def test_conv_settings_cnnviz_cannot_show(attrs, words):
    net = Net()
    net.op("Conv", net.weight(3 if "group" in attrs else 2, 1 if "group" in attrs else 3, 3, 3), **attrs)
    refused(net, words)


def test_same_upper_with_an_even_kernel_is_asymmetric():
    net = Net()
    refused(net.op("Conv", net.weight(2, 3, 4, 4), auto_pad="SAME_UPPER"), "same padding on every side")


@pytest.mark.parametrize("op, attrs, words", [
    ("MaxPool", {"kernel_shape": [2, 3]}, "square windows"),
    ("MaxPool", {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]}, "without padding"),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [3, 3], "ceil_mode": 1}, "ceil mode"),
    ("AveragePool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}, "without padding"),
])
def test_pools_cnnviz_cannot_show(op, attrs, words):
    refused(Net().op(op, **attrs), words)


def test_batchnorm_that_follows_no_conv_is_refused():
    net = conv_net().op("Relu")
    net.op("BatchNormalization", *(net.weight(2, low=0.5) for _ in range(4)))
    refused(net, "does not follow a Conv", "BatchNormalization")


def test_branches_and_skip_connections_are_refused():
    net = conv_net(pads=[1, 1, 1, 1])
    before = net.x
    net.op("Relu").op("Add", before)
    refused(net, "straight chain")


@pytest.mark.parametrize("target", [[0, 2, -1], [-1, 11], [0, 7]])
def test_reshapes_other_than_flatten_are_refused(target):
    net = conv_net()  # (2, 9, 11)
    refused(net.op("Reshape", net.const(np.array(target, np.int64))), "Reshape only as flattening")


def test_other_refusals_say_why():
    refused(conv_net().op("Flatten").op("Softmax", axis=-1).op("Relu"), "after Softmax")
    refused(conv_net().op("Softmax", axis=1), "works on maps")
    refused(conv_net().op("Gemm", Net().weight(2, 2)), "needs a Flatten")
    net = conv_net().op("Flatten")
    refused(net.op("Gemm", net.weight(198, 2), alpha=2.0), "alpha")
    refused(conv_net().op("Add", Net().weight(1)), "Add only as the bias")
    refused(conv_net().op("Flatten", axis=2), "axis 2")
    refused(conv_net(), "ends with 2x9x11 maps")
    refused(Net(shape=(1, 11, 13)).op("Relu"), "N x 3 x H x W")
    refused(Net(shape=(3, 200, 200)).op("Relu"), "from 8x8 to 128x128")
    net = Net()
    net.op("Dropout", "", net.const(np.array(True))).op("Flatten").op("Gemm", net.weight(429, 2))
    refused(net, "training mode")


def test_two_inputs_and_a_second_output_are_refused():
    net = conv_net().op("Flatten")
    proto = net.op("Gemm", net.weight(198, 2)).proto()
    proto.graph.input.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, [1]))
    refused(proto.SerializeToString(), "2 inputs")
    proto = conv_net().proto()
    proto.graph.node[0].output.append("indices")
    proto.graph.output.append(helper.make_tensor_value_info("indices", TensorProto.FLOAT, None))
    refused(proto.SerializeToString(), "second output")


def test_weights_too_big_for_a_trained_network_are_refused():
    net = Net()
    net.op("Conv", net.const(np.full((2, 3, 3, 3), 5e3, np.float32))).op("Flatten").op("Gemm", net.weight(198, 2))
    refused(net, "conv1", "5e+03")
    net = Net()
    net.op("Conv", net.const(np.full((2, 3, 3, 3), np.nan, np.float32))).op("Flatten").op("Gemm", net.weight(198, 2))
    refused(net, "NaN")


# ---------------------------------------------------------------- hostile files


def tiny() -> bytes:
    net = conv_net().op("Flatten")
    return net.op("Gemm", net.weight(198, 2)).bytes()


def with_external_tensor(location: str, in_constant=False) -> bytes:
    """The tiny network with its conv filters kept "in another file" at `location`."""
    proto = onnx.load_model_from_string(tiny())
    t = proto.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    t.external_data.add(key="length", value=str(2 * 3 * 3 * 3 * 4))
    if in_constant:  # the same tensor as a Constant node's value instead of an initializer
        proto.graph.initializer.remove(t)
        proto.graph.node.insert(0, helper.make_node("Constant", [], [t.name], "weights", value=t))
    return proto.SerializeToString()


@pytest.mark.parametrize("in_constant", [False, True])
@pytest.mark.parametrize("location", ["/etc/passwd", "../x", "x"])
def test_external_data_is_refused_and_never_opened(tmp_path, monkeypatch, location, in_constant):
    # Real files where the pointer leads, with exactly the numbers the network needs: had cnnviz read
    # them, the import would succeed. Opening anything at all is also made to fail loudly.
    (tmp_path / "here").mkdir()
    (tmp_path / "x").write_bytes(np.ones(54, np.float32).tobytes())
    (tmp_path / "here" / "x").write_bytes(np.ones(54, np.float32).tobytes())
    monkeypatch.chdir(tmp_path / "here")
    opened = []

    def no_open(path, *args, **kw):
        opened.append(path)
        raise AssertionError(f"opened {path}")

    monkeypatch.setattr(builtins, "open", no_open)
    monkeypatch.setattr(io, "open", no_open)
    monkeypatch.setattr(os, "open", no_open)
    data = with_external_tensor(location, in_constant)
    with pytest.raises(M.ModelError, match="kept in another file .ONNX external data.*never opens other files"):
        import_onnx(data)
    monkeypatch.undo()
    assert opened == []


def test_a_2_gb_tensor_declared_in_a_tiny_file_is_refused_before_anything_is_made():
    proto = onnx.load_model_from_string(tiny())
    t = proto.graph.initializer[0]
    t.ClearField("raw_data")
    del t.dims[:]
    t.dims.extend([2**29])  # 2**29 float32 numbers: 2 GB
    data = proto.SerializeToString()
    assert len(data) < 5000
    refused(data, "declares 536,870,912 numbers", "limit")
    del t.dims[:]
    t.dims.extend([-1, 3])
    refused(proto.SerializeToString(), "impossible shape")


def test_many_tensors_adding_up_past_the_total_limit_are_refused():
    proto = onnx.load_model_from_string(tiny())
    for i in range(5):
        proto.graph.initializer.add(name=f"big{i}", data_type=TensorProto.FLOAT, dims=[MF.LIMITS.max_elements])
    refused(proto.SerializeToString(), "in all", "limit")


def test_graph_level_refusals():
    net = Net(shape=(3, 8, 8))
    for _ in range(MAX_NODES + 1):
        net.op("Identity")
    refused(net, f"{MAX_NODES + 1} nodes", f"up to {MAX_NODES}")
    refused(conv_net().op("Relu", domain="com.example"), "custom operator domain", "'com.example'")
    loop = conv_net()
    body = helper.make_graph([], "body", [], [])
    loop.op("Loop", "", "", body=body)
    refused(loop, "control flow (Loop)")
    refused(conv_net().op("If", then_branch=body, else_branch=body), "control flow (If)")
    proto = onnx.load_model_from_string(tiny())
    proto.functions.append(onnx.FunctionProto(name="f", domain="custom"))
    refused(proto.SerializeToString(), "functions")
    proto = onnx.load_model_from_string(tiny())
    proto.graph.sparse_initializer.append(onnx.SparseTensorProto())
    refused(proto.SerializeToString(), "sparse")
    proto = onnx.load_model_from_string(tiny())
    del proto.opset_import[:]
    refused(proto.SerializeToString(), "opset")
    proto.opset_import.append(helper.make_opsetid("", 99))
    refused(proto.SerializeToString(), "opset 99")
    proto = onnx.load_model_from_string(tiny())
    proto.graph.node[1].output[0] = proto.graph.node[0].output[0]
    refused(proto.SerializeToString(), "makes the tensor 't1' twice")
    proto = onnx.load_model_from_string(tiny())
    proto.graph.initializer[0].data_type = TensorProto.STRING
    refused(proto.SerializeToString(), "STRING")


def png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    return buf.getvalue()


def npz() -> bytes:
    buf = io.BytesIO()
    M.save_model(every_kind_model(), buf)
    return buf.getvalue()


NOT_ONNX = {
    "empty": (lambda: b"", "the file is empty"),
    "png": (png, "PNG picture, not an ONNX model"),
    "npz": (npz, "zip archive"),
    "random": (lambda: np.random.default_rng(0).bytes(3000), "not an ONNX model"),
    "text": (lambda: b"hello, I am a text file\n" * 20, "not an ONNX model"),
    "truncated": (lambda: tiny()[:len(tiny()) // 2], "cut short"),
    "huge": (lambda: bytes(MAX_FILE_BYTES + 1), "larger than 50 MB"),
}


@pytest.mark.parametrize("name", NOT_ONNX)
def test_files_that_are_not_onnx_say_so(name):
    make, words = NOT_ONNX[name]
    refused(make(), words)


def test_a_missing_path_and_an_odd_object_say_so(tmp_path):
    refused_path = pytest.raises(M.ModelError, match="cannot read")
    with refused_path:
        import_onnx(tmp_path / "nothing.onnx")
    with pytest.raises(M.ModelError, match="cannot read an ONNX model from a int"):
        import_onnx(42)


def test_every_cut_and_every_flipped_byte_gives_a_model_or_a_model_error():
    """Only ModelError ever escapes, wherever a file is damaged."""
    data = tiny()
    rng = np.random.default_rng(5)
    damaged = [data[:n] for n in range(0, len(data), 7)]
    for _ in range(300):
        b = bytearray(data)
        b[rng.integers(len(b))] = int(rng.integers(256))
        damaged.append(bytes(b))
    for d in damaged:
        try:
            import_onnx(d)
        except M.ModelError as e:
            assert str(e)
