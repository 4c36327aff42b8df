"""Steps 3 (ReLU) and 4 (max pooling) driven through the whole app with Streamlit's AppTest.

Every number the page states is checked against an independent computation
(model.trace plus plain NumPy) on the same picture.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnviz import layers as L
from cnnviz import samples
from cnnviz.images import load_image
from cnnviz.model import load_model, trace
from cnnviz.ui import activation, pool
from cnnviz.ui.common import fmt_prob
from cnnviz.ui.state import DEFAULT_SAMPLE

APP = str(Path(__file__).resolve().parents[1] / "app.py")  # from_file resolves relative paths from this file
COUNT = re.compile(r"([\d,]+) of ([\d,]+) numbers \((\d+%|less than 1%)\) were negative")


@pytest.fixture(scope="module")
def stages():
    return trace(load_model(), load_image(samples.sample_path(DEFAULT_SAMPLE)))


def after(stages, kind):
    """(stage of `kind`, the stage right after it), by position."""
    i = next(k for k, s in enumerate(stages) if s.kind == kind)
    return stages[i], stages[i + 1]


def app(step: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["step"] = step
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at) -> list[str]:
    return [m.value for m in at.markdown]


def one(at, needle: str) -> str:
    found = [t for t in texts(at) if needle in t]
    assert len(found) == 1, (needle, texts(at))
    return found[0]


def counted(text: str) -> tuple[int, int]:
    m = COUNT.search(text)
    assert m, text
    return int(m[1].replace(",", "")), int(m[2].replace(",", ""))


# ---------------------------------------------------------------- step 3: ReLU


def test_relu_page_counts_match_an_independent_trace(stages):
    at = app(3)
    assert len(at.image) >= 6  # maps, legend, number grids, histograms, the comparison
    conv, act = after(stages, "conv")
    assert act.kind == "relu"
    x = conv.output  # (16, 32, 32)
    assert counted(one(at, "**Whole layer")) == (int((x < 0).sum()), x.size)
    assert counted(one(at, "**This map:**")) == (int((x[0] < 0).sum()), x[0].size)

    at.slider(key="relu_map").set_value(5).run()
    assert not at.exception
    assert counted(one(at, "**This map:**")) == (int((x[4] < 0).sum()), x[4].size)
    # ReLU really zeroed exactly those numbers
    np.testing.assert_array_equal(act.output[4] == 0, x[4] <= 0)


def test_relu_captions_name_the_stages():
    at = app(3)
    captions = [c for im in at.image for c in im.captions]
    assert "Before: conv1_1, map 1" in captions
    assert any(c.startswith("After: relu1_1, map 1") for c in captions)


def test_patch_sliders_move_the_zoom_patch(stages):
    at = app(3)
    at.slider(key="relu_patch_row").set_value(3)
    at.slider(key="relu_patch_col").set_value(10).run()
    assert not at.exception
    assert at.slider(key="relu_patch_row").value == 3 and at.slider(key="relu_patch_col").value == 10


def test_mixed_patch_has_both_signs():
    a = np.random.default_rng(0).standard_normal((32, 32))
    r, c = activation.mixed_patch(a)
    patch = a[r:r + activation.PATCH, c:c + activation.PATCH]
    assert (patch < 0).any() and (patch > 0).any()


def test_switching_to_tanh_changes_the_network_and_back():
    at = app(3)
    before = at.info[0].value
    assert "activation" not in at.session_state or at.session_state["activation"] == "relu"
    at.segmented_control(key="relu_compare").set_value("tanh").run()
    at.button(key="relu_use_other").click().run()
    assert not at.exception
    assert at.session_state["activation"] == "tanh"
    after_text = at.info[0].value
    assert after_text != before

    # the banner shows what a tanh network independently predicts
    m = load_model().with_activation("tanh")
    p = trace(m, load_image(samples.sample_path(DEFAULT_SAMPLE)))[-1].output
    assert f"{m.classes[int(p.argmax())]}** ({fmt_prob(p.max())})" in after_text
    captions = [c for im in at.image for c in im.captions]
    assert any(c.startswith("After: tanh1_1") for c in captions)
    assert not any("were negative and became 0" in t for t in texts(at))

    at.button(key="relu_back_top").click().run()
    assert not at.exception
    assert at.session_state["activation"] == "relu"
    assert at.info[0].value == before


@pytest.mark.parametrize("kind", ["relu", "tanh", "sigmoid"])
def test_compare_shows_the_chosen_function(kind, stages):
    at = app(3)
    at.segmented_control(key="relu_compare").set_value(kind).run()
    assert not at.exception
    out = activation.FUNCTIONS[kind](after(stages, "conv")[0].output[0])
    zeros = int((out == 0).sum())
    assert any(f"{zeros:,} of 1,024 are exactly 0" in t for t in texts(at))
    assert (zeros > 0) == (kind == "relu")


def test_presentation_mode_hides_secondary_controls():
    at = app(3)
    at.toggle(key="presentation").set_value(True).run()
    assert not at.exception
    keys = {s.key for s in at.slider}
    assert "relu_map" in keys and "relu_patch_row" not in keys


# ---------------------------------------------------------------- step 4: max pooling


def test_worked_example_is_computed_by_max_pool2d():
    out = L.max_pool2d(pool.EXAMPLE[None, None], 2)[0, 0]
    np.testing.assert_array_equal(out, [[20, 30], [112, 37]])


def test_pool_page_worked_example():
    at = app(4)
    assert len(at.image) >= 4
    largest = []
    for w in range(4):
        at.segmented_control(key="pool_example_window").set_value(w).run()
        assert not at.exception
        text = one(at, "window holds")
        largest.append(int(re.search(r"The largest is \*\*(\d+)\*\*", text)[1]))
    assert largest == [20, 30, 112, 37]  # [[20, 30], [112, 37]] read row by row
    assert any("16 numbers become 4: 75% fewer." in t for t in texts(at))


def test_pool_window_value_matches_the_stage(stages):
    i = next(k for k, s in enumerate(stages) if s.kind == "maxpool")
    src, pooled = stages[i - 1], stages[i]
    at = app(4)
    assert "16 maps of 32x32 = 16,384 numbers → 16 maps of 16x16 = 4,096 numbers" in one(at, "16 maps of 32x32")
    at.slider(key="pool_map").set_value(3)
    at.slider(key="pool_row").set_value(5)
    at.slider(key="pool_col").set_value(7).run()
    assert not at.exception and not at.error
    window = src.output[2, 8:10, 12:14]
    expected = float(pooled.output[2, 4, 6])
    assert expected == float(window.max())  # plain NumPy, not the layers code
    assert f"= **{expected:.2f}**" in one(at, "max(")
    assert f"row 5, column 7: **{expected:.2f}**" in one(at, "Same number")


def test_pool_average_toggle(stages):
    i = next(k for k, s in enumerate(stages) if s.kind == "maxpool")
    src = stages[i - 1]
    at = app(4)
    n_images = len(at.image)
    at.slider(key="pool_row").set_value(2)
    at.slider(key="pool_col").set_value(3)
    at.toggle(key="pool_avg").set_value(True).run()
    assert not at.exception
    assert len(at.image) == n_images + 1
    mean = float(src.output[0, 2:4, 4:6].mean())
    assert f"= **{mean:.2f}**" in one(at, "average = (")
    assert any("Average pooling" in t for t in texts(at))


def test_a_click_on_the_map_moves_the_window():
    at = app(4)
    # streamlit-image-coordinates reports the click in pixels of the shown image
    at.session_state["pool_click"] = {"x": 100, "y": 200, "width": 288, "height": 288, "unix_time": 1}
    at.run()
    assert not at.exception
    assert (at.slider(key="pool_row").value, at.slider(key="pool_col").value) == (12, 6)


def test_pool_presentation_mode():
    at = app(4)
    at.toggle(key="presentation").set_value(True).run()
    assert not at.exception
    assert {s.key for s in at.slider} == {"pool_map"}
    assert any("Same number" in t for t in texts(at))
