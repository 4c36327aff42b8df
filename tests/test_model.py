"""cnnviz.model: files, trace, forward, value semantics, and the shipped default against PyTorch."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnviz import layers as L
from cnnviz import model as M
from cnnviz.ui.walkable import check_walkable
from tests.torchref import require_torch, torch_layers

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


def assert_matches_torch(model, images, atol=1e-4):
    torch = require_torch()
    mods = torch_layers(model, torch)  # the same network as torch.nn modules with the same weights
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


# ---------------------------------------------------------------- hostile files (the "Your own model file" page)


def npz_bytes(arrays: dict, compressed=False) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def header_only_npz(members: dict) -> bytes:
    """An .npz whose members are only .npy headers declaring {name: (shape, dtype)}, with no data at all."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, (shape, dtype) in members.items():
            h = io.BytesIO()
            np.lib.format.write_array_header_1_0(h, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                     "fortran_order": False, "shape": shape})
            z.writestr(f"{name}.npy", h.getvalue())
    return buf.getvalue()


def refused(data, match=None) -> str:
    """load_model(data) raises ModelError (matching `match`) with a short, one-line message; returns it."""
    with pytest.raises(M.ModelError, match=match) as info:
        M.load_model(data)
    msg = str(info.value)
    assert msg and "\n" not in msg and len(msg) < 400, msg
    return msg


@pytest.mark.parametrize("shape, dtype", [
    ((10**12,), np.float64),  # 8 TB: NumPy would try to allocate it up front
    ((400_000_000,), np.float32),  # 1.6 GB
    ((3000, 3000), np.float32),  # 9 million: over the per-array limit
    ((), "V100000000"),  # one 100 MB raw "number"
    ((2, 3), np.complex128),
    ((2, 3), [("a", np.float32), ("b", np.float32)]),
    ((-5, 3), np.float32),
])
def test_declared_shapes_and_dtypes_are_checked_before_any_array_is_read(shape, dtype):
    tracemalloc.start()
    try:
        refused(header_only_npz({"conv1_1.weight": (shape, dtype)}))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"{peak:,} bytes allocated while refusing"


def test_total_numbers_limit_and_a_real_compressed_bomb():
    # Five arrays of 4.5 million each: each under the per-array limit, 22.5 million together.
    msg = refused(header_only_npz({f"a{k}": ((4_500_000,), np.float32) for k in range(5)}), "in all")
    assert "20,000,000" in msg
    # A real array of 6 million zeros compresses to a few kB.
    bomb = npz_bytes({"architecture": np.array("{}"), "x": np.zeros(6_000_000, np.float32)}, compressed=True)
    assert len(bomb) < 100_000
    refused(bomb, "6,000,000 numbers")


def test_too_many_members_and_members_that_are_not_arrays():
    refused(header_only_npz({f"a{k}": ((1,), np.float32) for k in range(300)}), "entries")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("architecture.npy", b"\x93NUMPY")
        z.writestr("evil.sh", b"rm -rf /")
    refused(buf.getvalue(), "not a NumPy array")


def test_pickle_in_bytes_and_file_objects_is_never_unpickled(tmp_path):
    marker = tmp_path / "fired"
    arrays = saved_arrays(tmp_path)
    arrays["dense.weight"] = np.array([_Trap(marker)], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays, allow_pickle=True)
    for source in (buf.getvalue(), io.BytesIO(buf.getvalue())):
        refused(source, "pickle")
    assert not marker.exists()


def test_file_object_already_read_to_its_end_is_read_from_the_start(tmp_path):
    buf = io.BytesIO(npz_bytes(saved_arrays(tmp_path)))
    buf.read()
    assert M.load_model(buf).classes == tuple(CLASSES)


def test_renamed_keys(tmp_path):
    arrays = saved_arrays(tmp_path)
    arrays["conv1_1.W"] = arrays.pop("conv1_1.weight")
    refused(npz_bytes(arrays), "conv1_1.weight")
    arch = arrays.pop("architecture")
    refused(npz_bytes({**arrays, "arch": arch}), "architecture")


@pytest.mark.parametrize("value", [1e300, -1e39, 2e3])
def test_weights_that_overflow_float32_or_are_huge(tmp_path, value):
    arrays = saved_arrays(tmp_path)
    w = arrays["conv1_2.weight"].astype(np.float64)
    w[1, 2, 0, 0] = value
    refused(npz_bytes({**arrays, "conv1_2.weight": w}), "infinite|up to")


