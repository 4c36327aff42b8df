"""render.overview: the whole network in one picture, a column per stage, every map clickable."""

import numpy as np
import pytest

from cnnviz import render

RED, BLUE = (214, 96, 77), (146, 197, 222)


def columns(rng, n_maps=20):
    picture = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return [("input", "picture", picture),
            ("conv", "maps", rng.standard_normal((3, 4, 4)).astype(np.float32)),
            ("deep", "maps", rng.standard_normal((n_maps, 2, 2)).astype(np.float32)),
            ("flatten", "list", rng.standard_normal(n_maps * 4).astype(np.float32)),
            ("dense", "scores", np.array([1.5, -2.0, 0.5], np.float32)),
            ("softmax", "probabilities", np.array([0.2, 0.1, 0.7], np.float32))]


def colour_at(img, x, y):
    return tuple(int(v) for v in np.asarray(img)[y, x])


@pytest.mark.parametrize("scale", [1, 2])
def test_every_map_gets_a_box_that_shows_that_map(scale):
    cols = columns(np.random.default_rng(0))
    img, boxes = render.overview(cols, ["cat", "dog", "horse"], scale)
    assert [(title, k) for title, k, _ in boxes] == [("conv", k) for k in range(3)] + [("deep", k) for k in range(20)]
    for title, k, (x0, y0, x1, y1) in boxes:
        assert 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height
        assert (x1 - x0, y1 - y0) == (32 * scale, 32 * scale)
        maps = dict((t, a) for t, _, a in cols)[title]
        want = render.upscale(render.diverging(maps[k], render.symmetric_limit(maps)), 32 * scale)
        np.testing.assert_array_equal(np.asarray(img)[y0:y1, x0:x1], np.asarray(want))  # one scale per column


def test_columns_run_left_to_right_and_many_maps_wrap_into_sub_columns():
    _, boxes = render.overview(columns(np.random.default_rng(1)), ["cat", "dog", "horse"])
    conv = [b for t, _, b in boxes if t == "conv"]
    deep = [b for t, _, b in boxes if t == "deep"]
    assert max(b[2] for b in conv) < min(b[0] for b in deep)  # the conv column is left of the deep one
    first_column = deep[:render.OVERVIEW_ROWS]
    assert len({b[0] for b in first_column}) == 1  # OVERVIEW_ROWS maps one under the other ...
    assert deep[render.OVERVIEW_ROWS][0] > first_column[0][2]  # ... then a new sub-column to the right


def test_the_answer_columns_mark_the_top_class():
    img, _ = render.overview(columns(np.random.default_rng(2)), ["cat", "dog", "horse"])
    a = np.asarray(img)
    assert np.all(a == RED, axis=-1).any()  # the most likely class's probability bar
    assert np.all(a == (178, 24, 43), axis=-1).any()  # the top score's bar, darker


def test_frame_draws_just_outside_the_box_and_leaves_the_original_alone():
    from PIL import Image

    img = Image.new("RGB", (40, 40), "white")
    out = render.frame(img, (10, 10, 20, 20), color=(255, 140, 0), width=2, grow=2)
    assert colour_at(out, 8, 15) == (255, 140, 0) and colour_at(out, 15, 15) == (255, 255, 255)
    assert colour_at(img, 8, 15) == (255, 255, 255)
