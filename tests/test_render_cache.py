"""render.number_grid draws each look once (the server shares it between students) and hands out copies."""

import numpy as np

from cnnviz import render


def test_number_grid_is_drawn_once_per_look_and_each_caller_gets_a_copy():
    values = np.array([[0.5, -1.25], [2.0, 0.0]], np.float32)
    colors = render.diverging(values)
    first = render.number_grid(values, colors, cell=40, highlight=(1, 0))
    hits = render._number_grid.cache_info().hits
    first.paste((0, 0, 0), (0, 0, 20, 20))  # a caller drawing on its picture ...
    again = render.number_grid(values.copy(), colors.copy(), cell=40, highlight=(np.int64(1), 0))
    assert render._number_grid.cache_info().hits == hits + 1  # same texts, colours, size: not drawn again
    assert again.getpixel((5, 5)) != (0, 0, 0)  # ... never changes what the next one gets
    assert again.size == (2 * 40 + 1, 2 * 40 + 1)


def test_number_grid_changes_with_the_numbers_shown():
    colors = np.full((1, 2, 3), 250, np.uint8)
    a = np.asarray(render.number_grid(np.array([[1.0, 2.0]]), colors))
    b = np.asarray(render.number_grid(np.array([[1.0, 3.0]]), colors))
    c = np.asarray(render.number_grid(np.array([[1.0, 2.001]]), colors))  # prints as 2.00, like the first
    assert not np.array_equal(a, b)
    assert np.array_equal(a, c)