def test_architecture_that_is_not_text(tmp_path):
    arrays = saved_arrays(tmp_path)
    for arch in (np.float32(3.0), np.array(["{}", "{}"]), np.zeros((2, 2))):
        refused(npz_bytes({**arrays, "architecture": arch}), "architecture")


def test_huge_architecture_text(tmp_path):
    arrays = saved_arrays(tmp_path)
    arch = with_arch(arrays, lambda a: a["meta"].update(notes="x" * 300_000))["architecture"]
    refused(npz_bytes({**arrays, "architecture": arch}), "characters")


@pytest.mark.parametrize("depth", [20, 5000, 90_000])
def test_deeply_nested_architecture(tmp_path, depth):
    arrays = saved_arrays(tmp_path)
    text = str(arrays["architecture"])[:-1] + ', "junk": ' + "[" * depth + "]" * depth + "}"
    refused(npz_bytes({**arrays, "architecture": np.array(text)}), "nested too deeply")


@pytest.mark.parametrize("change, match", [
    (lambda a: a["layers"][0]["options"].update(stride=-1), "stride"),
    (lambda a: a["layers"][0]["options"].update(padding=-1), "padding"),
    (lambda a: a["layers"][0]["options"].update(padding=65), "padding"),
    (lambda a: a["layers"][0]["options"].update(stride=10**30), "stride"),
    (lambda a: a["layers"][0]["options"].update(stride=1.5), "stride"),
    (lambda a: a["layers"][0]["options"].update(stride=True), "stride"),
    (lambda a: a["layers"][0]["options"].update(stride="x" * 5000), "stride"),
    (lambda a: a["layers"][4]["options"].update(size=-2), "size"),
    (lambda a: a["layers"][4]["options"].update(stride=99), "stride"),
    (lambda a: a["layers"][0]["options"].update(dilation=2), "dilation"),
    (lambda a: a["layers"][1].update(kind="Conv2d"), "unknown kind"),
    (lambda a: a["layers"][1].update(kind=["relu"]), "unknown kind"),
    (lambda a: a["layers"][1].update(name="relu 1<script>"), "plain name"),
    (lambda a: a["layers"][1].update(params={"weight": [1]}), "parameters"),
    (lambda a: a["layers"][0].update(params={}), "parameters"),
    (lambda a: a.update(layers=[]), "layers"),
    (lambda a: a.update(layers=[{"name": f"r{k}", "kind": "relu"} for k in range(100)]), "layers"),
    (lambda a: a.update(classes=["![x](http://example.com/a.png)"] + [f"c{k}" for k in range(9)]), "class name"),
    (lambda a: a.update(classes=[3] + [f"c{k}" for k in range(9)]), "class name"),
    (lambda a: a.update(classes="cat,dog"), "classes"),
    (lambda a: a.update(input_size=[32.5, 32]), "input size"),
    (lambda a: a.update(input_size=[1e400, 32]), "input size"),
    (lambda a: a.update(input_size=[2, 2]), "input size"),
    (lambda a: a.update(preprocessing={"mean": [0, 0, 0], "std": [1e-30, 1, 1]}), "spreads"),
    (lambda a: a.update(preprocessing={"mean": [float("nan"), 0, 0], "std": [1, 1, 1]}), "means"),
    (lambda a: a.update(meta={"test_accuracy": "99%"}), "test accuracy"),
    (lambda a: a.update(meta={"test_accuracy": float("nan")}), "test accuracy"),
    (lambda a: a.update(meta=[1, 2]), "meta"),
    (lambda a: a.update(format="cnnviz-model/99"), "cnnviz-model/99"),
], ids=lambda v: None if callable(v) else v)
def test_hostile_descriptions(tmp_path, change, match):
    refused(npz_bytes(with_arch(saved_arrays(tmp_path), change)), match)


def test_a_network_that_needs_gigabytes_for_one_picture_is_refused_before_it_runs():
    """Weights within every limit (64 filters of 3x3x3), but padding 64 on a 256x256 input makes
    64 maps of 382x382: 9.3 million numbers, from a file of a few kB. Refused before anything runs."""
    conv = M.Layer("conv1", "conv", {"weight": np.zeros((64, 3, 3, 3)), "bias": np.zeros(64)},
                   {"stride": 1, "padding": 64})
    dense = M.Layer("dense", "dense", {"weight": np.zeros((2, 10))})
    arch = {"layers": [conv.spec(), M.Layer("flatten", "flatten").spec(), dense.spec()], "classes": ["a", "b"],
            "input_size": [256, 256]}
    arrays = {"architecture": np.array(json.dumps(arch)), "conv1.weight": np.zeros((64, 3, 3, 3), np.float32),
              "conv1.bias": np.zeros(64, np.float32), "dense.weight": np.zeros((2, 10), np.float32)}
    refused(npz_bytes(arrays), "conv1.*would need 9,3.* numbers for one picture")


