"""Step 8, Why?, in AppTest: the three overlays for any class, and at any spot (slider or click) the maps lit
there and what they add to the class's score, checked against the trace."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz import explain as E
from cnnviz import samples
from cnnviz.images import fit_to_input, load_image
from cnnviz.model import load_model, tiny_vgg, trace
from cnnviz.ui import why
from cnnviz.ui.state import DEFAULT_SAMPLE, STEPS
from tests.apptest import APP, AppTest, header


@pytest.fixture(scope="module")
def expected():
    """The shipped model's trace of the default picture, computed without the app."""
    model = load_model()
    picture = load_image(samples.sample_path(DEFAULT_SAMPLE))
    return model, picture, {s.name: s for s in trace(model, picture)}


def step8(model=None, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if model is not None:
        at.session_state["own_model"], at.session_state["own_model_label"] = model, "test network"
    at.session_state["step"] = 8
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def line(at: AppTest, phrase: str) -> str:
    found = [m.value for m in at.markdown if phrase in m.value]
    assert len(found) == 1, [m.value for m in at.markdown]
    return found[0]


def by_hand(stages, k: int, i: int, j: int) -> tuple[np.ndarray, float]:
    """Spot (i, j)'s part of class k's score from the maps themselves: weights laid out like the maps."""
    maps, dense = stages["maxpool2"].output, stages["dense"].layer
    w = dense.params["weight"][k].reshape(maps.shape)  # (C, H, W), the order flatten reads the maps in
    products = w[:, i, j].astype(np.float64) * maps[:, i, j]
    return products, float(products.sum())


def test_step_8_is_why_and_starts_at_the_spot_that_adds_most(expected):
    model, _, stages = expected
    at = step8()
    assert STEPS[7] == "Why?" and header(at) == "8. Why?"
    assert len(at.image) >= 2
    k = int(np.argmax(stages["softmax"].output))
    parts = np.stack([[by_hand(stages, k, i, j)[1] for j in range(8)] for i in range(8)])
    i, j = np.unravel_index(int(np.argmax(parts)), parts.shape)
    assert (at.slider(key="why_row").value, at.slider(key="why_col").value) == (i + 1, j + 1)  # counted from 1
    assert f"At row {i + 1}, column {j + 1}" in line(at, "At row")
    text = line(at, "This spot adds")
    assert f"**{parts[i, j]:+.3f}**" in text and f"**{model.classes[k]}**" in text
    assert "✓ the score in the fully connected layer" in text and "✗" not in text
    total = float(stages["dense"].output[k])
    assert f"**{total:.3f}**" in text
    assert at.segmented_control(key="why_method").value == "occlusion"
    assert "We hide one square" in line(at, "We hide one square")


def test_every_overlay_for_another_class_keeps_the_check(expected):
    model, _, stages = expected
    at = step8()
    k = int(np.argsort(stages["softmax"].output)[0])  # the least likely class
    next(s for s in at.selectbox if s.key and s.key.startswith("why_class")).set_value(k).run()
    for method, words in (("gradcam", "For each of the last 32 maps"), ("saliency", "For every pixel"),
                          ("occlusion", "We hide one square")):
        at.segmented_control(key="why_method").set_value(method).run()
        assert not at.exception, [e.value for e in at.exception]
        assert f"**{model.classes[k]}**" in line(at, words)
        text = line(at, "This spot adds")
        assert "✓ the score in the fully connected layer" in text
        assert f"**{float(stages['dense'].output[k]):.3f}**" in text
        assert any(c.value.startswith(f"{why.METHODS[method]} for {model.classes[k]}.") for c in at.caption)


def test_sliders_pick_a_spot_and_its_maps_and_products_are_the_trace(expected):
    model, _, stages = expected
    at = step8()
    k = int(np.argmax(stages["softmax"].output))
    for i, j in ((0, 0), (7, 3), (4, 6)):
        at.slider(key="why_row").set_value(i + 1)
        at.slider(key="why_col").set_value(j + 1)
        at.run()
        assert not at.exception
        products, part = by_hand(stages, k, i, j)
        assert f"At row {i + 1}, column {j + 1}" in line(at, "At row")
        assert f"**{part:+.3f}**" in line(at, "This spot adds")
        lit = int(np.sum(stages["maxpool2"].output[:, i, j] > 0))
        assert any(c and c.startswith(f"{lit} of the 32 maps are lit here") for im in at.image for c in im.captions)


def test_spot_parts_read_the_flattened_list_in_the_maps_order(expected):
    _, _, stages = expected
    maps, vec, dense = stages["maxpool2"], stages["flatten"], stages["dense"]
    for k in (0, 3, 9):
        a = why.spot_parts(maps.output, vec.output, dense, k, 2, 5)
        np.testing.assert_array_equal(a["values"], maps.output[:, 2, 5])
        products, part = by_hand(stages, k, 2, 5)
        np.testing.assert_allclose(a["products"], products, rtol=1e-12)
        assert a["part"] == pytest.approx(part)
        np.testing.assert_allclose(a["total"], dense.output[k], rtol=1e-5, atol=1e-5)


def test_a_click_on_the_picture_moves_the_spot(expected):
    at = step8()
    size = 9 * 32  # the picture as a browser drew it, 9 pixels a picture pixel: 36 a spot of the 8x8 maps
    at.session_state["why_click"] = {"x": 36 * 5.5, "y": 36 * 1.5, "width": size, "height": size, "unix_time": 1}
    at.run()
    assert not at.exception
    assert (at.slider(key="why_row").value, at.slider(key="why_col").value) == (2, 6)
    assert "At row 2, column 6" in line(at, "At row")


def test_the_overlays_numbers_are_the_cores(expected):
    model, picture, _ = expected
    small = fit_to_input(picture, model.input_size)
    assert why.occlusion_settings(32) == (8, 2) and why.occlusion_settings(16) == (4, 1)
    np.testing.assert_array_equal(why.heat(model, small, 3, "gradcam"), E.gradcam(model, small, 3))
    np.testing.assert_array_equal(why.heat(model, small, 3, "saliency"), E.saliency(model, small, 3))
    occ = E.occlusion(model, small, 3, 8, 2)
    np.testing.assert_array_equal(why.heat(model, small, 3, "occlusion"), E.occlusion_pixels(occ, (32, 32), 8, 2))
    for method in why.METHODS:
        img = why.overlay(small, why.heat(model, small, 3, method), method, 320)
        assert img.size == (320, 320)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_step_8_walks_another_network(activation):
    model = tiny_vgg(["a", "b", "c", "d"], (4, 4, 8, 8), input_size=(16, 24), seed=2, activation=activation)
    at = step8(model)
    assert header(at) == "8. Why?"
    text = line(at, "This spot adds")
    assert "✓ the score in the fully connected layer" in text
    at.segmented_control(key="why_method").set_value("gradcam").run()
    assert not at.exception
    assert "For each of the last 8 maps" in line(at, "For each of the last")


def test_step_8_in_presentation_mode_with_an_odd_picture():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["step"] = 8
    at.session_state["presentation"] = True
    at.session_state["source"], at.session_state["upload_name"] = "upload", "strip"
    at.session_state["upload"] = np.full((1, 300, 3), 200, np.uint8)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "✓ the score in the fully connected layer" in line(at, "This spot adds")
