"""The pages "What each filter looks for", "What fools it" and "Two pictures side by side" in AppTest: what
they show is what cnnviz.explain and the trace compute, for the shipped network and for an edited one."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.util import calc_hash

from cnnviz import explain as E
from cnnviz import samples
from cnnviz.images import fit_to_input, load_image
from cnnviz.model import forward, load_model, tiny_vgg, trace
from cnnviz.ui import compare, lab, pagestart, preferences
from cnnviz.ui.common import fmt_prob
from cnnviz.ui.state import DEFAULT_SAMPLE
from tests.apptest import APP, AppTest


def on_page(url_path: str, **state) -> AppTest:
    """A fresh session on the page registered under `url_path` (function pages are found by its hash)."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    at._page_hash = calc_hash(url_path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def cat():
    model = load_model()
    return model, fit_to_input(load_image(samples.sample_path(DEFAULT_SAMPLE)), model.input_size)


def sample_pictures() -> dict:
    return {n: load_image(samples.sample_path(n)) for n in samples.sample_names()}


# ---------------------------------------------------------------- what each filter looks for


def test_the_filters_page_shows_a_tile_per_map_with_the_cores_patches():
    model = load_model()
    at = on_page("filters")
    assert [t.value for t in at.title][0] == "What each filter looks for"
    assert at.selectbox(key="pref_layer").value == "conv1_1"
    assert any("**The first layer**" in m.value and "colour" in m.value and "edge" in m.value for m in at.markdown)
    patches = E.layer_top_patches(model, "relu1_1", sample_pictures(), preferences.TOP)
    captions = [c for im in at.image for c in im.captions if c and c.startswith("Map ")]
    assert captions == [preferences.tile_caption(f, p) for f, p in enumerate(patches)]
    assert len(captions) == 16

    at.selectbox(key="pref_layer").set_value("conv2_2").run()
    assert not at.exception
    assert any("**A deeper layer**" in m.value and "14x14" in m.value and "textures" in m.value
               for m in at.markdown)
    patches = E.layer_top_patches(model, "relu2_2", sample_pictures(), preferences.TOP)
    captions = [c for im in at.image for c in im.captions if c and c.startswith("Map ")]
    assert captions == [preferences.tile_caption(f, p) for f, p in enumerate(patches)]


def test_an_edited_network_gets_its_own_pictures():
    model = load_model()
    kernel = np.zeros((3, 3, 3), np.float32)
    kernel[:, :, 0], kernel[:, :, 2] = -1, 1  # a vertical edge filter in place of filter 1
    edited = model.with_filter("conv1_1", 0, kernel, 0.0)
    at = on_page("filters", edits={("conv1_1", 0): (kernel, 0.0)})
    assert any("with your edits" in c.value for c in at.caption)
    patches = E.layer_top_patches(edited, "relu1_1", sample_pictures(), preferences.TOP)
    shipped = E.layer_top_patches(model, "relu1_1", sample_pictures(), preferences.TOP)
    first = next(c for im in at.image for c in im.captions if c and c.startswith("Map 1:"))
    assert first == preferences.tile_caption(0, patches[0]) != preferences.tile_caption(0, shipped[0])
    key = E.model_key(edited)
    assert key != E.model_key(model)
    prefs, _ = preferences.layer_looks(key, "relu1_1", tuple(sample_pictures()), edited, sample_pictures())
    np.testing.assert_array_equal(prefs[0], E.preferences(edited, "relu1_1")[0])


def test_an_uploaded_network_with_another_activation_gets_its_own_pictures():
    net = tiny_vgg(["a", "b", "c"], (4, 4, 8, 8), input_size=(24, 24), seed=4, activation="tanh")
    at = on_page("filters", own_model=net, own_model_label="tanh net")
    assert any("This is your own network" in c.value for c in at.caption)
    assert preferences.conv_stages(net)[0] == ("conv1_1", "tanh1_1")
    patches = E.layer_top_patches(net, "tanh1_1", sample_pictures(), preferences.TOP)
    captions = [c for im in at.image for c in im.captions if c and c.startswith("Map ")]
    assert captions == [preferences.tile_caption(f, p) for f, p in enumerate(patches)]
    assert any("after tanh" in c.value for c in at.caption)


def test_conv_stages_look_after_each_activation():
    model = load_model()
    assert preferences.conv_stages(model) == [("conv1_1", "relu1_1"), ("conv1_2", "relu1_2"),
                                              ("conv2_1", "relu2_1"), ("conv2_2", "relu2_2")]
    assert [preferences.field_size(model, s) for _, s in preferences.conv_stages(model)] == \
        [(3, 3), (5, 5), (10, 10), (14, 14)]