@pytest.mark.parametrize("change, match", [
    (lambda layers: layers[:5] + layers[10:], "Tiny-VGG layout"),
    (lambda layers: [replace(la, name="c1") if la.name == "conv1_1" else la for la in layers], "Tiny-VGG layout"),
    (lambda layers: [replace(la, kind="avgpool") if la.kind == "maxpool" else la for la in layers], "Tiny-VGG"),
    (lambda layers: [replace(la, options={"stride": 2, "padding": 1}) if la.name == "conv2_2" else la
                     for la in layers], "stride 1"),
    (lambda layers: [replace(la, options={"size": 2, "stride": 1}) if la.name == "maxpool1" else la
                     for la in layers], "2x2 max pooling"),
], ids=["missing-block", "renamed", "avgpool", "stride2", "overlapping-pool"])
def test_layouts_the_walkthrough_cannot_show_are_refused(change, match):
    m = small_model()
    m = M.Model(tuple(change(list(m.layers))), m.classes, m.input_size, m.preprocessing, m.meta)
    with pytest.raises(M.ModelError, match=match):
        check_walkable(m)


def test_walkthrough_limits_on_kernels_filters_input_and_classes():
    with pytest.raises(M.ModelError, match="filters"):
        check_walkable(M.tiny_vgg(CLASSES, (80, 8, 8, 8)))
    with pytest.raises(M.ModelError, match="input"):
        check_walkable(M.tiny_vgg(CLASSES, (4, 4, 8, 8), input_size=(8, 8)))
    with pytest.raises(M.ModelError, match="input"):
        check_walkable(M.tiny_vgg(CLASSES, (4, 4, 8, 8), input_size=(30, 30)))
    with pytest.raises(M.ModelError, match="classes"):
        check_walkable(M.tiny_vgg([f"c{k}" for k in range(101)], (4, 4, 8, 8)))
    m = small_model()
    w5 = M.Layer("conv1_1", "conv", {"weight": np.zeros((4, 3, 5, 5)), "bias": np.zeros(4)},
                 {"stride": 1, "padding": 2})
    with pytest.raises(M.ModelError, match="3x3"):
        check_walkable(m.with_layer("conv1_1", w5))


def test_what_the_walkthrough_can_show_passes():
    for m in (small_model(), small_model().with_activation("tanh"), M.tiny_vgg(["a", "b"], (64, 64, 64, 64)),
              M.tiny_vgg(CLASSES, (4, 4, 8, 8), input_size=(16, 128))):
        check_walkable(m)
    if M.DEFAULT_MODEL_PATH.exists():
        check_walkable(M.load_model())


def test_saved_by_the_trainer_loads_with_its_meta(tmp_path):
    m = small_model()
    meta = {"dataset": "fruit", "test_accuracy": 0.8125, "epochs": 3, "config": {"lr": 0.01, "seed": 0},
            "history": [{"epoch": e, "train_loss": 1.0 / e, "test_accuracy": 0.5} for e in range(1, 200)]}
    m = M.Model(m.layers, m.classes, m.input_size, m.preprocessing, meta)
    buf = io.BytesIO()
    M.save_model(m, buf)
    back = M.load_model(buf.getvalue())
    assert M.thaw(back.meta) == meta
    check_walkable(back)


@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.binary(min_size=1, max_size=16))
def test_corrupted_model_files_raise_only_model_error(at, junk):
    data = bytearray(_GOOD_NPZ)
    at %= len(data)
    data[at:at + len(junk)] = junk
    try:
        M.load_model(bytes(data))
    except M.ModelError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_model_error(data):
    with pytest.raises(M.ModelError):
        M.load_model(b"PK\x03\x04" + data)


def _good_npz() -> bytes:
    buf = io.BytesIO()
    M.save_model(M.tiny_vgg(["a", "b"], (2, 2, 2, 2), input_size=(16, 16)), buf)
    return buf.getvalue()


_GOOD_NPZ = _good_npz()
