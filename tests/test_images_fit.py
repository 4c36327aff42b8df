"""images.fit_to_input is PIL's ImageOps.fit: a centre crop to the model's aspect, then a resize.

ImageOps.fit resizes the centred region of the whole picture (Image.resize with a box) instead of
cutting it out first, as the hand-made version did. So: with whole-pixel margins and whole-pixel filter
windows the two are identical; elsewhere the resampling filter may reach a pixel past the crop's edge
(bicubic enlarging) or round a level differently, and an odd margin is split exactly, not rounded down.
"""

import numpy as np
import pytest
from PIL import Image

from cnnviz.images import fit_to_input

BOX, BICUBIC = Image.Resampling.BOX, Image.Resampling.BICUBIC


def cut_then_resize(a, crop, size, resample):
    """The hand-made way: cut the crop (top, left, h, w) out, then resize it to size (h, w)."""
    top, left, h, w = crop
    cut = Image.fromarray(np.ascontiguousarray(a[top:top + h, left:left + w]))
    return np.asarray(cut.resize((size[1], size[0]), resample)).astype(int)


def noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("shape, size, crop", [
    ((64, 96, 3), (32, 32), (0, 16, 64, 64)),  # too wide: 16 columns off each side, then halve
    ((40, 64, 3), (32, 32), (0, 12, 40, 40)),  # too wide, shrunk by 1.25
    ((64, 64, 3), (16, 32), (16, 0, 32, 64)),  # a wide model input: rows off top and bottom
])
def test_whole_pixel_margins_when_shrinking_are_the_plain_cut_and_resize(shape, size, crop):
    a = noise(shape)
    got = fit_to_input(a, size)
    assert got.shape == (*size, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, cut_then_resize(a, crop, size, BOX))


def test_other_shrink_factors_differ_from_the_cut_by_rounding_at_most():
    a = noise((96, 48, 3))  # too tall: 24 rows off top and bottom, then shrunk by 1.5
    d = np.abs(fit_to_input(a, (32, 32)).astype(int) - cut_then_resize(a, (24, 0, 48, 48), (32, 32), BOX))
    assert d.max() <= 1


def test_enlarging_differs_only_next_to_the_cut_sides():
    a = noise((20, 24, 3))  # 2 columns off each side, then enlarged from 20x20 to 32x32 (bicubic)
    d = np.abs(fit_to_input(a, (32, 32)).astype(int) - cut_then_resize(a, (0, 2, 20, 20), (32, 32), BICUBIC))
    assert d[:, 2:-2].max() == 0  # the inside is the same; the outer columns see the pixels past the cut


def test_an_odd_margin_keeps_the_middle_in_the_middle():
    a = np.zeros((32, 35, 3), np.uint8)
    a[:, 17] = 255  # the middle column of 35; 1.5 columns come off each side
    b = fit_to_input(a, (32, 32))
    bright = np.flatnonzero(b[0, :, 0] > 127)
    assert b.shape == (32, 32, 3) and set(bright) <= {15, 16} and len(bright) >= 1


def test_a_uniform_picture_of_any_shape_stays_uniform():
    for shape in ((1, 5000, 3), (5000, 1, 3), (7, 3, 3), (300, 301, 3)):
        b = fit_to_input(np.full(shape, (30, 60, 90), np.uint8), (32, 32))
        assert b.shape == (32, 32, 3) and np.all(b == (30, 60, 90))


def test_the_right_size_is_returned_as_it_is():
    a = np.zeros((32, 32, 3), np.uint8)
    assert fit_to_input(a, (32, 32)) is a
