"""render's colours and the map pictures the step views show (filters, thumbnails, flattened maps)."""

import numpy as np

from cnnviz import layers as L
from cnnviz import render


def test_diverging_is_red_for_positive_blue_for_negative_white_at_zero():
    c = render.diverging(np.array([[-1.0, -0.5, 0.0, 0.5, 1.0]]), vmax=1.0)[0].astype(int)  # (5, 3)
    neg, half_neg, zero, half_pos, pos = c
    assert pos[0] > pos[2] + 50 and half_pos[0] > half_pos[2]  # red above zero
    assert neg[2] > neg[0] + 50 and half_neg[2] > half_neg[0]  # blue below
    assert zero.min() >= 240 and zero.max() - zero.min() <= 2  # near white, no tint
    assert pos.sum() < half_pos.sum() < zero.sum() and neg.sum() < half_neg.sum() < zero.sum()  # darker further out
    lut = render.DIVERGING_LUT.astype(int)
    assert lut.shape == (256, 3)
    assert (lut[:128, 2] >= lut[:128, 0]).all() and (lut[128:, 0] >= lut[128:, 2]).all()  # never mixes the sides


def test_diverging_survives_nan_and_clips_beyond_the_scale():
    c = render.diverging(np.array([[np.nan, 10.0, -10.0]]), vmax=1.0)[0]
    np.testing.assert_array_equal(c[1], render.DIVERGING_LUT[-1])
    np.testing.assert_array_equal(c[2], render.DIVERGING_LUT[0])
    np.testing.assert_array_equal(c[0], render.diverging(np.zeros((1, 1)), 1.0)[0, 0])


def test_flattened_maps_reads_like_layers_flatten():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)  # (C, H, W)
    cell = 5
    img = np.asarray(render.flattened_maps(x, cell))
    flat = L.flatten(x[None])[0]  # (C*H*W,): the order the dense layer reads
    colours = render.diverging(flat.reshape(3, 8))  # one line per map
    label_w = img.shape[1] - 8 * cell
    for n in range(flat.size):
        line, t = divmod(n, 8)
        np.testing.assert_array_equal(img[line * cell + cell // 2, label_w + t * cell + cell // 2], colours[line, t])


def test_unrolled_map_starts_with_the_map_itself():
    m = np.arange(12, dtype=np.float32).reshape(3, 4) - 6
    img = np.asarray(render.unrolled_map(m, 6.0, cell=10))
    grid = np.asarray(render.upscale(render.diverging(m, 6.0), 40))
    top = (img.shape[0] - grid.shape[0]) // 2  # the equation centres its pictures
    np.testing.assert_array_equal(img[top:top + grid.shape[0], :grid.shape[1]], grid)


def test_filter_picture_stretches_its_own_numbers_to_the_full_range():
    w = np.linspace(-2, 3, 27, dtype=np.float32).reshape(3, 3, 3)  # (colour, row, col)
    a = np.asarray(render.filter_picture(w, 30))
    assert a.shape == (30, 30, 3) and a.min() == 0 and a.max() == 255
    want = np.round((w[:, 0, 0] + 2) / 5 * 255)  # row 1, column 1 of the red, green and blue kernels
    np.testing.assert_array_equal(a[0, 0], want)


def test_filters_and_maps_and_thumbnails_have_a_tile_per_filter():
    rng = np.random.default_rng(1)
    w, maps = rng.standard_normal((6, 3, 3, 3)), rng.standard_normal((6, 8, 8))
    one = render.filters_and_maps(w[:1], maps[:1], cols=4)
    many = render.filters_and_maps(w, maps, cols=4)
    assert many.width == one.width and many.height > 1.8 * one.height  # room for 4 a row: 6 take two rows
    thumbs = np.asarray(render.thumbnails(maps, chosen=2))
    assert np.all(thumbs == (255, 170, 0), axis=-1).any()  # the chosen map is framed
