"""The words for pictures (cnnviz/ui/describe.py): each alt text says what a picture shows with the numbers
a sighted student reads off it, counted from 1, and each grid of numbers becomes a table with every number.
Checked against small hand-worked arrays."""

from html.parser import HTMLParser

import numpy as np
import pytest

from cnnviz import render
from cnnviz.ui import describe as D


class _Table(HTMLParser):
    """An HTML table -> its class, caption and the text of every header and data cell, row by row."""

    def __init__(self):
        super().__init__()
        self.cls, self.caption, self.rows, self._where = None, "", [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.cls = dict(attrs).get("class")
        elif tag == "caption":
            self._where = "caption"
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._where = "cell"
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag in ("caption", "td", "th"):
            self._where = None

    def handle_data(self, data):
        if self._where == "caption":
            self.caption += data
        elif self._where == "cell":
            self.rows[-1][-1] += data


def parse(html: str) -> _Table:
    t = _Table()
    t.feed(html)
    return t


def test_a_map_is_described_by_its_size_and_where_its_extremes_are_counted_from_1():
    a = np.zeros((4, 5), np.float32)
    a[2, 3], a[0, 1] = 4.6, -3.1  # row 3, column 4 and row 1, column 2 for a student
    text = D.describe_map(a, "Feature map of filter 3 of conv1_1")
    assert text == ("Feature map of filter 3 of conv1_1, 4 by 5; largest value 4.60 at row 3, column 4; "
                    "smallest -3.10 at row 1, column 2")


def test_a_marked_cell_and_an_outlined_window_are_said_with_their_value_and_place():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    text = D.describe_map(a, "Map 1", "{:.1f}", mark=(1, 2), box=(0, 1, 2, 3), box_name="zoom patch")
    assert "the cell at row 2, column 3 (6.0) is outlined" in text
    assert "the 2 by 2 zoom patch at rows 1 to 2, columns 2 to 3 is outlined" in text
    assert D.describe_box((4, 7, 5, 8)) == "the 1 by 1 window at row 5, column 8"


def test_a_picture_says_its_pixels_and_average_colour_and_the_outlined_pixel():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 90  # red everywhere
    rgb[1, 2] = (30, 60, 255)
    text = D.describe_picture(rgb, "The picture", mark=(1, 2))
    assert text.startswith("The picture, 3 pixels wide and 2 high; average colour red 80, green 10, blue 42")
    assert text.endswith("the pixel at row 2, column 3 (red 30, green 60, blue 255) is outlined")


def test_a_colour_plane_names_its_colour_and_its_brightest_and_darkest_pixel():
    rgb = np.zeros((3, 3, 3), np.uint8)
    rgb[2, 1, 1] = 200
    text = D.describe_plane(rgb, 1)
    assert "green numbers of the 3 by 3 picture" in text
    assert "largest value 200 at row 3, column 2" in text


def test_a_number_grid_becomes_a_hidden_table_holding_every_number_as_the_picture_writes_it():
    values = np.array([[12, 20], [8, -0.5]], np.float32)
    t = parse(D.numbers_table(values, "The window", "{:.1f}"))
    assert t.cls == D.SR_ONLY
    assert t.caption == "The window"
    assert t.rows[0] == ["", "column 1", "column 2"]
    assert t.rows[1:] == [["row 1", "12.0", "20.0"], ["row 2", "8.0", "-0.5"]]
    assert "framed" in D.describe_numbers(values, "The window", "{:.1f}", mark=(0, 1))
    assert "(20.0)" in D.describe_numbers(values, "The window", "{:.1f}", mark=(0, 1))


def test_window_times_filter_is_written_out_cell_by_cell():
    window = np.array([[1.0, 2.0], [3.0, -1.0]])
    kernel = np.array([[0.5, 0.0], [-1.0, 2.0]])
    t = parse(D.products_table(window, kernel, "Red: window × filter = product", "{:.1f}"))
    assert t.rows[1][1:] == ["1.0 × 0.5 = 0.5", "2.0 × 0.0 = 0.0"]
    assert t.rows[2][1:] == ["3.0 × -1.0 = -3.0", "-1.0 × 2.0 = -2.0"]


def test_tables_escape_what_they_hold():
    t = D.table_html([["<script>"]], "a & b")
    assert "<script>" not in t and "&lt;script&gt;" in t and "a &amp; b" in t


def test_a_bar_chart_lists_every_bar_in_its_order_and_says_how_many_more():
    text = D.describe_bars(["cat", "dog", "frog"], [0.62, 0.3, 0.08], "Chances", "{:.0%}", limit=2)
    assert text == "Chances: cat 62%, dog 30%, and 1 more"
    t = parse(D.list_table(["cat", "dog"], [0.62, 0.3], "Chances", "{:.0%}", ("class", "chance")))
    assert t.rows == [["class", "chance"], ["cat", "62%"], ["dog", "30%"]]


def test_a_histogram_counts_below_at_and_above_zero():
    values = np.array([-2.0, -1.0, 0.0, 0.0, 0.0, 3.0])
    text = D.describe_histogram(values, np.linspace(-3, 3, 7), "Before ReLU")
    assert "6 numbers from -3 to 3; 2 below 0, 3 exactly 0, 1 above 0" in text


def test_a_curve_says_what_comes_out_at_both_ends_and_at_zero():
    xs = np.linspace(-2, 2, 5)
    text = D.describe_curve("ReLU", xs, np.maximum(xs, 0))
    assert "-2 gives 0, 0 gives 0, 2 gives 2" in text


def test_the_legend_names_both_ends_and_the_middle():
    assert D.describe_legend(4.6) == "Colour scale: dark blue for -4.6, white for 0, dark red for 4.6"


def test_the_filter_mosaic_names_the_strongest_and_weakest_filter():
    w = np.zeros((3, 3, 3, 3), np.float32)
    maps = np.zeros((3, 4, 4), np.float32)
    maps[1, 0, 0], maps[2, 1, 1] = 5.0, 0.5  # filter 2 strongest, filter 1 weakest (all 0)
    text = D.describe_filters(w, maps, "conv1_1")
    assert "All 3 filters of conv1_1 (3 by 3 for each of 3 colours" in text
    assert "the strongest is filter 2 (largest value 5.00), the weakest filter 1 (largest value 0.00)" in text


def test_the_overview_names_every_stage_and_the_answer():
    columns = [("input", "picture", np.zeros((32, 32, 3), np.uint8)), ("conv1_1", "maps", np.zeros((16, 32, 32))),
               ("flatten", "list", np.zeros(2048)), ("dense", "scores", np.zeros(2)),
               ("softmax", "probabilities", np.array([0.25, 0.75]))]
    text = D.describe_overview(columns, ["cat", "dog"], np.array([0.25, 0.75]))
    for part in ("input: the picture as 3 colour planes of 32 by 32", "conv1_1: 16 maps of 32 by 32",
                 "flatten: a list of 2,048 numbers", "dense: a score for each of 2 classes", "Its answer: dog, 75%"):
        assert part in text


def test_training_curves_say_where_each_line_starts_and_ends():
    series = [("practice", [0, 10, 20], [0.2, 0.5, 0.9], (0, 0, 0)), ("test", [20], [0.8], (0, 0, 0)),
              ("none yet", [], [], (0, 0, 0))]
    text = D.describe_curves("Accuracy", series, 900, "{:.0%}")
    assert text == ("Accuracy, steps 0 to 900: practice: from 20% at step 0 to 90% at step 20; "
                    "test: 80% at step 20; none yet: nothing yet")


def test_right_and_wrong_are_said_in_words_for_every_picture():
    text = D.describe_verdicts(["cat", "dog"], ["cat", "cat"], [True, False])
    assert "1: a cat, it says cat, right; 2: a dog, it says cat, wrong" in text
    assert "tick" in text and "cross" in text


@pytest.mark.parametrize("ok", [True, False])
def test_a_verdict_tile_is_framed_in_its_colour_with_a_band_for_the_mark_and_the_word(ok):
    rgb = np.full((8, 8, 3), 128, np.uint8)
    tile = np.asarray(render.verdict_tile(rgb, ok, width=32, border=4))
    color = render.RIGHT if ok else render.WRONG
    assert tile.shape == (32 + 8 + 24, 40, 3)  # the picture, its frame, and the band under it
    np.testing.assert_array_equal(tile[0, 0], color)
    band = tile[40:]
    assert (band == 255).all(axis=-1).sum() > 20  # white strokes: the tick or cross and the word
