"""cnnviz.model: files, trace, forward, value semantics, and the shipped default against PyTorch."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from cnnviz import layers as L
from cnnviz import model as M

CLASSES = [f"class{i}" for i in range(10)]
TRACE_NAMES = ["input", "conv1_1", "relu1_1", "conv1_2", "relu1_2", "maxpool1",
               "conv2_1", "relu2_1", "conv2_2", "relu2_2", "maxpool2", "flatten", "dense", "softmax"]
TRACE_KINDS = ["input", "conv", "relu", "conv", "relu", "maxpool",
               "conv", "relu", "conv", "relu", "maxpool", "flatten", "dense", "softmax"]


def small_model(channels=(4, 4, 8, 8), seed=0):
    m = M.tiny_vgg(CLASSES, channels, seed=seed)
    meta = {"dataset": "made up", "test_accuracy": 0.5, "epochs": 1}
    return M.Model(m.layers, m.classes, m.input_size, {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}, meta)


def picture(h=40, w=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def saved_arrays(tmp_path, model=None) -> dict:
    """The arrays of a freshly saved model, to be spoiled by a test."""
    path = tmp_path / "good.npz"
    M.save_model(model or small_model(), path)
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def write(tmp_path, arrays, name="bad.npz") -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def with_arch(arrays, change) -> dict:
    """A copy of arrays whose architecture JSON went through change(arch)."""
    arch = json.loads(str(arrays["architecture"]))
    change(arch)
    return {**arrays, "architecture": np.array(json.dumps(arch))}


# ---------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path):
    m = small_model()
    path = tmp_path / "m.npz"
    M.save_model(m, path)
    back = M.load_model(path)
    assert back.classes == m.classes
    assert back.input_size == m.input_size
    assert back.meta == m.meta
    assert back.preprocessing == m.preprocessing
    assert [(la.name, la.kind, la.options) for la in back.layers] == [(la.name, la.kind, la.options) for la in m.layers]
    for a, b in zip(m.layers, back.layers, strict=True):
        assert a.params.keys() == b.params.keys()
        for k in a.params:
            assert b.params[k].dtype == np.float32
            np.testing.assert_array_equal(a.params[k], b.params[k])
    img = picture()
    np.testing.assert_array_equal(back.preprocess(img), m.preprocess(img))


def test_load_from_bytes_and_file_object(tmp_path):
    m = small_model()
    buf = io.BytesIO()
    M.save_model(m, buf)
    raw = buf.getvalue()
    for source in (raw, io.BytesIO(raw)):
        back = M.load_model(source)
        np.testing.assert_array_equal(back.layer("dense").params["weight"], m.layer("dense").params["weight"])


def test_saved_file_has_no_pickles(tmp_path):
    path = tmp_path / "m.npz"
    M.save_model(small_model(), path)
    with np.load(path, allow_pickle=False) as z:  # would raise on any object array
        assert all(z[k].dtype != object for k in z.files)


class _Trap:
    """Unpickling this creates a marker file: proof that a loader executed code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_trap_really_fires_when_unpickled(tmp_path):
    """The trap used below works: unpickling it does create the marker."""
    marker = tmp_path / "fired"
    path = tmp_path / "trap.npy"
    np.save(path, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    np.load(path, allow_pickle=True)
    assert marker.exists()


def test_pickled_npy_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "fired"
    path = tmp_path / "trap.npy"
    np.save(path, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    assert not marker.exists()
    with pytest.raises(M.ModelError, match="pickle"):
        M.load_model(path)
    with pytest.raises(M.ModelError):
        M.load_model(path.read_bytes())
    assert not marker.exists()


def test_pickle_inside_npz_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "fired"
    arrays = saved_arrays(tmp_path)
    arrays["conv1_1.weight"] = np.array([_Trap(marker)], dtype=object)
    path = write(tmp_path, arrays)
    with pytest.raises(M.ModelError, match="pickle"):
        M.load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [
    np.random.default_rng(0).bytes(300),
    b"",
    b"PK\x03\x04 not really a zip file",
])
def test_garbage_files_raise_model_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(M.ModelError):
        M.load_model(path)
    with pytest.raises(M.ModelError):
        M.load_model(content)


def test_missing_file_and_plain_npy_raise_model_error(tmp_path):
    with pytest.raises(M.ModelError):
        M.load_model(tmp_path / "nothing-here.npz")
    np.save(tmp_path / "plain.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(M.ModelError, match=".npy"):
        M.load_model(tmp_path / "plain.npy")


def test_npz_without_architecture(tmp_path):
    arrays = saved_arrays(tmp_path)
    del arrays["architecture"]
    with pytest.raises(M.ModelError, match="architecture"):
        M.load_model(write(tmp_path, arrays))
    with pytest.raises(M.ModelError, match="architecture"):
        M.load_model(write(tmp_path, {"x": np.zeros(3)}, "other.npz"))


def test_broken_architecture_json(tmp_path):
    arrays = saved_arrays(tmp_path)
    for arch in ("{not json", "[1, 2]", json.dumps({"layers": "x"})):
        with pytest.raises(M.ModelError):
            M.load_model(write(tmp_path, {**arrays, "architecture": np.array(arch)}))


def test_mismatched_shapes(tmp_path):
    arrays = saved_arrays(tmp_path)
    wrong = {**arrays, "conv2_1.weight": np.zeros((8, 4, 5, 5), np.float32)}
    with pytest.raises(M.ModelError, match="conv2_1.weight"):
        M.load_model(write(tmp_path, wrong))


def test_shapes_that_do_not_chain(tmp_path):
    """Every array matches its own description, but conv1_2 expects 5 channels where conv1_1 makes 4."""
    arrays = saved_arrays(tmp_path)

    def change(arch):
        arch["layers"][2]["params"]["weight"] = [4, 5, 3, 3]

    spoiled = with_arch(arrays, change)
    spoiled["conv1_2.weight"] = np.zeros((4, 5, 3, 3), np.float32)
    with pytest.raises(M.ModelError, match="conv1_2"):
        M.load_model(write(tmp_path, spoiled))


def test_missing_and_extra_arrays(tmp_path):
    arrays = saved_arrays(tmp_path)
    missing = {k: v for k, v in arrays.items() if k != "dense.bias"}
    with pytest.raises(M.ModelError, match="dense.bias"):
        M.load_model(write(tmp_path, missing))
    extra = {**arrays, "conv9_9.weight": np.zeros(3, np.float32)}
    with pytest.raises(M.ModelError, match="conv9_9"):
        M.load_model(write(tmp_path, extra, "extra.npz"))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_path, bad):
    arrays = saved_arrays(tmp_path)
    w = arrays["conv1_1.weight"].copy()
    w[0, 0, 1, 1] = bad
    with pytest.raises(M.ModelError, match="NaN|infinite"):
        M.load_model(write(tmp_path, {**arrays, "conv1_1.weight": w}))


def test_wrong_class_count(tmp_path):
    arrays = saved_arrays(tmp_path)

    def change(arch):
        arch["classes"] = arch["classes"][:9]

    with pytest.raises(M.ModelError, match="9 classes"):
        M.load_model(write(tmp_path, with_arch(arrays, change)))


@pytest.mark.parametrize("change", [
    lambda a: a["layers"][0]["options"].update(stride=0),
    lambda a: a["layers"][0]["options"].update(stride="2"),
    lambda a: a["layers"][0]["options"].update(padding=10**6),
    lambda a: a["layers"][4]["options"].update(size=0),
    lambda a: a["layers"][1].update(kind="gelu"),
    lambda a: a.update(preprocessing={"mean": "abc", "std": "def"}),
    lambda a: a.update(preprocessing={"mean": [0, 0, 0], "std": [1, 0, 1]}),
    lambda a: a.update(input_size=[100000, 100000]),
    lambda a: a.update(classes=[]),
], ids=["stride0", "stride-text", "huge-padding", "pool0", "unknown-kind", "text-spread", "zero-spread",
        "huge-input", "no-classes"])
def test_bad_descriptions_raise_model_error(tmp_path, change):
    with pytest.raises(M.ModelError):
        M.load_model(write(tmp_path, with_arch(saved_arrays(tmp_path), change)))


# ---------------------------------------------------------------- trace and forward


def test_trace_stages():
    m = M.tiny_vgg(CLASSES, (16, 16, 32, 32))
    stages = M.trace(m, picture())
    assert [s.name for s in stages] == TRACE_NAMES
    assert [s.kind for s in stages] == TRACE_KINDS
    shapes = [s.output.shape for s in stages]
    assert shapes == [(3, 32, 32)] + [(16, 32, 32)] * 4 + [(16, 16, 16)] + [(32, 16, 16)] * 4 + [(32, 8, 8)] \
        + [(32 * 8 * 8,), (10,), (10,)]
    assert stages[0].layer is None
    assert all(s.layer is la for s, la in zip(stages[1:], m.layers, strict=True))
    p = stages[-1].output
    assert np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-6)


