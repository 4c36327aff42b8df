"""render.curves (the training pages' charts), bar_chart's room for long class names, and stack."""

import numpy as np
from PIL import Image

from cnnviz import render


def _has(img, rgb) -> bool:
    return bool(np.any(np.all(np.asarray(img) == rgb, axis=-1)))


def test_curves_fill_the_chart_from_the_left_as_training_goes():
    red, blue = (214, 96, 77), (33, 102, 172)
    xs = np.arange(10, 110, 10)
    img = render.curves([("practice", xs, 1 - np.exp(-xs / 40), red), ("test", [0, 50], [0.2, 0.7], blue)],
                        400, (0.0, 1.0), "Accuracy", width=420, height=200)
    assert img.size == (420, 200)
    a = np.asarray(img)
    cols = np.flatnonzero(np.all(a == red, axis=-1).any(axis=0))
    assert cols.min() < 420 * 0.15 and cols.max() < 420 * 0.4  # 110 of 400 steps: the left part only
    assert _has(img, blue)


def test_curves_survive_empty_single_and_non_finite_series():
    img = render.curves([("a", [], [], (1, 2, 3)), ("b", [5], [0.5], (4, 5, 6)),
                         ("c", [1, 2, 3], [np.nan, np.inf, 1e9], (7, 8, 9))], 10, (0, 2), "Loss")
    assert _has(img, (4, 5, 6))  # one point is a dot


def test_bar_chart_makes_room_for_long_names():
    long = "horizontal stripes"
    img = render.bar_chart(["cat", long], np.array([0.9, 0.1]), width=400, bar_h=24)
    a = np.asarray(img)
    ink = np.flatnonzero((a[30:60] < 100).all(axis=-1).any(axis=0))  # the second row's dark text
    assert ink.min() > 2  # the name starts inside the picture, not cut off at its left edge


def test_stack_puts_pictures_under_each_other_left_aligned():
    a = Image.new("RGB", (30, 10), (255, 0, 0))
    b = Image.new("RGB", (50, 20), (0, 0, 255))
    out = np.asarray(render.stack([a, b], pad=5))
    assert out.shape == (10 + 5 + 20, 50, 3)
    assert (out[:10, :30] == (255, 0, 0)).all() and (out[:10, 30:] == 255).all()  # the gap right of a is blank
    assert (out[10:15] == 255).all()  # the pad
    assert (out[15:, :50] == (0, 0, 255)).all()
    assert render.stack([]).size == (1, 1)
