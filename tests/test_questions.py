"""Questions from the real numbers: every answer is recomputed here from the trace by hand (padding,
slicing, sums, exp), for the shipped network and small random ones; wrong answers are marked wrong."""

from dataclasses import replace

import numpy as np
import pytest

from cnnviz import questions as Q
from cnnviz.images import fit_to_input, load_image
from cnnviz.model import load_model, tiny_vgg, trace
from cnnviz.samples import sample_path

PICTURES = ("cat-chelsea", "colour-stripes", "checkerboard", "smiley")


def random_picture(seed=0, size=(40, 50)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def models():
    tiny = tiny_vgg(("cat", "dog", "bird", "fish", "tree", "car", "boat"), channels=(4, 4, 8, 8),
                    input_size=(16, 16), seed=3)
    return {"shipped": load_model(), "tiny": tiny}


MODELS = models()


def cases():
    for m in MODELS:
        for p in (*PICTURES, "random"):
            yield m, p


@pytest.fixture(params=list(cases()), ids=lambda c: f"{c[0]}-{c[1]}")
def case(request):
    name, picture = request.param
    model = MODELS[name]
    image = random_picture() if picture == "random" else load_image(sample_path(picture))
    stages = trace(model, image)
    small = fit_to_input(image, model.input_size)
    return model, stages, small


def by_name(stages):
    return {s.name: s for s in stages}


def test_every_step_has_a_question_with_a_stable_id(case):
    model, stages, small = case
    qs = {step: Q.generate(step, model, stages, small) for step in Q.GENERATORS}
    again = {step: Q.generate(step, model, stages, small) for step in Q.GENERATORS}
    assert qs == again
    assert [q.step for q in qs.values()] == list(range(1, 8))
    assert len({q.id for q in qs.values()}) == 7
    for step, q in qs.items():
        assert q.id.startswith(f"s{step}-") and len(q.id) <= 64
        assert q.kind in ("choice", "number") and q.prompt and q.reason
        assert Q.check(q, q.answer)


def test_step1_pixel_colour_matches_the_pixel(case):
    model, stages, small = case
    q = Q.generate(1, model, stages, small)
    i, j = q.data["row"], q.data["col"]
    r, g, b = (int(v) for v in small[i, j])
    assert f"row {i + 1}, column {j + 1}" in q.prompt and f"red {r}, green {g} and blue {b}" in q.prompt
    said = q.choices[q.answer]
    expect = {"red": r > max(g, b) + 50, "green": g > max(r, b) + 40, "blue": b > max(r, g) + 40,
              "yellow": min(r, g) > b + 90, "white": min(r, g, b) >= 200, "black": max(r, g, b) <= 40}
    if said in expect:
        assert expect[said], (said, r, g, b)
    else:  # the fallback: which number is largest
        assert said == ("red", "green", "blue")[int(np.argmax([r, g, b]))] or (said == Q.SAME and r == g == b)
    for k in range(len(q.choices)):
        assert Q.check(q, k) == (k == q.answer)


def test_step1_colour_stripes_names_the_stripe_colour():
    model = MODELS["shipped"]
    image = load_image(sample_path("colour-stripes"))
    small = fit_to_input(image, model.input_size)
    stripes = {(220, 30, 30): "red", (30, 170, 30): "green", (30, 60, 220): "blue", (250, 220, 30): "yellow"}
    for seed in range(6):
        q = Q.generate(1, model, trace(model, image), small, seed)
        assert q.choices[q.answer] == stripes[q.data["rgb"]]


@pytest.mark.parametrize("colour, said", [((120, 100, 90), "red"), ((90, 100, 130), "blue"), ((128, 128, 128), Q.SAME)])
def test_step1_without_a_clear_colour_asks_which_number_is_largest(colour, said):
    model = MODELS["tiny"]
    image = np.full((16, 16, 3), colour, np.uint8)
    q = Q.generate(1, model, trace(model, image), image)
    assert "most of" in q.prompt
    assert q.choices[q.answer] == said


def test_step2_conv_value_is_the_window_times_the_filter(case):
    model, stages, small = case
    q = Q.generate(2, model, stages, small)
    d = q.data
    conv = by_name(stages)[d["stage"]]
    x = stages[stages.index(conv) - 1].output.astype(np.float64)  # (C, H, W)
    p = conv.layer.options["padding"]
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    f, i, j = d["filter"], d["row"], d["col"]
    w = conv.layer.params["weight"][f].astype(np.float64)
    bias = float(conv.layer.params["bias"][f])
    win = xp[:, i:i + w.shape[1], j:j + w.shape[2]]
    expected = float(np.sum(win * w) + bias)
    np.testing.assert_allclose(q.answer, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(q.answer, conv.output[f, i, j], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(d["window"]), win, atol=1e-6)
    np.testing.assert_allclose(np.array(d["weight"]), w, atol=1e-6)
    # Worked from the two-decimal numbers a student sees, the answer still counts.
    shown = float(np.sum(np.round(win, 2) * np.round(w, 2)) + round(bias, 2))
    assert Q.check(q, shown) and Q.check(q, f"{shown:.2f}")
    assert f"{q.tolerance:.2f}" in q.prompt and f"{bias:.2f}".replace("-0.00", "0.00") in q.prompt
    assert not Q.check(q, expected + q.tolerance + 0.01)
    assert not Q.check(q, expected - q.tolerance - 0.01)


def test_step3_relu_survivors_are_the_positive_numbers(case):
    model, stages, small = case
    q = Q.generate(3, model, stages, small)
    d = q.data
    act = by_name(stages)[d["stage"]]
    before = stages[stages.index(act) - 1].output
    c, i, j = d["map"], d["row"], d["col"]
    v = before[c, i, j:j + 5]
    expect = tuple(k for k in range(5) if v[k] > 0)
    assert q.multiple and q.answer == expect
    np.testing.assert_allclose(act.output[c, i, j:j + 5], np.maximum(v, 0))
    assert q.choices == tuple(f"{a:.2f}" for a in v)
    assert Q.check(q, list(reversed(expect))) and Q.check(q, set(expect))
    assert not Q.check(q, tuple(set(expect) ^ {0}))
    assert not Q.check(q, tuple(range(5))) or len(expect) == 5
    assert not Q.check(q, [*expect, 7]) and not Q.check(q, "01234")


def test_step4_pooling_keeps_the_largest(case):
    model, stages, small = case
    q = Q.generate(4, model, stages, small)
    d = q.data
    pool = by_name(stages)[d["stage"]]
    before = stages[stages.index(pool) - 1].output
    c, i, j = d["map"], d["row"], d["col"]
    win = before[c, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
    assert pool.output[c, i, j] == win.max()
    assert q.answer == int(np.argmax(win.ravel()))
    assert q.choices[q.answer].endswith(f"{win.max():.2f}")
    for k in range(len(q.choices)):
        assert Q.check(q, k) == (k == q.answer)


def test_step4_average_pooling_keeps_the_average():
    model = MODELS["tiny"]
    model = model.with_layer("maxpool1", replace(model.layer("maxpool1"), kind="avgpool"))
    image = random_picture(1)
    q = Q.generate(4, model, trace(model, image), fit_to_input(image, model.input_size))
    assert q.choices[q.answer].startswith("their average")


def test_step5_smallest_maps_from_the_shapes(case):
    model, stages, small = case
    q = Q.generate(5, model, stages, small)
    shapes = {s.name: s.output.shape for s in stages[1:] if s.output.ndim == 3}
    names = q.data["stages"]
    areas = [shapes[n][1] * shapes[n][2] for n in names]
    assert q.answer == int(np.argmin(areas)) and areas.count(min(areas)) == 1
    assert min(areas) == min(h * w for _, h, w in shapes.values())
    for k in range(len(q.choices)):
        assert Q.check(q, k) == (k == q.answer)


def test_step6_class_that_gets_most_from_a_map(case):
    model, stages, small = case
    q = Q.generate(6, model, stages, small)
    s = by_name(stages)
    maps = s[q.data["stage"]].output.astype(np.float64)  # (C, H, W)
    w = s["dense"].layer.params["weight"].astype(np.float64)
    C, H, W = maps.shape
    c = q.data["map"]
    got = np.zeros(len(model.classes))
    for k in range(len(model.classes)):
        for y in range(H):
            for x in range(W):
                got[k] += w[k, c * H * W + y * W + x] * maps[c, y, x]
    ks = q.data["classes"]
    assert q.choices == tuple(model.classes[k] for k in ks)
    assert q.choices[q.answer] == model.classes[max(ks, key=lambda k: got[k])]
    # The maps' shares plus the bias are the scores.
    _, _, per_map = Q.map_contributions(stages)
    np.testing.assert_allclose(per_map.sum(0) + s["dense"].layer.params["bias"], s["dense"].output,
                               rtol=1e-4, atol=1e-4)
    for k in range(len(q.choices)):
        assert Q.check(q, k) == (k == q.answer)


def test_step7_winner_and_share_from_softmax(case):
    model, stages, small = case
    q = Q.generate(7, model, stages, small)
    z = by_name(stages)["dense"].output.astype(np.float64)
    e = np.exp(z - z.max())
    p = e / e.sum()
    np.testing.assert_allclose(p, stages[-1].output, rtol=1e-4, atol=1e-6)
    win = int(np.argmax(p))
    assert q.choices[q.answer] == f"{model.classes[win]}, about {round(100 * p[win])}%"
    shares = sorted({int(c.split("about ")[1][:-1]) for c in q.choices})
    assert len(shares) == 3 and min(np.diff(shares)) >= 25
    for k in range(len(q.choices)):
        assert Q.check(q, k) == (k == q.answer)


def test_the_same_seed_gives_the_same_questions_and_other_seeds_other_ones():
    model = MODELS["shipped"]
    image = load_image(sample_path("cat-chelsea"))
    first = Q.for_picture(model, image, seed=4)
    assert first == Q.for_picture(model, image, seed=4)
    assert [q.id for q in first.values()] == [q.id for q in Q.for_picture(model, image, seed=4).values()]
    others = [Q.for_picture(model, image, seed=s)[2].id for s in range(5)]
    assert len(set(others)) > 1


def test_another_picture_gives_other_ids():
    model = MODELS["shipped"]
    a = Q.for_picture(model, load_image(sample_path("cat-chelsea")))
    b = Q.for_picture(model, load_image(sample_path("rocket")))
    assert a[2].id != b[2].id and a[7].id != b[7].id


@pytest.mark.parametrize("junk", [None, "", "abc", "nan", float("nan"), float("inf"), [1], {"a": 1}, True,
                                  10 ** 400, -1, 99, "9" * 1000, b"1", object()])
def test_check_never_raises_and_junk_is_wrong(junk):
    model = MODELS["tiny"]
    image = random_picture(2)
    qs = Q.for_picture(model, image)
    for q in qs.values():
        assert Q.check(q, junk) is False or (q.kind == "number" and junk == -1 and abs(q.answer + 1) <= q.tolerance)


def test_other_activations_ask_what_comes_out_above_what_zero_gives():
    model = MODELS["tiny"].with_activation("sigmoid")
    image = random_picture(3)
    q = Q.generate(3, model, trace(model, image), fit_to_input(image, model.input_size))
    values = np.array(q.data["values"])
    assert q.answer == tuple(int(k) for k in np.flatnonzero(values > 0))
    assert "0.50" in q.prompt
