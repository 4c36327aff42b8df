"""What students throw at the app, in AppTest: odd uploads, odd numbers, odd links, and two sessions
side by side. Every odd thing ends as the picture or as one plain message; never an exception.

load_image itself is tested file by file (and fuzzed) in tests/test_images.py; this file checks
the whole app around it: the message on the page, the previous picture, the next upload.
"""

import io
import re

import numpy as np
import pytest
from PIL import Image

from cnnviz import images
from cnnviz.images import load_image
from cnnviz.model import DEFAULT_MODEL_PATH, load_model
from cnnviz.ui.state import DEFAULT_SAMPLE, STEPS, default_model
from tests.apptest import AppTest, app, banner, header
from tests.test_images import png_header

MESSAGES = (images.NOT_A_PICTURE, images.EMPTY, images.BROKEN, images.TOO_MANY_PIXELS, images.TOO_BIG_FILE,
            images.NO_PIXELS, images.TOO_LONG_AND_THIN, images.TOO_HEAVY)


def click(at, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def colourful(w=24, h=16) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * 7 + y * 13) % 256],
                                    -1).astype(np.uint8))


# ---------------------------------------------------------------- the files


def _good_files() -> dict:
    """name -> (bytes, expected shape): every one of these must become the picture."""
    grey16 = Image.fromarray(np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32))
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    rgba = Image.fromarray(np.dstack([np.asarray(colourful()), np.full((16, 24), 100, np.uint8)]), "RGBA")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40 wide, shown 40 tall
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    y, x = np.mgrid[0:4000, 0:6000]
    photo = Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8))
    return {
        "grey-16-bit.png": (encode(grey16, "PNG"), (32, 32, 3)),
        "cmyk.jpg": (encode(Image.new("CMYK", (24, 16), (0, 255, 255, 0)), "JPEG"), (16, 24, 3)),
        "palette-alpha.png": (encode(palette, "PNG", transparency=0), (2, 2, 3)),
        "rgba.png": (encode(rgba, "PNG"), (16, 24, 3)),
        "exif-rotated.jpg": (encode(Image.new("RGB", (40, 20), (0, 128, 255)), "JPEG", exif=exif), (40, 20, 3)),
        "animated.gif": (encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100), (8, 8, 3)),
        "picture.webp": (encode(colourful(), "WEBP", lossless=True), (16, 24, 3)),
        "picture.bmp": (encode(colourful(), "BMP"), (16, 24, 3)),
        "picture.tiff": (encode(colourful(), "TIFF"), (16, 24, 3)),
        "tiny-1x1.png": (encode(Image.new("RGB", (1, 1), (9, 99, 199)), "PNG"), (1, 1, 3)),
        "strip-1x1024.png": (encode(Image.new("RGB", (1, 1024), (30, 60, 90)), "PNG"), (1024, 1, 3)),
        "strip-1024x1.png": (encode(Image.new("RGB", (1024, 1), (90, 60, 30)), "PNG"), (1, 1024, 3)),
        "photo-6000x4000.jpg": (encode(photo, "JPEG", quality=85), None),  # decoded at reduced size
    }


