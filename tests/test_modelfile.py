"""The "Your own model file" page in AppTest: a good file is described and walked through; every
hostile file gives one plain message and changes nothing else in the session."""

import html
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.util import calc_hash

from cnnviz import model as M
from cnnviz.ui.state import STEPS
from tests.apptest import APP, AppTest, banner, header

FRUIT = ["apple", "banana", "cherry"]


def open_page(at: AppTest, url_path: str) -> AppTest:
    """Run the page registered under `url_path`, as a click in the navigation would.

    AppTest.switch_page only knows file pages; pages made from functions are found by the hash of
    their url_path (what st.Page uses). The request is cleared afterwards, so later runs stay on the
    page the app itself ends on (after an st.switch_page, the walkthrough).
    """
    at._page_hash = calc_hash(url_path)
    at.run()
    at._page_hash = ""
    return at


def model_bytes(model=None, compressed=False) -> bytes:
    buf = io.BytesIO()
    M.save_model(model or M.tiny_vgg(FRUIT, (4, 4, 8, 8), input_size=(16, 16), seed=1), buf)
    if compressed:
        arrays = dict(np.load(io.BytesIO(buf.getvalue())))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def spoiled(change=None, **replace) -> bytes:
    """A good model file with its description passed through change(arch) and/or arrays replaced."""
    arrays = dict(np.load(io.BytesIO(model_bytes())))
    if change:
        arch = json.loads(str(arrays["architecture"]))
        change(arch)
        arrays["architecture"] = np.array(json.dumps(arch))
    arrays.update(replace)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    return at.file_uploader(key="mf_upload").upload(name, data, "application/octet-stream").run()


def test_the_page_describes_a_good_file_and_offers_the_shipped_one():
    at = open_page(AppTest.from_file(APP, default_timeout=60).run(), "model")
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Your own model file"]
    assert [b.label for b in at.get("download_button")] == ["Download the app's model file"]
    m = M.tiny_vgg(FRUIT, (4, 4, 8, 8), input_size=(16, 16), seed=1)
    meta = {"dataset": "my fruit bowl", "test_accuracy": 0.875}
    m = M.Model(m.layers, m.classes, m.input_size, m.preprocessing, meta)
    upload(at, "fruit.npz", model_bytes(m))
    assert not at.exception and not at.error
    facts = " ".join(md.value for md in at.markdown)
    assert "apple, banana, cherry" in facts and "16x16" in facts and "87.5%" in facts and "my fruit bowl" in facts
    table = at.dataframe[0].value
    assert list(table["layer"]) == [la.name for la in m.layers]
    assert list(table["output for one picture"])[:2] == ["4x16x16", "4x16x16"]
    assert "own_model" not in at.session_state  # nothing changes until the button


def test_walk_through_an_uploaded_network_then_go_back():
    at = open_page(AppTest.from_file(APP, default_timeout=60).run(), "model")
    upload(at, "my ![x](http://example.com/a.png) net.npz", model_bytes(compressed=True))
    at.button(key="mf_use").click().run()
    assert not at.exception
    assert header(at) == "1. Pixels"  # st.switch_page went to the walkthrough
    text = banner(at)
    assert any(f"Prediction: {c}" in text for c in FRUIT), text
    assert "network: my x http example.com a.png net" in text and "](" not in text
    assert "Softmax" in STEPS
    for k in range(2, len(STEPS) + 1):
        next(b for b in at.button if b.label == "Next").click().run()
        assert not at.exception, f"step {k}: {at.exception}"
        assert header(at) == f"{k}. {STEPS[k - 1]}"
        if STEPS[k - 1] == "Softmax":
            assert any(c in next(s.value for s in at.success) for c in FRUIT)  # softmax's answer
    next(b for b in at.button if b.label == "Back to the shipped network").click().run()
    assert not at.exception and "network:" not in banner(at)