# ---------------------------------------------------------------- what fools it


def answer(model, small, change, target):
    """What the network says about the changed picture -> (class, probabilities)."""
    p = forward(model, model.normalize(E.changed_pictures(model, small, [change], target)))[0]
    return int(np.argmax(p)), p


def verdict(at) -> str:
    found = [m.value for m in [*at.success, *at.error] if m.value.startswith("It ")]
    assert len(found) == 1
    return found[0]


def test_the_lab_starts_unchanged_and_names_the_smallest_nudge(cat):
    model, small = cat
    at = on_page("lab")
    p = forward(model, model.normalize(small)[None])[0]
    k = int(np.argmax(p))
    assert verdict(at) == (f"It still says **{model.classes[k]}** ({fmt_prob(p[k])}). "
                           f"Chance of {model.classes[k]}: {fmt_prob(p[k])}, was {fmt_prob(p[k])}.")
    flip = E.smallest_flip(model, small)
    assert any(f"changes the answer on the unchanged picture: {flip} out of 255" in m.value for m in at.markdown)
    assert any("confident" in m.value or "very sure" in m.value for m in at.markdown)
    name = model.classes[k]
    for knob in lab.knobs((32, 32)):
        caption = f"{knob.label} at {knob.default:g}{knob.unit}: {name} {fmt_prob(p[k])}"
        assert sum(caption in im.captions for im in at.image) == 1, caption


@pytest.mark.parametrize("key, value, change", [
    ("lab_brightness", -100, E.Change(brightness=-100)),
    ("lab_contrast", 250, E.Change(contrast=2.5)),
    ("lab_noise", 40, E.Change(noise=40)),
    ("lab_rotation", 90, E.Change(rotation=90)),
    ("lab_right", 5, E.Change(shift_right=5)),
    ("lab_down", -7, E.Change(shift_down=-7)),
    ("lab_eps", 6, E.Change(epsilon=6)),
])
def test_each_slider_changes_the_picture_the_way_the_core_does(cat, key, value, change):
    model, small = cat
    at = on_page("lab")
    at.slider(key=key).set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]
    target = int(np.argmax(forward(model, model.normalize(small)[None])[0]))
    k, p = answer(model, small, change, target)
    said = "still" if k == target else "now"
    assert verdict(at).startswith(f"It {said} says **{model.classes[k]}** ({fmt_prob(p[k])}). "
                                  f"Chance of {model.classes[target]}: {fmt_prob(p[target])}")


def test_a_click_covers_a_square_there_and_sliders_move_it(cat):
    model, small = cat
    target = int(np.argmax(forward(model, model.normalize(small)[None])[0]))
    at = on_page("lab")
    assert at.toggle(key="lab_square_on").value is False
    size = 10 * 32
    at.session_state["lab_click"] = {"x": 10 * 20.5, "y": 10 * 11.5, "width": size, "height": size, "unix_time": 1}
    at.run()
    assert not at.exception
    assert at.toggle(key="lab_square_on").value is True
    assert (at.slider(key="lab_sq_row").value, at.slider(key="lab_sq_col").value) == (12, 21)
    side = at.slider(key="lab_sq_side").value
    k, p = answer(model, small, E.Change(square=(11, 20, side)), target)
    assert verdict(at).startswith(f"It {'still' if k == target else 'now'} says **{model.classes[k]}** "
                                  f"({fmt_prob(p[k])})")
    at.slider(key="lab_sq_row").set_value(3).run()  # the keyboard path: the sliders move it too
    k, p = answer(model, small, E.Change(square=(2, 20, side)), target)
    assert f"**{model.classes[k]}** ({fmt_prob(p[k])})" in verdict(at)
    at.button(key="lab_reset").click().run()
    assert at.toggle(key="lab_square_on").value is False and at.slider(key="lab_brightness").value == 0


def test_the_smallest_nudge_changes_the_answer_in_the_lab(cat):
    model, small = cat
    flip = E.smallest_flip(model, small)
    assert flip is not None and flip <= 16  # the slider reaches it
    at = on_page("lab")
    at.slider(key="lab_eps").set_value(flip).run()
    target = int(np.argmax(forward(model, model.normalize(small)[None])[0]))
    k, p = answer(model, small, E.Change(epsilon=flip), target)
    assert k != target
    assert verdict(at).startswith(f"It now says **{model.classes[k]}**")
    assert any(c and c.startswith("What changed, ") for im in at.image for c in im.captions)