def _bad_files() -> dict:
    """name -> (bytes, the message expected on the page)."""
    jpeg = encode(colourful(64, 64), "JPEG")
    png = encode(colourful(64, 64), "PNG")
    return {
        "homework.png": (b"Hello, this is my homework.\n", images.NOT_A_PICTURE),
        "empty.png": (b"", images.EMPTY),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], images.BROKEN),
        "truncated.png": (png[: len(png) // 2], images.BROKEN),
        "bomb.png": (png_header(20_000, 20_000), images.TOO_MANY_PIXELS),
        "drawing.png": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><script>alert(1)</script>'
                        b'<rect width="9" height="9"/></svg>', images.NOT_A_PICTURE),
        "page.jpg": (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", images.NOT_A_PICTURE),
        "script.gif": (b"#!/bin/sh\nrm -rf ~\n", images.NOT_A_PICTURE),
        "random.webp": (np.random.default_rng(1).bytes(5000), images.NOT_A_PICTURE),
        "strip-1x5000.png": (encode(Image.new("RGB", (1, 5000), (30, 60, 90)), "PNG"), images.TOO_LONG_AND_THIN),
        "strip-5000x1.png": (encode(Image.new("RGB", (5000, 1), (90, 60, 30)), "PNG"), images.TOO_LONG_AND_THIN),
    }


GOOD, BAD = _good_files(), _bad_files()


@pytest.fixture(scope="module")
def uploading():
    """One session on step 1 with "Upload" chosen; the tests below take turns uploading into it."""
    at = app()
    at.segmented_control(key="picture_source").set_value("Upload").run()
    upload(at, "start.png", encode(colourful(), "PNG"))
    assert not at.exception and not at.error
    return at


def upload(at, name: str, data: bytes) -> AppTest:
    return at.file_uploader(key="uploader").upload(name, data, "application/octet-stream").run()


@pytest.mark.parametrize("name", list(GOOD))
def test_every_odd_but_good_upload_becomes_the_picture(uploading, name):
    at = uploading
    data, shape = GOOD[name]
    upload(at, name, data)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["source"] == "upload" and at.session_state["upload_name"] == name
    got = at.session_state["upload"]
    np.testing.assert_array_equal(got, load_image(data))
    if shape:
        assert got.shape == shape
    assert header(at) == "1. Pixels" and "Prediction" in banner(at)


@pytest.mark.parametrize("name", list(BAD))
def test_every_bad_upload_gives_one_plain_message_and_the_next_upload_works(uploading, name):
    at = uploading
    previous = np.array(at.session_state["upload"])
    data, message = BAD[name]
    upload(at, name, data)
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [message]
    assert message in MESSAGES and "Error" not in message and "PIL" not in message
    np.testing.assert_array_equal(at.session_state["upload"], previous)  # the previous picture stays
    assert header(at) == "1. Pixels" and "Prediction" in banner(at)  # and the page still works

    nxt = np.full((12, 20, 3), (len(name) * 9 % 256, 120, 30), np.uint8)
    upload(at, "next.png", encode(Image.fromarray(nxt), "PNG"))
    assert not at.exception and not at.error
    np.testing.assert_array_equal(at.session_state["upload"], nxt)


@pytest.mark.parametrize("name", ["tiny-1x1.png", "strip-1x1024.png", "grey-16-bit.png"])
def test_odd_pictures_walk_all_seven_steps(name):
    at = app()
    at.segmented_control(key="picture_source").set_value("Upload").run()
    upload(at, name, GOOD[name][0])
    assert not at.exception and not at.error
    for k in range(1, len(STEPS) + 1):
        assert not at.exception, f"step {k}: {at.exception}"
        assert header(at) == f"{k}. {STEPS[k - 1]}"
        p = at.session_state["upload"]
        assert p.shape == GOOD[name][1]
        if k < len(STEPS):
            click(at, "Next")


# ---------------------------------------------------------------- numbers


def _answer(at) -> str:
    """The playground's result as a student reads it: its text, without the HTML tags and the pictures."""
    return re.sub(r"<[^>]*>", " ", next(m.value for m in at.markdown if "would say" in m.value))


@pytest.mark.parametrize("cell, note", [
    (float("inf"), "clipped"), (float("-inf"), "clipped"), (1e30, "clipped"), (-1e30, "clipped"), ("1e400", "clipped"),
    ("abc", "read as 0"), ("", "read as 0"), (None, "read as 0"), (float("nan"), "read as 0"), ([1, 2], "read as 0"),
])
def test_odd_kernel_cells_are_fixed_with_a_note(cell, note):
    at = app(step="2")
    at.toggle(key="pg_separate").set_value(True).run()  # a grid per colour, so the note names the colour
    version = at.session_state["pg_version"]
    at.session_state[f"pg_G_{version}"] = {"edited_rows": {2: {"1": cell}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    notes = [w.value for w in at.warning]
    assert len(notes) == 1 and notes[0].startswith("Green: ") and note in notes[0]
    answer = _answer(at)
    assert "nan" not in answer.lower() and "inf" not in answer.lower()
    fmap = re.search(r"Its numbers run from \S+ to \S+", answer).group(0)
    assert "nan" not in fmap and "inf" not in fmap
    next(b for b in at.button if b.label.startswith("Put this filter")).click().run()
    kernel, bias = at.session_state["edits"][("conv1_1", 0)]
    assert np.all(np.isfinite(kernel)) and np.abs(kernel).max() <= 100 and np.isfinite(bias)
    assert "nan" not in banner(at).lower()


@pytest.mark.parametrize("value, shown", [(1e30, 100.0), (-1e30, -100.0), (250.0, 100.0), (-100.5, -100.0)])
def test_a_huge_bias_is_clipped_with_a_note(value, shown):
    at = app(step="2")
    at.number_input(key="pg_bias_0").set_value(value).run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["Bias: Numbers beyond ±100 were clipped to ±100."]
    next(b for b in at.button if b.label.startswith("Put this filter")).click().run()
    assert at.session_state["edits"][("conv1_1", 0)][1] == shown


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_bias_never_reaches_the_network(value):
    """Streamlit's number_input itself turns a non-finite number back into its start value (and a
    browser only sends numbers, never text), so there is nothing to clip and no note."""
    at = app(step="2")
    at.number_input(key="pg_bias_0").set_value(value).run()
    assert not at.exception and not at.warning
    assert np.isfinite(at.number_input(key="pg_bias_0").value)
    next(b for b in at.button if b.label.startswith("Put this filter")).click().run()
    assert np.isfinite(at.session_state["edits"][("conv1_1", 0)][1])


@pytest.mark.parametrize("edit", [
    {"edited_rows": {99: {"0": 1.0}}, "added_rows": [], "deleted_rows": []},
    {"edited_rows": {0: {"7": 1.0}}, "added_rows": [], "deleted_rows": []},
    {"edited_rows": {"x": {"0": 1.0}}, "added_rows": [], "deleted_rows": []},
    {"edited_rows": {}, "added_rows": [{"0": 5.0}], "deleted_rows": []},
    {"edited_rows": {}, "added_rows": [], "deleted_rows": [0, 1]},
    {"edited_rows": [1, 2]},
    "garbage",
], ids=["row-99", "column-7", "row-x", "added-row", "deleted-rows", "list", "text"])
def test_an_edit_state_no_browser_sends_restarts_the_grids_with_a_note(edit):
    at = app(step="2")
    at.session_state["pg_all_0"] = edit
    at.run()
    assert not at.exception
    assert any("started again" in w.value for w in at.warning)
    assert "would say" in _answer(at)
    at.run()  # and the fresh grids work on the next run
    assert not at.exception and not at.warning


# ---------------------------------------------------------------- links


@pytest.mark.parametrize("query, step, sample", [
    ({"sample": "<script>alert(1)</script>"}, 1, DEFAULT_SAMPLE),
    ({"sample": "x" * 100_000, "step": "2"}, 2, DEFAULT_SAMPLE),
    ({"sample": "smiley" + "\x00" * 10}, 1, DEFAULT_SAMPLE),
    ({"sample": "../assets/samples/smiley"}, 1, DEFAULT_SAMPLE),
    ({"sample": ""}, 1, DEFAULT_SAMPLE),
    ({"sample": ["smiley", "<img src=x onerror=alert(1)>"]}, 1, DEFAULT_SAMPLE),  # repeated: the last counts
    ({"sample": ["<b>", "smiley"], "step": ["7", "3"]}, 3, "smiley"),
    ({"step": ["2", "abc"]}, 1, DEFAULT_SAMPLE),
    ({"step": "2.5"}, 1, DEFAULT_SAMPLE),
    ({"step": "0"}, 1, DEFAULT_SAMPLE),
    ({"step": ""}, 1, DEFAULT_SAMPLE),
    ({"step": "1e3"}, 1, DEFAULT_SAMPLE),
    ({"step": " 5 "}, 5, DEFAULT_SAMPLE),
    ({"foo": "<script>", "utm_source": "x" * 10_000}, 1, DEFAULT_SAMPLE),
])
def test_odd_links_fall_back_to_defaults_and_are_rewritten(query, step, sample):
    at = app(**query)
    assert not at.exception
    assert header(at) == f"{step}. {STEPS[step - 1]}"
    assert at.session_state["sample"] == sample
    assert at.query_params == {"step": str(step), "sample": sample}  # the address bar now holds sane values


# ---------------------------------------------------------------- two students at once


def _bitwise(model) -> dict:
    return {(la.name, k): v.tobytes() for la in model.layers for k, v in la.params.items()}


def test_two_sessions_side_by_side_share_nothing_and_the_default_model_stays_untouched():
    shared = default_model()
    on_disk = load_model(DEFAULT_MODEL_PATH)
    a, b = app(step="3"), app(step="3")
    plain_banner = banner(b)

    # A: tanh everywhere, an edited filter, an uploaded picture.
    click(a, "Use tanh in my network")
    assert a.session_state["activation"] == "tanh"
    click(a, "Previous")
    a.session_state["pg_all_0"] = {"edited_rows": {1: {"1": 60.0}}, "added_rows": [], "deleted_rows": []}
    a.run()
    next(x for x in a.button if x.label.startswith("Put this filter")).click().run()
    a.segmented_control(key="picture_source").set_value("Upload").run()
    upload(a, "red.png", encode(Image.new("RGB", (32, 32), (255, 0, 0)), "PNG"))
    assert not a.exception and "with your edits" in banner(a)

    # B, run again after all of that, sees none of it.
    b.run()
    assert not b.exception
    assert banner(b) == plain_banner
    assert "activation" not in b.session_state or b.session_state["activation"] == "relu"
    assert "edits" not in b.session_state or not b.session_state["edits"]
    assert "upload" not in b.session_state and b.session_state["source"] == "sample"
    click(b, "Previous")
    assert header(b) == "2. Convolution" and not b.warning

    # A meanwhile keeps its own state.
    a.run()
    assert "with your edits" in banner(a) and a.session_state["activation"] == "tanh"

    # The cached default is the same object, bitwise unchanged and still read-only.
    assert default_model() is shared
    assert _bitwise(shared) == _bitwise(on_disk)
    assert (shared.classes, shared.input_size, shared.preprocessing, shared.meta) == \
        (on_disk.classes, on_disk.input_size, on_disk.preprocessing, on_disk.meta)
    assert [(la.name, la.kind, la.options) for la in shared.layers] == \
        [(la.name, la.kind, la.options) for la in on_disk.layers]
    for la in shared.layers:
        for v in la.params.values():
            assert not v.flags.writeable
            with pytest.raises(ValueError):
                v[(0,) * v.ndim] = 1.0
