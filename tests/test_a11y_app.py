"""Every picture the walkthrough shows says what it shows (AppTest): on every step, with presentation mode
off and on, each st.image has alt text naming it with its numbers, each clickable picture has its words
for the page script, and the number grids' numbers are there as text (hidden tables) for a screen reader."""

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from cnnviz import samples
from cnnviz.images import fit_to_input, load_image
from cnnviz.ui.pool import EXAMPLE
from cnnviz.ui.state import DEFAULT_SAMPLE, STEPS
from cnnviz.ui.steps import KINDS
from tests.apptest import app

# The steps this file holds to the strict rule (a number in every alt text): the seven teaching steps.
# A later step (step 8, "Why?") is held to the basic one: every picture has words of its own.
NUMBERED = ("input", "conv", "relu", "maxpool", "overview", "dense", "softmax")
GENERIC = {"image", "picture", "map", "feature map", "chart", "grid", "plot", "figure"}
HIDDEN_WORDS = re.compile(r'<p hidden data-alt-for="([^"]+)">([^<]*)</p>')


def _alts(at) -> list[tuple[str | None, str]]:
    """(alt or None, caption) of every picture of every st.image on the page, the sidebar's too."""
    out = []
    for im in at.image:
        for img in im.proto.imgs:
            out.append((img.alt if img.HasField("alt") else None, img.caption))
    return out


def _clickables(at) -> tuple[list[str], dict]:
    """The keys of the streamlit-image-coordinates pictures, and the words written for each key."""
    keys = [c.proto.id.rsplit("-", 1)[-1] for c in at.get("component_instance")
            if c.proto.component_name.startswith("streamlit_image_coordinates")]
    words = {k: v for m in at.markdown for k, v in HIDDEN_WORDS.findall(m.value)}
    return keys, words


def _steps(presentation: bool):
    """Walk every step with Next; yield (kind, AppTest) at each."""
    at = app(step="1")
    if presentation:
        at.toggle(key="presentation").set_value(True).run()
    for k, kind in enumerate(KINDS, start=1):
        if k > 1:
            at.button(key="nav_next").click().run()
        assert not at.exception, (k, [e.value for e in at.exception])
        assert next(h.value for h in at.header) == f"{k}. {STEPS[k - 1]}"
        yield kind, at


@pytest.mark.parametrize("presentation", [False, True], ids=["normal", "presentation"])
def test_every_picture_on_every_step_says_what_it_shows(presentation):
    for kind, at in _steps(presentation):
        pictures = _alts(at)
        assert pictures, f"{kind}: no pictures"
        for alt, caption in pictures:
            assert alt and alt.strip(), f"{kind}: a picture without alt text (caption {caption!r})"
            assert alt.strip().lower() not in GENERIC, f"{kind}: alt text {alt!r} does not say which"
            if kind in NUMBERED:
                assert re.search(r"\d", alt) and len(alt) >= 20, f"{kind}: alt text {alt!r} has no numbers"
        keys, words = _clickables(at)
        for key in keys:
            assert words.get(key, "").strip(), f"{kind}: the clickable picture {key!r} has no words"
            if kind in NUMBERED:
                assert re.search(r"\d", words[key]), f"{kind}: {key}'s words {words[key]!r} have no numbers"


class _Tables(HTMLParser):
    """Every <table class="sr-only"> in some HTML -> (caption, rows of data-cell texts)."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell, self._caption, self._on = [], None, False, False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._on = dict(attrs).get("class") == "sr-only"
            if self._on:
                self.tables.append(["", []])
        elif self._on and tag == "caption":
            self._caption = True
        elif self._on and tag == "tr":
            self.tables[-1][1].append([])
        elif self._on and tag == "td":
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "caption":
            self._caption = False
        elif tag == "td" and self._cell is not None:
            self.tables[-1][1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._caption:
            self.tables[-1][0] += data
        elif self._cell is not None:
            self._cell += data


def _tables(at) -> list[tuple[str, list[list[str]]]]:
    p = _Tables()
    for m in at.markdown:
        p.feed(m.value)
    return [(caption, [r for r in rows if any(r)]) for caption, rows in p.tables]  # not the header row


def test_the_pixel_numbers_are_there_as_text_for_a_screen_reader():
    at = app(step="1")
    small = fit_to_input(load_image(samples.sample_path(DEFAULT_SAMPLE)), (32, 32))
    i = j = 16  # the chosen pixel starts in the middle (row 17, column 17)
    patch = small[i - 2:i + 3, j - 2:j + 3]  # the 5x5 pixels around it
    tables = {caption.split(" numbers")[0]: rows for caption, rows in _tables(at)}
    for c, name in enumerate(("Red", "Green", "Blue")):
        assert np.array_equal(np.array(tables[name], dtype=int), patch[..., c]), name


def test_the_pooling_example_and_its_window_are_there_as_text():
    at = app(step="4")
    tables = dict(_tables(at))
    assert np.array_equal(np.array(tables["The 4 by 4 input"], dtype=float), EXAMPLE)
    assert np.array_equal(np.array(tables["The 2 by 2 result"], dtype=float), [[20, 30], [112, 37]])
    window = next(rows for caption, rows in tables.items() if caption.startswith("The window of map 1"))
    kept = re.search(r"max\(([^)]*)\) = \*\*([-\d.]+)\*\*", " ".join(m.value for m in at.markdown))
    assert [float(v) for row in window for v in row] == [float(v) for v in kept.group(1).split(", ")]


def test_the_arithmetic_of_a_convolution_is_there_as_text():
    at = app(step="2")
    captions = [caption for caption, _ in _tables(at)]
    for name in ("Red", "Green", "Blue"):
        rows = dict(_tables(at))[f"{name}: window × filter = product"]
        assert len(rows) == 3 and all(len(r) == 3 for r in rows)
        for cell in (v for r in rows for v in r):  # "x × w = p", and p is x times w as written
            x, w, p = (float(v) for v in re.fullmatch(r"(\S+) × (\S+) = (\S+)", cell).groups())
            assert p == pytest.approx(x * w, abs=0.011)
    assert len(captions) == len(set(captions))
