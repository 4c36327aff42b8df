"""`python -m cnnviz.convert`: ONNX -> .npz and .npz -> ONNX, run through main([...]); every failure is
exit status 1 with one plain line on stderr and no file written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from cnnviz import model as M
from cnnviz.convert import main
from cnnviz.onnx import export_onnx
from tests.test_onnx import FRUIT, Net, every_kind_model, pictures, tour, with_external_tensor

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_onnx_to_npz_with_classes_txt_gives_onnxruntimes_probabilities(tmp_path, capsys):
    (tmp_path / "tour.onnx").write_bytes(tour().bytes())
    (tmp_path / "classes.txt").write_text("\ufeffapple\n\nbanana\r\ncherry\n", encoding="utf-8")
    code, out, err = run(capsys, tmp_path / "tour.onnx", "--out", tmp_path / "tour.npz",
                         "--classes", tmp_path / "classes.txt", "--mean", 0.5, 0.5, 0.5, "--std", 0.25, 0.25, 0.25)
    assert (code, err) == (0, "")
    assert "wrote" in out and "12 layers" in out and "3 classes" in out and "11x13 input" in out
    model = M.load_model(tmp_path / "tour.npz")
    assert model.classes == tuple(FRUIT) and list(model.preprocessing["std"]) == [0.25] * 3
    assert model.meta["classes_from"] == "given"
    x = pictures(model)
    ref = ort.InferenceSession(tour().bytes(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(M.forward(model, x), ref, rtol=0, atol=1e-5)


def test_without_class_names_the_summary_says_so(tmp_path, capsys):
    (tmp_path / "tour.onnx").write_bytes(tour().bytes())
    code, out, _ = run(capsys, tmp_path / "tour.onnx", "--out", tmp_path / "tour.npz")
    assert code == 0 and "class 1..K (use --classes)" in out
    assert M.load_model(tmp_path / "tour.npz").classes == ("class 1", "class 2", "class 3")


def test_npz_to_onnx_gives_the_same_probabilities(tmp_path, capsys):
    model = every_kind_model()
    M.save_model(model, tmp_path / "m.npz")
    code, out, err = run(capsys, tmp_path / "m.npz", "--out", tmp_path / "m.onnx")
    assert (code, err) == (0, "") and "ONNX opset 17" in out
    data = (tmp_path / "m.onnx").read_bytes()
    assert data == export_onnx(M.load_model(tmp_path / "m.npz"))
    x = pictures(model)
    ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(M.forward(model, x), ref, rtol=0, atol=1e-5)


def test_a_picture_size_left_open_is_given_on_the_command_line(tmp_path, capsys):
    net = Net(shape=(3, "H", "W"))
    net.op("Conv", net.weight(2, 3, 3, 3)).op("Flatten").op("Gemm", net.weight(2 * 14 * 14, 3))
    (tmp_path / "open.onnx").write_bytes(net.bytes())
    code, _, err = run(capsys, tmp_path / "open.onnx", "--out", tmp_path / "a.npz")
    assert code == 1 and "--input-size H W" in err
    code, out, _ = run(capsys, tmp_path / "open.onnx", "--out", tmp_path / "a.npz", "--input-size", 16, 16)
    assert code == 0 and "16x16 input" in out


def test_failures_are_one_plain_line_and_write_nothing(tmp_path, capsys):
    (tmp_path / "ext.onnx").write_bytes(with_external_tensor("/etc/passwd"))
    (tmp_path / "tour.onnx").write_bytes(tour().bytes())
    (tmp_path / "two.txt").write_text("a\nb\n")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00a")
    cases = [
        ([tmp_path / "ext.onnx", "--out", tmp_path / "x.npz"], "external data"),
        ([tmp_path / "tour.onnx", "--out", tmp_path / "x.npz", "--classes", tmp_path / "two.txt"], "2 class names"),
        ([tmp_path / "tour.onnx", "--out", tmp_path / "x.npz", "--classes", tmp_path / "bad.txt"], "not UTF-8"),
        ([tmp_path / "tour.onnx", "--out", tmp_path / "x.npz", "--classes", tmp_path / "none.txt"], "cannot read"),
        ([tmp_path / "tour.onnx", "--out", tmp_path / "x.onnx"], "MODEL.onnx --out MODEL.npz"),
        ([tmp_path / "none.onnx", "--out", tmp_path / "x.npz"], "cannot read"),
        ([tmp_path / "tour.onnx", "--out", tmp_path / "no" / "such" / "x.npz"], "cannot write"),
    ]
    for argv, words in cases:
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "", argv
        assert err.startswith("cnnviz.convert: ") and words in err and err.count("\n") == 1, err
    M.save_model(every_kind_model(), tmp_path / "m.npz")
    code, _, err = run(capsys, tmp_path / "m.npz", "--out", tmp_path / "x.onnx", "--classes", tmp_path / "two.txt")
    assert code == 1 and "apply to importing" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "ext.onnx", "m.npz", "tour.onnx", "two.txt"]


def test_python_dash_m_runs_the_converter(tmp_path):
    (tmp_path / "m.onnx").write_bytes(export_onnx(every_kind_model()))
    done = subprocess.run([sys.executable, "-m", "cnnviz.convert", str(tmp_path / "m.onnx"), "--out",
                           str(tmp_path / "m.npz")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and "wrote" in done.stdout, done.stderr
    assert M.load_model(tmp_path / "m.npz").classes == tuple(FRUIT)