def test_a_smaller_network_puts_sliders_that_no_longer_fit_back():
    small_net = tiny_vgg(["a", "b", "c"], (4, 4, 8, 8), input_size=(16, 16), seed=3)
    at = on_page("lab", lab_right=16, lab_sq_row=30, own_model=small_net, own_model_label="small")
    assert at.slider(key="lab_right").value == 0 and at.slider(key="lab_right").max == 8
    assert at.slider(key="lab_sq_row").value <= 16
    assert verdict(at).startswith("It still says")


def test_sweep_values_cover_each_slider_from_end_to_end():
    for k in lab.knobs((32, 32)):
        xs = lab.sweep_values(k)
        assert xs[0] == k.lo and xs[-1] == k.hi and len(xs) <= 42 and np.all(np.diff(xs) > 0)
        assert k.lo <= k.default <= k.hi


# ---------------------------------------------------------------- two pictures side by side


def test_two_pictures_walk_every_stage_with_a_difference():
    model = load_model()
    at = on_page("compare")
    at.selectbox(key="cmp_a").set_value("smiley")
    at.selectbox(key="cmp_b").set_value("checkerboard")
    at.run()
    assert not at.exception
    ta = trace(model, load_image(samples.sample_path("smiley")))
    tb = trace(model, load_image(samples.sample_path("checkerboard")))
    ka, kb = int(np.argmax(ta[-1].output)), int(np.argmax(tb[-1].output))
    assert at.info[0].value == (f"A: **{model.classes[ka]}** ({fmt_prob(ta[-1].output[ka])}) · B: "
                                f"**{model.classes[kb]}** ({fmt_prob(tb[-1].output[kb])})")
    for n, (sa, sb) in enumerate(zip(ta, tb)):
        assert any(m.value.startswith(f"**{n + 1}. ") and m.value.endswith(
            f"how different: {compare.apart(sa.output, sb.output):.0%}") for m in at.markdown), sa.name
    shown = [s for s in ta if s.kind != "flatten"]
    captions = [c for im in at.image for c in im.captions if c and ("A minus B" in c)]
    assert len(captions) == len(shown)


def test_an_uploaded_picture_can_be_compared_and_put_in_the_lab():
    upload = np.zeros((40, 40, 3), np.uint8)
    upload[:, ::4] = 255
    at = on_page("compare", source="upload", upload=upload, upload_name="stripes", step=1)
    assert at.selectbox(key="cmp_a").value == pagestart.YOURS
    assert at.selectbox(key="cmp_b").value != pagestart.YOURS
    at = on_page("lab", source="upload", upload=upload, upload_name="stripes", step=1)
    assert at.selectbox(key="lab_picture").value == pagestart.YOURS
    model = load_model()
    p = forward(model, model.normalize(fit_to_input(upload, model.input_size))[None])[0]
    k = int(np.argmax(p))
    assert verdict(at).startswith(f"It still says **{model.classes[k]}** ({fmt_prob(p[k])})")


def test_the_lab_takes_any_sample_picture():
    model = load_model()
    at = on_page("lab")
    at.selectbox(key="lab_picture").set_value("checkerboard").run()
    assert not at.exception
    small = fit_to_input(load_image(samples.sample_path("checkerboard")), model.input_size)
    p = forward(model, model.normalize(small)[None])[0]
    k = int(np.argmax(p))
    assert verdict(at).startswith(f"It still says **{model.classes[k]}** ({fmt_prob(p[k])})")
    assert any(f"changes the answer on the unchanged picture: {E.smallest_flip(model, small)} out of 255"
               in m.value for m in at.markdown)


def test_presentation_mode_is_read_not_redrawn():
    at = on_page("lab", _saved_presentation=True)  # as the walkthrough's sidebar left it
    assert not at.sidebar.toggle  # these pages draw no sidebar widgets of their own
    assert "presentation" not in at.session_state


def test_apart_is_zero_for_the_same_numbers_and_symmetric():
    a, b = np.arange(6.0), np.arange(6.0)[::-1]
    assert compare.apart(a, a) == 0 and compare.apart(a, b) == compare.apart(b, a) > 0
    assert compare.apart(np.zeros(3), np.zeros(3)) == 0


def test_presentation_mode_survives_a_visit_to_each_page():
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.toggle(key="presentation").set_value(True).run()
    for url_path in ("filters", "lab", "compare"):
        at._page_hash = calc_hash(url_path)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        at._page_hash = calc_hash("walkthrough")
        at.run()
        assert at.toggle(key="presentation").value is True, url_path
