"""Steps 5-7 (deeper layers, fully connected, softmax) through AppTest, checked against an independent trace."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import samples
from cnnviz.images import fit_to_input, load_image
from cnnviz.model import load_model, trace
from cnnviz.ui import overview
from cnnviz.ui.state import DEFAULT_SAMPLE

APP = str(Path(__file__).resolve().parents[1] / "app.py")
BOLD_NUMBER = r"\*\*(-?\d+\.\d+)\*\*"


@pytest.fixture(scope="module")
def expected():
    """The default model's trace of the default picture, computed without the app."""
    model = load_model()
    picture = load_image(samples.sample_path(DEFAULT_SAMPLE))
    return model, picture, {s.name: s for s in trace(model, picture)}


def run_step(step: int, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["step"] = step
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def check_line(at: AppTest, phrase: str) -> str:
    lines = [m.value for m in at.markdown if phrase in m.value]
    assert len(lines) == 1, [m.value for m in at.markdown]
    return lines[0]


# ---------------------------------------------------------------- step 5


def test_overview_conv_arithmetic_matches_trace(expected):
    _, _, stages = expected
    at = run_step(5)
    assert len(at.image) >= 3
    assert at.selectbox(key="ov_stage").value == "conv2_1"  # a deeper layer by default
    k, i, j = 5, 0, 7  # row 0: the window reaches into the padding
    at.slider(key="ov_map_conv2_1").set_value(k + 1)  # the slider counts maps from 1
    at.slider(key="ov_row_conv2_1").set_value(i + 1)  # rows and columns count from 1 too
    at.slider(key="ov_col_conv2_1").set_value(j + 1)
    at.run()
    assert not at.exception
    line = check_line(at, "conv2d on this window gives")
    assert line.startswith("✓")
    total, shown = (float(v) for v in re.findall(BOLD_NUMBER, line))
    want = float(stages["conv2_1"].output[k, i, j])
    assert total == pytest.approx(want, abs=1e-4)
    assert shown == pytest.approx(want, abs=1e-4)
    # the table's partial sums, one per input map, plus the bias give the same number
    table = at.dataframe[0].value
    assert len(table) == stages["maxpool1"].output.shape[0]
    bias = float(stages["conv2_1"].layer.params["bias"][k])
    assert table["partial sum"].sum() + bias == pytest.approx(want, abs=1e-4)
    assert "Grey cells lie outside the map" in " ".join(c.value for c in at.caption)


def test_overview_survives_swapping_the_activation():
    at = run_step(5)
    at.selectbox(key="ov_stage").set_value("relu2_1")
    at.run()
    assert not at.exception
    at.session_state["activation"] = "sigmoid"  # relu2_1 is now called sigmoid2_1
    at.run()
    assert not at.exception
    assert at.selectbox(key="ov_stage").value == "conv2_1"


def test_overview_pool_and_other_activation():
    at = run_step(5, activation="tanh")
    names = at.selectbox(key="ov_stage").options
    assert not any(n.startswith("relu") for n in names) and "tanh2_1" in names
    at.selectbox(key="ov_stage").set_value("maxpool2")
    at.run()
    assert not at.exception
    assert check_line(at, "The map holds").count("✓") == 1
    at.selectbox(key="ov_stage").set_value("tanh2_1")
    at.run()
    assert not at.exception
    assert "✓" in check_line(at, "The map holds")


def test_overview_picture_and_receptive_field(expected):
    model, picture, stages = expected
    small = fit_to_input(picture, model.input_size)
    img, boxes = overview.overview_image(list(stages.values()), model.classes, small)
    maps = [s for s in stages.values() if s.kind != "input" and s.output.ndim == 3]
    assert len(boxes) == sum(s.output.shape[0] for s in maps)  # every map can be clicked
    assert all(0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height for _, _, (x0, y0, x1, y1) in boxes)
    upto = [s.name for s in stages.values()].index("conv2_1")  # the layers up to conv2_1: model.layers[:upto]
    assert overview.receptive_box(model.layers[:upto], 5, 5, (32, 32)) == (6, 6, 16, 16)  # 10x10 pixels
    assert overview.receptive_box(model.layers[:1], 0, 0, (32, 32)) == (0, 0, 2, 2)  # conv1_1 corner: padding


# ---------------------------------------------------------------- step 6


def test_dense_score_matches_trace(expected):
    model, _, stages = expected
    z = stages["dense"].output
    top = int(np.argmax(z))
    at = run_step(6)
    assert len(at.image) >= 4
    assert at.selectbox[0].value == top  # the top class is shown first
    line = check_line(at, "The dense layer's output for")
    assert line.startswith("✓") and model.classes[top] in line
    assert float(re.findall(BOLD_NUMBER, line)[0]) == pytest.approx(float(z[top]), abs=1e-4)
    products, bias, total = (float(v) for v in re.findall(r"\*\*([-+]?\d+\.\d+)\*\*",
                                                          check_line(at, "products **")))
    assert products + bias == pytest.approx(total, abs=2e-4)
    assert total == pytest.approx(float(z[top]), abs=1e-4)
    assert any("✓ Same as the flatten layer's output" in (c or "") for im in at.image for c in im.captions)

    other = (top + 1) % len(model.classes)
    at.selectbox[0].set_value(other)
    at.run()
    line = check_line(at, "The dense layer's output for")
    assert model.classes[other] in line
    assert float(re.findall(BOLD_NUMBER, line)[0]) == pytest.approx(float(z[other]), abs=1e-4)


# ---------------------------------------------------------------- step 7


def test_softmax_table_matches_trace(expected):
    model, _, stages = expected
    p = stages["softmax"].output
    at = run_step(7)
    assert len(at.image) >= 1
    table = at.dataframe[0].value
    assert list(table["class"]) == list(model.classes)
    np.testing.assert_allclose(table["probability"].to_numpy(), p, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(table["score"].to_numpy(), stages["dense"].output, rtol=1e-6)
    assert table["probability"].sum() == pytest.approx(1.0)
    top = int(np.argmax(p))
    assert any(f"The network's answer: {model.classes[top]}," in s.value for s in at.success)
    checks = check_line(at, "network's own output")
    assert checks.count("✓") == 2 and "✗" not in checks