def test_trace_stages_follow_the_layer_functions():
    """Each stage is its layer's function applied to the stage before, and the input is preprocess()."""
    m = small_model()
    img = picture()
    stages = M.trace(m, img)
    np.testing.assert_array_equal(stages[0].output, m.preprocess(img))
    for prev, s in zip(stages, stages[1:], strict=False):
        np.testing.assert_allclose(s.output, s.layer(prev.output[None])[0], rtol=1e-6, atol=1e-7)
    conv = stages[1]
    w, b = conv.layer.params["weight"], conv.layer.params["bias"]
    np.testing.assert_allclose(conv.output, L.conv2d_loop(stages[0].output[None], w, b, 1, 1)[0], rtol=1e-5, atol=1e-5)


def test_forward_equals_last_trace_stage():
    m = small_model()
    imgs = [picture(seed=s) for s in range(3)]
    x = np.stack([m.preprocess(im) for im in imgs])  # (3, 3, 32, 32)
    p = M.forward(m, x)
    assert p.shape == (3, 10)
    for i, im in enumerate(imgs):
        np.testing.assert_allclose(p[i], M.trace(m, im)[-1].output, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_preprocess_shape_and_normalisation():
    m = small_model()
    img = picture(32, 32)
    x = m.preprocess(img)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    mean = np.array(m.preprocessing["mean"], np.float32)
    std = np.array(m.preprocessing["std"], np.float32)
    np.testing.assert_allclose(x, ((img / 255.0 - mean) / std).transpose(2, 0, 1), rtol=1e-5, atol=1e-6)
    assert m.preprocess(picture(200, 90)).shape == (3, 32, 32)


# ---------------------------------------------------------------- value semantics


def test_params_are_read_only():
    m = small_model()
    for la in m.layers:
        for a in la.params.values():
            with pytest.raises(ValueError):
                a[...] = 0
    with pytest.raises(ValueError):
        m.layer("conv1_1").params["weight"][0, 0, 0, 0] = 1.0


def test_layer_copies_the_arrays_it_is_given():
    w = np.ones((2, 3, 3, 3))
    la = M.Layer("c", "conv", {"weight": w, "bias": np.zeros(2)}, {"stride": 1, "padding": 1})
    w[...] = 5
    assert np.all(la.params["weight"] == 1)
    assert w.flags.writeable  # the caller's array is left alone


def test_with_filter_makes_a_new_model():
    m = small_model()
    before = {la.name: {k: v.copy() for k, v in la.params.items()} for la in m.layers}
    kernel = np.full((3, 3, 3), 0.25)
    edited = m.with_filter("conv1_1", 2, kernel, bias=1.5)
    assert edited is not m
    np.testing.assert_array_equal(edited.layer("conv1_1").params["weight"][2], kernel)
    assert edited.layer("conv1_1").params["bias"][2] == 1.5
    for la in m.layers:  # the original is untouched
        for k, v in la.params.items():
            np.testing.assert_array_equal(v, before[la.name][k])
    assert not edited.layer("conv1_1").params["weight"].flags.writeable
    for a, b in zip(m.layers, edited.layers, strict=True):
        assert (a is b) == (a.name != "conv1_1")  # untouched layers are shared, not copied
    p_old, p_new = M.trace(m, picture())[-1].output, M.trace(edited, picture())[-1].output
    assert not np.allclose(p_old, p_new)


def test_with_filter_checks_the_kernel_shape():
    with pytest.raises(M.ModelError):
        small_model().with_filter("conv1_1", 0, np.zeros((3, 5, 5)))


def test_with_activation_makes_a_new_model():
    m = small_model()
    t = m.with_activation("tanh")
    assert [la.kind for la in m.layers].count("relu") == 4
    assert [la.kind for la in t.layers].count("tanh") == 4
    assert "tanh1_1" in [la.name for la in t.layers] and "relu1_1" in [la.name for la in m.layers]
    for a, b in zip(m.layers, t.layers, strict=True):
        assert (a is b) == (a.kind not in M.ACTIVATIONS)
    stages = M.trace(t, picture())
    assert stages[2].kind == "tanh"
    assert np.all(np.abs(stages[2].output) < 1)
    with pytest.raises(M.ModelError):
        m.with_activation("gelu")


# ---------------------------------------------------------------- PyTorch rebuild


def torch_modules(model):
    """The same network as a list of torch.nn modules, with the same weights."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    out = []
    for la in model.layers:
        p, o = la.params, la.options
        if la.kind == "conv":
            F, C, KH, KW = p["weight"].shape
            mod = nn.Conv2d(C, F, (KH, KW), stride=o.get("stride", 1), padding=o.get("padding", 0))
        elif la.kind == "dense":
            mod = nn.Linear(p["weight"].shape[1], p["weight"].shape[0])
        elif la.kind in ("maxpool", "avgpool"):
            pool = nn.MaxPool2d if la.kind == "maxpool" else nn.AvgPool2d
            mod = pool(o.get("size", 2), o.get("stride"))
        else:
            mod = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "flatten": nn.Flatten,
                   "softmax": lambda: nn.Softmax(dim=1)}[la.kind]()
        with torch.no_grad():
            for k, v in p.items():
                getattr(mod, k).copy_(torch.from_numpy(np.array(v)))
        out.append(mod)
    return out


def assert_matches_torch(model, images, atol=1e-4):
    torch = pytest.importorskip("torch")
    mods = torch_modules(model)
    for img in images:
        stages = M.trace(model, img)
        x = torch.from_numpy(np.array(stages[0].output))[None]
        with torch.inference_mode():
            for s, mod in zip(stages[1:], mods, strict=True):
                x = mod(x)
                assert s.output.shape == tuple(x.shape[1:]), s.name
                np.testing.assert_allclose(s.output, x[0].numpy(), rtol=1e-4, atol=atol, err_msg=s.name)


def test_tiny_vgg_matches_torch_rebuild():
    assert_matches_torch(M.tiny_vgg(CLASSES, (16, 16, 32, 32), seed=3), [picture(seed=s) for s in range(2)])
    assert_matches_torch(small_model().with_activation("sigmoid"), [picture()])


@pytest.fixture(scope="module")
def default_model():
    if not M.DEFAULT_MODEL_PATH.exists():
        pytest.skip(f"no trained default model yet at {M.DEFAULT_MODEL_PATH}")
    return M.load_model()


def test_default_model_is_trained_well_enough(default_model):
    m = default_model
    assert len(m.classes) == 10 and "cat" in m.classes and "dog" in m.classes
    assert m.input_size == (32, 32)
    assert M.DEFAULT_MODEL_PATH.stat().st_size < 1_000_000
    acc = m.meta.get("test_accuracy")
    assert acc is not None, f"the shipped model records no test accuracy (meta: {sorted(m.meta)})"
    assert acc >= 0.72
    assert [s.name for s in M.trace(m, picture())] == TRACE_NAMES


def test_default_model_matches_torch_rebuild(default_model):
    rng = np.random.default_rng(7)
    images = [picture(seed=1), picture(32, 32, seed=2), np.full((32, 32, 3), 128, np.uint8),
              rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)]
    assert_matches_torch(default_model, images)
