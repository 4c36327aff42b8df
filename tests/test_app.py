"""The whole app in AppTest: walking the steps, pictures in and out, the filter playground,
URL state, and that one session's edits never touch the shared default model."""

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnviz import render
from cnnviz.filters import PRESETS
from cnnviz.images import load_image
from cnnviz.model import DEFAULT_MODEL_PATH, load_model, trace
from cnnviz.samples import sample_path
from cnnviz.ui.state import DEFAULT_SAMPLE, STEPS, default_model
from tests.apptest import app, banner, header


def _png(rgb: np.ndarray, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()


def test_next_and_previous_walk_every_step_and_each_shows_pictures():
    at = app()
    assert not at.exception
    for k in range(1, len(STEPS) + 1):
        assert header(at) == f"{k}. {STEPS[k - 1]}"
        assert len(at.image) >= 2, f"step {k} shows no pictures"
        assert at.query_params["step"] in (str(k), [str(k)])
        if k < len(STEPS):
            next(b for b in at.button if b.label == "Next").click().run()
            assert not at.exception
    for k in range(len(STEPS), 1, -1):
        next(b for b in at.button if b.label == "Previous").click().run()
        assert header(at) == f"{k - 1}. {STEPS[k - 2]}"
    assert not at.exception


def test_prediction_banner_matches_the_core():
    at = app(sample="smiley")
    m = load_model()
    pic = np.asarray(Image.open(Path(DEFAULT_MODEL_PATH).parents[1] / "samples" / "smiley.png").convert("RGB"))
    p = trace(m, pic)[-1].output
    assert m.classes[int(p.argmax())] in banner(at)


@pytest.mark.parametrize("query, step, sample", [
    ({"step": "99"}, 1, "cat-chelsea"),
    ({"step": "-3"}, 1, "cat-chelsea"),
    ({"step": "<script>alert(1)</script>"}, 1, "cat-chelsea"),
    ({"step": "9" * 400}, 1, "cat-chelsea"),
    ({"step": "4", "sample": "../../etc/passwd"}, 4, "cat-chelsea"),
    ({"step": "3", "sample": "checkerboard"}, 3, "checkerboard"),
])
def test_odd_links_fall_back_to_defaults(query, step, sample):
    at = app(**query)
    assert not at.exception
    assert header(at) == f"{step}. {STEPS[step - 1]}"
    assert at.session_state["sample"] == sample


def test_upload_a_picture_then_a_bad_file_keeps_the_good_picture():
    at = app()
    at.segmented_control(key="picture_source").set_value("Upload").run()
    stripes = np.zeros((40, 60, 3), np.uint8)
    stripes[:, ::4] = (250, 40, 40)
    at.file_uploader(key="uploader").upload("stripes.png", _png(stripes), "image/png").run()
    assert not at.exception and not at.error
    assert at.session_state["source"] == "upload"
    np.testing.assert_array_equal(at.session_state["upload"], stripes)

    at.file_uploader(key="uploader").upload("notes.png", b"<html><script>x</script></html>", "image/png").run()
    assert not at.exception
    assert len(at.error) == 1 and "picture" in at.error[0].value.lower()
    np.testing.assert_array_equal(at.session_state["upload"], stripes)  # the previous picture stays
    assert header(at) == "1. Pixels"

    # and the next good upload works again
    at.file_uploader(key="uploader").upload("big.jpg", _png(np.full((300, 200, 3), 90, np.uint8), "JPEG"),
                                            "image/jpeg").run()
    assert not at.exception and not at.error
    assert at.session_state["upload"].shape == (300, 200, 3)


def test_webcam_photo_becomes_the_picture():
    at = app()
    at.segmented_control(key="picture_source").set_value("Webcam").run()
    photo = np.full((48, 64, 3), (20, 120, 200), np.uint8)
    at.camera_input(key="camera").set_value(("photo.jpg", _png(photo, "JPEG"), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert at.session_state["upload_name"] == "webcam photo"
    assert at.session_state["upload"].shape == (48, 64, 3)


def _playground_answer(at) -> str:
    """The playground's result as a student reads it: its text, without the HTML tags and the pictures."""
    return re.sub(r"<[^>]*>", " ", next(m.value for m in at.markdown if "would say" in m.value))


def _map_range(at) -> str:
    return re.search(r"Its numbers run from \S+ to \S+", _playground_answer(at)).group(0)


def _params(model) -> dict:
    return {(la.name, k): np.array(v) for la in model.layers for k, v in la.params.items()}


def test_filter_playground_changes_the_map_and_the_prediction_and_leaves_the_default_alone():
    trained = _params(load_model())  # read from disk before any session runs
    shared = default_model()  # the object the app hands every session in this process (st.cache_resource)
    at = app(step="2")
    answer = _playground_answer(at)
    map_range = _map_range(at)
    # a big vertical-edge filter typed into the grid (one grid: the same numbers for all three colours)
    at.session_state["pg_all_0"] = {"edited_rows": {r: {"0": 30.0, "2": -30.0} for r in range(3)},
                                    "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    assert _playground_answer(at) != answer
    assert _map_range(at) != map_range

    before = banner(at)
    next(b for b in at.button if b.label.startswith("Put this filter into the network")).click().run()
    assert not at.exception
    assert "with your edits" in banner(at) and banner(at) != before
    edits = at.session_state["edits"]
    kernel, bias = edits[("conv1_1", 0)]
    assert kernel.shape == (3, 3, 3) and kernel[0, 0, 0] == 30.0 and kernel[0, 0, 2] == -30.0

    # the shared default model is untouched, in memory (the very object every session is given) and on disk
    assert default_model() is shared
    for where, model in (("in memory", shared), ("on disk", load_model())):
        now = _params(model)
        assert now.keys() == trained.keys(), where
        for key, v in now.items():
            np.testing.assert_array_equal(v, trained[key], err_msg=f"{where}: {key}")

    next(b for b in at.button if b.label.startswith("Reset the network")).click().run()
    assert "with your edits" not in banner(at)


def test_bad_numbers_in_the_filter_grid_are_fixed_with_a_note():
    at = app(step="2")
    at.session_state["pg_all_0"] = {"edited_rows": {0: {"0": None, "1": float("nan")}, 1: {"1": 1e30}},
                                    "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    notes = " ".join(w.value for w in at.warning)
    assert "read as 0" in notes and "clipped" in notes
    assert "nan" not in _playground_answer(at).lower()


def test_separate_colour_grids_start_from_the_numbers_typed_so_far():
    at = app(step="2")
    at.session_state["pg_all_0"] = {"edited_rows": {1: {"1": 7.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    one_grid = at.session_state["pg_trial"][0]
    assert one_grid.shape == (3, 3, 3) and np.all(one_grid[:, 1, 1] == 7.0)
    at.toggle(key="pg_separate").set_value(True).run()
    assert not at.exception
    version = at.session_state["pg_version"]
    np.testing.assert_array_equal(at.session_state["pg_trial"][0], one_grid)  # nothing typed is lost
    # now only the green grid changes
    at.session_state[f"pg_G_{version}"] = {"edited_rows": {0: {"0": -4.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    kernel = at.session_state["pg_trial"][0]
    assert kernel[1, 0, 0] == -4.0 and kernel[0, 0, 0] == one_grid[0, 0, 0] and kernel[2, 1, 1] == 7.0
    next(b for b in at.button if b.label.startswith("Put this filter")).click().run()
    np.testing.assert_array_equal(at.session_state["edits"][("conv1_1", 0)][0], kernel)
    # back to one grid: it starts again from the preset
    at.toggle(key="pg_separate").set_value(False).run()
    assert not at.exception
    assert at.session_state["pg_trial"][0][0, 1, 1] == PRESETS["Vertical edge"][1, 1]


def test_the_networks_own_filter_shows_a_grid_per_colour():
    at = app(step="2")
    at.selectbox(key="pg_slot").set_value(3).run()
    at.selectbox(key="pg_preset").set_value("The network's own filter").run()
    assert not at.exception
    w = load_model().layer("conv1_1").params["weight"][3]
    np.testing.assert_allclose(at.session_state["pg_trial"][0], w, rtol=1e-6)
    assert any("each colour has its own grid" in c.value for c in at.caption)


def _playground_pictures(at) -> dict:
    """The playground's pictures (written into its one element as PNG data URLs): caption -> uint8 (H, W, 3)."""
    box = next(m.value for m in at.markdown if "would say" in m.value)
    found = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"', box)
    return {html.unescape(alt): np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
            for data, alt in found}


def _numbers(pattern: str, text: str) -> list[float]:
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return [float(g) for g in m.groups()]


def test_a_preset_filter_matches_the_core_convolution():
    at = app(step="2")
    at.selectbox(key="pg_preset").set_value("Sobel x").run()
    assert not at.exception
    kernel, bias = at.session_state["pg_trial"]
    np.testing.assert_array_equal(kernel, np.stack([PRESETS["Sobel x"]] * 3))  # the same grid for R, G and B
    assert bias == 0.0

    # the network with Sobel x as its filter 1, traced by the core on the same picture
    m = load_model().with_filter("conv1_1", 0, np.stack([PRESETS["Sobel x"]] * 3), 0.0)
    stages = trace(m, load_image(sample_path(DEFAULT_SAMPLE)))
    fmap, p = stages[1].output[0], stages[-1].output  # conv1_1's map 1 (H, W), the probabilities (K,)
    assert stages[1].name == "conv1_1"
    shown = _playground_pictures(at)["Your filter's feature map"]
    assert shown.shape == fmap.shape + (3,)
    np.testing.assert_allclose(shown, np.asarray(render.diverging(fmap)), atol=1)  # atol: a colour level
    answer = " ".join(_playground_answer(at).split())
    lo, hi = _numbers(r"Its numbers run from (\S+) to (\S+)\.", answer)
    assert lo == pytest.approx(fmap.min(), abs=0.005) and hi == pytest.approx(fmap.max(), abs=0.005)
    top = int(p.argmax())
    (shown,) = _numbers(rf"would say: {re.escape(m.classes[top])} \((\d+\.\d)%\)", answer)
    assert shown == pytest.approx(100 * p[top], abs=0.05 + 1e-6)


def test_two_sessions_do_not_share_edits_or_pictures():
    a, b = app(step="2"), app(step="2")
    a.session_state["pg_all_0"] = {"edited_rows": {1: {"1": 50.0}}, "added_rows": [], "deleted_rows": []}
    a.run()
    next(x for x in a.button if x.label.startswith("Put this filter")).click().run()
    a.segmented_control(key="picture_source").set_value("Upload").run()
    a.file_uploader(key="uploader").upload("red.png", _png(np.full((32, 32, 3), (255, 0, 0), np.uint8)),
                                          "image/png").run()
    b.run()
    assert "with your edits" in banner(a)
    assert "with your edits" not in banner(b)
    assert "edits" not in b.session_state or not b.session_state["edits"]
    assert "upload" not in b.session_state
