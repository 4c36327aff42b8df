"""Step 2 (convolution) with networks other than the shipped one, and its position sliders.

Issue 10: a conv layer without a bias walks through step 2, the playground and the step 5 close-up
(defect 1); the input caption says the model's own input size; a click on the map moves the sliders
without Streamlit's "default value and Session State" warning (defect 6).
"""

from __future__ import annotations

import logging
import re

import pytest
from streamlit.elements.lib import policies

from cnnviz import samples
from cnnviz.images import load_image
from cnnviz.model import Layer, load_model, tiny_vgg, trace
from cnnviz.ui.state import DEFAULT_SAMPLE
from tests.apptest import APP, AppTest, banner

BOLD_NUMBER = r"\*\*(-?\d+\.\d+)\*\*"


def without_conv_bias(model):
    """The model with every conv layer's bias left out, as a model file may do."""
    for la in model.layers:
        if la.kind == "conv":
            model = model.with_layer(la.name, Layer(la.name, "conv", {"weight": la.params["weight"]}, la.options))
    return model


def walk(model, step: int, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["own_model"], at.session_state["own_model_label"] = model, "test network"
    at.session_state["step"] = step
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def one(at, phrase: str) -> str:
    found = [m.value for m in at.markdown if phrase in m.value]
    assert len(found) == 1, (phrase, [m.value for m in at.markdown])
    return found[0]


def test_conv_layers_without_bias_walk_through_step_2_its_playground_and_step_5():
    model = without_conv_bias(load_model())
    assert all("bias" not in la.params for la in model.layers if la.kind == "conv")
    stages = {s.name: s for s in trace(model, load_image(samples.sample_path(DEFAULT_SAMPLE)))}

    at = walk(model, 2)
    at.slider(key="conv_row").set_value(1)  # row 1, column 1: the window hangs over the corner
    at.slider(key="conv_col").set_value(1)
    at.selectbox(key="conv_filter").set_value(3)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    line = one(at, "the value in the feature map")
    assert "✓" in line and "no bias" in line
    assert float(re.findall(BOLD_NUMBER, line)[0]) == pytest.approx(float(stages["conv1_1"].output[3, 0, 0]),
                                                                   abs=1e-3)

    at.selectbox(key="pg_preset").set_value("The network's own filter").run()  # starts from its (absent) bias
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key=f"pg_bias_{at.session_state['pg_version']}").value == 0.0
    next(b for b in at.button if b.label.startswith("Put this filter into the network")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "with your edits" in banner(at)

    at = walk(model, 5)
    line = one(at, "conv2d on this window gives")
    assert line.startswith("✓")
    name = at.selectbox(key="ov_stage").value
    k, i, j = (at.slider(key=f"ov_{what}_{name}").value - 1 for what in ("map", "row", "col"))
    assert float(re.findall(BOLD_NUMBER, line)[1]) == pytest.approx(float(stages[name].output[k, i, j]), abs=1e-4)
    assert any("no bias" in m.value for m in at.markdown)


def test_the_input_caption_says_the_models_own_input_size():
    model = tiny_vgg(["a", "b", "c"], (4, 4, 8, 8), input_size=(40, 56), seed=1)  # 40 rows, 56 columns
    at = walk(model, 2)
    captions = [c for im in at.image for c in im.captions if c and c.startswith("Input (")]
    assert captions and all(c.startswith("Input (56x40)") for c in captions), captions


@pytest.fixture
def duplication_warnings(monkeypatch):
    """What Streamlit logs when a widget gets a value both from `value=` and from session state."""
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)  # it warns once per process
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger(policies.__name__)
    log.addHandler(handler)
    yield records
    log.removeHandler(handler)


def test_a_click_on_the_map_moves_the_sliders_without_a_streamlit_warning(duplication_warnings):
    model = load_model()
    at = walk(model, 2)
    H, W = trace(model, load_image(samples.sample_path(DEFAULT_SAMPLE)))[1].output.shape[1:]
    width = height = 9 * W  # the map as the browser drew it: 9 pixels a cell
    at.session_state["conv_click"] = {"x": 7.5 * 9, "y": 3.5 * 9, "width": width, "height": height, "unix_time": 1}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [r for r in duplication_warnings if "default value" in r.getMessage()]
    assert (at.slider(key="conv_row").value, at.slider(key="conv_col").value) == (4, 8)  # counted from 1
    assert "Value at row 4, column 8" in one(at, "Value at row")
    at.slider(key="conv_row").set_value(H).run()  # the slider still moves by itself afterwards
    assert at.slider(key="conv_row").value == H
    assert not [r for r in duplication_warnings if "default value" in r.getMessage()]
