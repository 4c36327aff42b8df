"""The views' shared helpers: one conversion from a click to a grid cell, and the picture preview."""

import numpy as np
import pytest

from cnnviz.ui.common import clicked_cell, preview


def test_a_click_becomes_the_cell_under_it():
    click = {"x": 7.5 * 9, "y": 3.5 * 9, "width": 9 * 32, "height": 9 * 32, "unix_time": 1}
    assert clicked_cell(click, (32, 32)) == (3, 7)
    assert clicked_cell({**click, "width": 18 * 32}, (32, 32)) == (3, 3)  # drawn twice as wide
    assert clicked_cell({"x": 5, "y": 2}, (10, 10)) == (2, 5)  # no size given: the picture is drawn 1:1


@pytest.mark.parametrize("click", [None, {}, {"x": 3}, {"y": 1, "width": 4}])
def test_no_click_is_no_cell(click):
    assert clicked_cell(click, (4, 4)) is None


def test_clicks_on_the_edge_or_beyond_stay_inside_the_grid():
    size = {"width": 100, "height": 50}
    assert clicked_cell({"x": 100, "y": 50, **size}, (5, 10)) == (4, 9)
    assert clicked_cell({"x": -3, "y": -1, **size}, (5, 10)) == (0, 0)
    assert clicked_cell({"x": 10, "y": 10, "width": 0, "height": 0}, (5, 10)) == (4, 9)


@pytest.mark.parametrize("h, w", [(20, 30), (300, 200), (1, 5000), (5000, 1), (7, 7)])
def test_preview_fits_the_box_keeping_the_shape(h, w):
    picture = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = preview(picture, 120, 120)
    assert 1 <= img.width <= 120 and 1 <= img.height <= 120
    k = min(120 / w, 120 / h)
    if h <= 2 * w:  # no side bars: the picture itself, its aspect kept to a pixel
        assert img.width == 120 or img.height == 120
        assert abs(img.width - max(1, w * k)) <= 1 and abs(img.height - max(1, h * k)) <= 1
    else:
        assert img.width == -(-img.height // 2)  # grey bars make it half as wide as tall


def test_preview_enlarges_with_sharp_pixels():
    picture = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)  # 1x2
    a = np.asarray(preview(picture, 100, 100))
    assert a.shape == (50, 100, 3)
    assert set(map(tuple, a.reshape(-1, 3))) == {(255, 0, 0), (0, 0, 255)}  # no blended colours
