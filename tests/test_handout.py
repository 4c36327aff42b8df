"""The worksheet PDF, read back with poppler's pdftotext: the picture's numbers, recomputed here from the
trace at the places the sheet chose, are all printed on it, and the key is on its own last page.

pdftotext and pdffonts come with Debian's poppler-utils; without them these tests skip with the reason,
except in CI (tests/torchref.py's rule), where they fail.
"""

import re
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest

from cnnviz import handout as H
from cnnviz.images import fit_to_input, load_image
from cnnviz.model import load_model, tiny_vgg, trace
from cnnviz.samples import sample_path
from tests.torchref import unavailable


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        unavailable(f"{tool} is not installed (apt-get install -y poppler-utils)", "the worksheet PDF tests")
    return path


def pdf_text(pdf: bytes, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run([poppler("pdftotext"), *pages, "-", "-"], input=pdf, capture_output=True,
                          check=True, timeout=60).stdout.decode()


def f1(x):
    return H.fmt(x, 1)


def f2(x):
    return H.fmt(x, 2)


MODELS = {"shipped": load_model,
          "tiny": lambda: tiny_vgg(("cat", "dog", "bird", "fish"), channels=(4, 4, 8, 8), input_size=(16, 16), seed=5)}


@pytest.fixture(scope="module", params=[("shipped", "smiley"), ("shipped", "cat-chelsea"), ("tiny", "rocket")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def sheet(request):
    model_name, picture = request.param
    model = MODELS[model_name]()
    image = load_image(sample_path(picture))
    pdf = H.worksheet_pdf(model, image, picture)
    return model, image, picture, H.worksheet(model, image, picture), pdf


def words(text: str) -> Counter:
    """The numbers (and percentages) in the text, as written: pdftotext may run a number into a word."""
    return Counter(re.findall(r"-?\d+(?:\.\d+)?%?", text))


def assert_printed(expected, text):
    """Every string of `expected` is a word of `text`, as often as it is expected."""
    have = words(text)
    need = Counter(expected)
    missing = {w: n for w, n in need.items() if have[w] < n}
    assert not missing, missing


def test_three_a4_pages_with_the_key_alone_on_the_last(sheet):
    *_, pdf = sheet
    assert pdf.startswith(b"%PDF")
    info = subprocess.run([poppler("pdfinfo"), "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert re.search(r"Pages: +3\n", info) and "595.276 x 841.89 pts (A4)" in info
    assert "Answer key" in pdf_text(pdf, 3)
    assert "Answer key" not in pdf_text(pdf, 1) + pdf_text(pdf, 2)


def test_the_text_is_text_in_truetype_fonts(sheet):
    *_, pdf = sheet
    fonts = subprocess.run([poppler("pdffonts"), "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "TrueType" in fonts and "Type 3" not in fonts


def test_the_pixel_window_is_the_pictures(sheet):
    model, image, _, ws, pdf = sheet
    small = fit_to_input(image, model.input_size)
    px = ws.pixels
    window = small[px.top:px.top + 3, px.left:px.left + 3]
    np.testing.assert_array_equal(px.pixels, window)
    assert_printed([str(int(v)) for v in window.ravel()], pdf_text(pdf, 1))
    r, g, b = (int(v) for v in small[px.row, px.col])
    assert f"red {r}, green {g}, blue {b}" in " ".join(pdf_text(pdf, 3).split())


def test_the_convolution_is_the_networks_filter_on_the_picture(sheet):
    model, image, _, ws, pdf = sheet
    stages = trace(model, image)
    cv = ws.conv
    k = next(n for n, s in enumerate(stages) if s.name == cv.layer)
    layer = stages[k].layer
    x = stages[k - 1].output.astype(np.float64)
    p = layer.options["padding"]
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    w = layer.params["weight"][cv.filter].astype(np.float64)
    win = xp[:, cv.row:cv.row + w.shape[1], cv.col:cv.col + w.shape[2]]
    np.testing.assert_array_equal(cv.window, np.round(win, 1))
    np.testing.assert_array_equal(cv.weight, np.round(w, 1))
    assert_printed([f1(v) for v in win.ravel()] + [f1(v) for v in w.ravel()], pdf_text(pdf, 1))
    # The key: products and sums of the printed numbers; the network's own value from the trace.
    wr, xr, b = np.round(w, 1), np.round(win, 1), round(float(layer.params["bias"][cv.filter]), 1)
    products = xr * wr
    total = float(products.sum() + b)
    key = pdf_text(pdf, 3)
    assert_printed([f2(v) for v in products.ravel()] + [f2(v) for v in products.sum(axis=(1, 2))]
                   + [f2(total), f2(stages[k].output[cv.filter, cv.row, cv.col])], key)
    assert cv.total == pytest.approx(total, abs=1e-9)


def test_the_relu_row_and_the_pooling_grid_are_the_maps(sheet):
    model, image, _, ws, pdf = sheet
    stages = {s.name: s for s in trace(model, image)}
    a = ws.activation
    before = stages[a.source].output[a.map, a.row, a.col:a.col + H.ROW]
    after = stages[a.layer].output[a.map, a.row, a.col:a.col + H.ROW]
    np.testing.assert_allclose(after, np.maximum(before, 0))
    sheet_text, key = pdf_text(pdf, 2), pdf_text(pdf, 3)
    assert_printed([f2(v) for v in before], sheet_text)
    assert_printed([f2(v) for v in after], key)

    pl = ws.pool
    s = pl.size
    grid = stages[pl.source].output[pl.map, pl.top:pl.top + 2 * s, pl.left:pl.left + 2 * s]
    kept = stages[pl.layer].output[pl.map, pl.top // s:pl.top // s + 2, pl.left // s:pl.left // s + 2]
    np.testing.assert_array_equal(kept, grid.reshape(2, s, 2, s).max(axis=(1, 3)))
    assert_printed([f2(v) for v in grid.ravel()], sheet_text)
    assert_printed([f2(v) for v in kept.ravel()], key)


def test_softmax_of_the_three_highest_scores(sheet):
    model, image, _, ws, pdf = sheet
    stages = trace(model, image)
    z = next(s for s in stages if s.kind == "dense").output.astype(np.float64)
    top = np.argsort(-z)[:3]
    scores = np.round(z[top], 1)
    e = np.exp(scores - scores.max())
    shares = e / e.sum()
    p = stages[-1].output
    sheet_text, key = pdf_text(pdf, 2), pdf_text(pdf, 3)
    assert all(model.classes[k] in sheet_text.split() for k in top)
    assert_printed([f1(v) for v in scores], sheet_text)
    assert_printed([f"{v:.0%}" for v in shares] + [f"{e.sum():.3f}"] + [f"{p[k]:.0%}" for k in top], key)


def test_the_same_picture_gives_the_same_bytes():
    model = MODELS["tiny"]()
    image = load_image(sample_path("smiley"))
    assert H.worksheet_pdf(model, image, "smiley") == H.worksheet_pdf(model, image, "smiley")


def test_the_command_line_writes_a_sheet(tmp_path):
    out = tmp_path / "sheet.pdf"
    assert H.main(["--sample", "checkerboard", "--out", str(out)]) == 0
    assert "How a network sees a picture" in pdf_text(out.read_bytes(), 1)
    with pytest.raises(SystemExit):
        H.main(["--sample", "no-such-picture", "--out", str(out)])