def _hostile_files():
    trap = np.array([{"x": 1}], dtype=object)
    pickled = io.BytesIO()
    np.savez(pickled, architecture=np.array("{}"), w=trap, allow_pickle=True)
    plain_npy = io.BytesIO()
    np.save(plain_npy, np.zeros((3, 3), np.float32))
    bomb_header = io.BytesIO()
    with zipfile.ZipFile(bomb_header, "w") as z:
        h = io.BytesIO()
        np.lib.format.write_array_header_1_0(h, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
        z.writestr("conv1_1.weight.npy", h.getvalue())
    compressed_bomb = io.BytesIO()
    np.savez_compressed(compressed_bomb, architecture=np.array("{}"), x=np.zeros(6_000_000, np.float32))
    nan_w = np.full((4, 3, 3, 3), np.nan, np.float32)
    return {
        "random-bytes": np.random.default_rng(0).bytes(2000),
        "empty": b"",
        "a-picture": png(),
        "html": b"<html><script>alert(1)</script></html>",
        "plain-npy": plain_npy.getvalue(),
        "pickle": pickled.getvalue(),
        "header-bomb": bomb_header.getvalue(),
        "compressed-bomb": compressed_bomb.getvalue(),
        "over-5MB": b"PK\x03\x04" + bytes(6 * 2**20),
        "truncated": model_bytes()[:3000],
        "huge-json": spoiled(lambda a: a["meta"].update(notes="x" * 300_000)),
        "deep-json": spoiled(architecture=np.array('{"layers": ' + "[" * 50_000 + "]" * 50_000 + "}")),
        "other-layout": spoiled(lambda a: a.update(layers=a["layers"][:5] + a["layers"][10:])),
        "unknown-kind": spoiled(lambda a: a["layers"][1].update(kind="gelu")),
        "negative-stride": spoiled(lambda a: a["layers"][0]["options"].update(stride=-1)),
        "huge-padding": spoiled(lambda a: a["layers"][0]["options"].update(padding=10**9)),
        "nan-weights": spoiled(**{"conv1_1.weight": nan_w}),
        "huge-weights": spoiled(**{"conv1_1.weight": np.full((4, 3, 3, 3), 1e300)}),
        "markdown-class": spoiled(lambda a: a.update(classes=["![](http://example.com/x.png)", "b", "c"])),
        "text-accuracy": spoiled(lambda a: a["meta"].update(test_accuracy="99%")),
        "wrong-keys": spoiled(**{"conv1_1.W": np.zeros((4, 3, 3, 3), np.float32)}),
    }


HOSTILE = _hostile_files()


def busy_session_now():
    """One student's session with an edited filter and an uploaded picture, now on the model page."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["step"] = "2"
    at.run()
    at.session_state["pg_all_0"] = {"edited_rows": {1: {"1": 40.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    next(b for b in at.button if b.label.startswith("Put this filter")).click().run()
    at.segmented_control(key="picture_source").set_value("Upload").run()
    at.file_uploader(key="uploader").upload("red.png", png(), "image/png").run()
    assert not at.exception and not at.error and "with your edits" in banner(at)
    before = {"edits": {k: (np.array(v[0]), v[1]) for k, v in at.session_state["edits"].items()},
              "upload": np.array(at.session_state["upload"]), "banner": banner(at)}
    return open_page(at, "model"), before


@pytest.fixture(scope="module")
def busy_session():
    """One busy session that the hostile files take turns on: each leaves it on the model page, as it was."""
    return busy_session_now()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_file_gives_one_message_and_changes_nothing(busy_session, kind):
    at, before = busy_session
    upload(at, f"{kind}.npz", HOSTILE[kind])
    assert not at.exception, at.exception
    assert len(at.error) == 1, [e.value for e in at.error]
    msg = at.error[0].value
    assert msg.startswith("We cannot use this file: ") and "Nothing has changed" in msg
    assert "Traceback" not in msg and "Error:" not in msg and len(msg) < 700
    assert "mf_use" not in [b.key for b in at.button]  # no way to walk through it
    assert "own_model" not in at.session_state
    assert at.session_state["edits"].keys() == before["edits"].keys()
    for k, (kernel, bias) in at.session_state["edits"].items():
        np.testing.assert_array_equal(kernel, before["edits"][k][0])
        assert bias == before["edits"][k][1]
    np.testing.assert_array_equal(at.session_state["upload"], before["upload"])
    assert at.session_state["source"] == "upload"


def test_after_hostile_files_the_session_still_works_and_a_good_file_is_accepted():
    at, before = busy_session_now()  # its own: it leaves the model page, which the tests above need
    upload(at, "bad.npz", HOSTILE["pickle"])
    assert len(at.error) == 1
    at = open_page(at, "walkthrough")
    assert not at.exception and banner(at) == before["banner"]  # same edits, same picture, same network
    at = open_page(at, "model")
    upload(at, "fruit.npz", model_bytes())
    assert not at.exception and not at.error
    at.button(key="mf_use").click().run()
    assert not at.exception and header(at) == "1. Pixels"
    assert any(f"Prediction: {c}" in banner(at) for c in FRUIT)
    assert "with your edits" not in banner(at)  # a new network starts without the old edits
    np.testing.assert_array_equal(at.session_state["upload"], before["upload"])  # the picture stays


def test_class_names_from_a_file_are_shown_as_text_in_the_playground():
    """The playground writes its answer as HTML (pictures and text in one element). Class names with
    < or > never load (see test_model), and the signs a name may hold (&, quotes) arrive escaped,
    whichever class wins."""
    names = ["cats & dogs", "rock 'n' roll", "best (1) & co"]
    m = M.tiny_vgg(names, (4, 4, 8, 8), input_size=(16, 16), seed=1)
    at = open_page(AppTest.from_file(APP, default_timeout=60).run(), "model")
    upload(at, "signs.npz", model_bytes(m))
    at.button(key="mf_use").click().run()
    next(b for b in at.button if b.label == "Next").click().run()
    assert not at.exception and header(at) == "2. Convolution"
    answer = next(md.value for md in at.markdown if "would say" in md.value)
    winner = [n for n in names if f"<strong>{html.escape(n)}</strong>" in answer]
    assert len(winner) == 1, answer[-300:]
