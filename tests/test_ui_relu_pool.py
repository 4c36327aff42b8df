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
from cnnviz import render, samples
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


def test_patch_sliders_move_the_zoom_patch(stages, monkeypatch):
    drawn = []  # every number grid the page draws, as the numbers written in it
    real = render.number_grid
    monkeypatch.setattr(render, "number_grid", lambda values, *a, **kw: drawn.append(np.array(values))
                        or real(values, *a, **kw))

    def zoom():
        """The numbers in the zoom's two grids (before, after) drawn by the last run."""
        grids = [d for d in drawn if d.shape == (activation.PATCH, activation.PATCH)]
        assert len(grids) == 2, [d.shape for d in drawn]
        return grids

    conv, act = after(stages, "conv")
    b, a = conv.output[0], act.output[0]  # map 1 (H, W) before and after ReLU
    at = app(3)
    r, c = 3, 10  # the sliders count from 1: rows 3..7, columns 10..14
    first_before, _ = zoom()
    assert not np.array_equal(first_before, b[r - 1:r + 4, c - 1:c + 4])  # so a move is visible
    drawn.clear()
    at.slider(key="relu_patch_row").set_value(r)
    at.slider(key="relu_patch_col").set_value(c).run()
    assert not at.exception
    before, after_ = zoom()
    np.testing.assert_allclose(before, b[r - 1:r + 4, c - 1:c + 4], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(after_, a[r - 1:r + 4, c - 1:c + 4], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("r, c", [(7, 18), (0, 0), (27, 27)])  # 27 = 32 - 5: the last corner that fits
def test_mixed_patch_finds_the_one_patch_with_an_even_mix_of_signs(r, c):
    """An all-positive map with one 5x5 checkerboard of -1 and +1 (13 of 25 negative) at (r, c): every other
    5x5 patch holds at most 10 negatives (a 4x5 part of the checkerboard), so only that one is most even."""
    assert activation.PATCH == 5
    a = np.ones((32, 32), np.float32)
    a[r:r + 5, c:c + 5] = np.where(np.indices((5, 5)).sum(axis=0) % 2 == 0, -1, 1)
    assert activation.mixed_patch(a) == (r, c)


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
    out = activation.FUNCTIONS[kind](after(stages, "conv")[0].output[0])  # map 1 through `kind`, by the core
    m = re.search(r"Here: numbers from (\S+) to (\S+); ([\d,]+) of ([\d,]+) are exactly 0\.", one(at, "are exactly 0"))
    assert m, one(at, "are exactly 0")
    assert float(m[1]) == pytest.approx(out.min(), abs=0.005) and float(m[2]) == pytest.approx(out.max(), abs=0.005)
    zeros = int((out == 0).sum())
    assert (int(m[3].replace(",", "")), int(m[4].replace(",", ""))) == (zeros, out.size)
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
    (C, H, W), (C2, H2, W2) = src.output.shape, pooled.output.shape
    sizes = f"{C} maps of {H}x{W} = {C * H * W:,} numbers → {C2} maps of {H2}x{W2} = {C2 * H2 * W2:,} numbers"
    assert sizes in one(at, sizes)
    assert pooled.layer.options == {"size": 2}  # so window (5, 7) of map 3 is rows 8-9, columns 12-13 below
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


def test_a_click_on_the_map_moves_the_window(stages):
    pooled = next(s for s in stages if s.kind == "maxpool")
    assert pooled.output.shape[1:] == (16, 16)  # so the hand-worked cell below: 200/288*16 = 11.1, 100/288*16 = 5.6
    at = app(4)
    # streamlit-image-coordinates reports the click in pixels of the shown image; the sliders count from 1
    at.session_state["pool_click"] = {"x": 100, "y": 200, "width": 288, "height": 288, "unix_time": 1}
    at.run()
    assert not at.exception
    assert (at.slider(key="pool_row").value, at.slider(key="pool_col").value) == (12, 6)


def test_pool_presentation_mode():
    at = app(4)
    at.toggle(key="presentation").set_value(True).run()
    assert not at.exception
    assert {s.key for s in at.slider} == {"pool_map", "pool_row", "pool_col"}  # the keyboard path stays
    assert any("Same number" in t for t in texts(at))
