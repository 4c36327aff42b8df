"""cnnviz.explain against PyTorch autograd (the shipped model and a small random one with every layer kind),
against hand-written loops, and against what each explanation promises."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cnnviz import explain as E
from cnnviz import layers as L
from cnnviz import samples
from cnnviz.images import fit_to_input, load_image
from cnnviz.model import Layer, Model, forward, load_model
from cnnviz.ui.state import DEFAULT_SAMPLE
from tests.torchref import require_torch, torch_layers

STAGES = ("relu1_1", "relu1_2", "relu2_1", "relu2_2")  # what the filters page looks at


def small_model(seed: int = 1) -> Model:
    """A random network with every kind of layer, odd strides, a non-square input and no softmax at the end."""
    rng = np.random.default_rng(seed)

    def conv(name, f, c, k, stride, padding):
        return Layer(name, "conv", {"weight": rng.standard_normal((f, c, k, k)) * 0.6,
                                    "bias": rng.standard_normal(f) * 0.1}, {"stride": stride, "padding": padding})

    pool = {"size": 2}
    layers = [conv("conv1", 4, 3, 3, 1, 1), Layer("tanh1", "tanh"),
              conv("conv2", 5, 4, 3, 2, 1), Layer("relu2", "relu"), Layer("avgpool", "avgpool", options=pool),
              conv("conv3", 6, 5, 2, 1, 0), Layer("sigmoid3", "sigmoid"), Layer("maxpool", "maxpool", options=pool),
              Layer("flatten", "flatten"),
              Layer("dense", "dense", {"weight": rng.standard_normal((5, 24)), "bias": rng.standard_normal(5) * 0.1})]
    return Model(tuple(layers), ("a", "b", "c", "d", "e"), (20, 24),
                 {"mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]})


def picture(model: Model, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*model.input_size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.fixture(scope="module")
def cat():
    return load_image(samples.sample_path(DEFAULT_SAMPLE))


@pytest.fixture(scope="module")
def sample_pictures():
    return {n: load_image(samples.sample_path(n)) for n in samples.sample_names()}


def cases(shipped, cat):
    """(model, picture) pairs: the shipped model on the default picture, the small one on noise."""
    m = small_model()
    return [(shipped, cat), (m, picture(m))]


# ---------------------------------------------------------------- the PyTorch twin


def torch_scores(model, torch):
    """The torch modules that make the class scores (a final softmax left out)."""
    mods = torch_layers(model, torch)
    return mods[:-1] if model.layers[-1].kind == "softmax" else mods


def torch_run(mods, x, torch, keep: int | None = None):
    """Run x through mods; with `keep`, also return the output of module `keep` (gradients retained)."""
    kept = None
    for n, mod in enumerate(mods):
        x = mod(x)
        if n == keep:
            if x.requires_grad:
                x.retain_grad()
            kept = x
    return x, kept


def torch_gradient(model, x: np.ndarray, target: int, torch) -> np.ndarray:
    xt = torch.from_numpy(np.array(x[None])).requires_grad_()
    z, _ = torch_run(torch_scores(model, torch), xt, torch)
    z[0, target].backward()
    return xt.grad[0].numpy()


def stage_index(model, stage: str) -> int:
    return [la.name for la in model.layers].index(stage)


# ---------------------------------------------------------------- gradients, saliency, Grad-CAM


def test_logit_gradient_is_pytorch_autograd(shipped, cat):
    torch = require_torch()
    for model, image in cases(shipped, cat):
        x = model.preprocess(image)
        for target in range(len(model.classes)):
            g = E.logit_gradient(model, x, target)
            assert g.shape == x.shape
            ref = torch_gradient(model, x, target, torch)
            np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_logit_gradients_of_a_batch_are_each_pictures_own(shipped):
    x = np.stack([shipped.preprocess(picture(shipped, s)) for s in range(3)])
    batch = E.logit_gradients(shipped, x, 4)
    for n in range(3):
        np.testing.assert_allclose(batch[n], E.logit_gradient(shipped, x[n], 4), rtol=1e-4, atol=1e-6)


def test_the_score_is_the_input_to_softmax(shipped, cat):
    x = shipped.preprocess(cat)[None]
    z = E.scores(shipped, x)
    np.testing.assert_allclose(L.softmax(z), forward(shipped, x), rtol=1e-5)
    m = small_model()  # no softmax layer: the score is its last layer's output
    x = m.preprocess(picture(m))[None]
    np.testing.assert_allclose(L.softmax(E.scores(m, x)), forward(m, x), rtol=1e-5)


def test_saliency_is_the_largest_absolute_gradient_over_colours(shipped, cat):
    torch = require_torch()
    for model, image in cases(shipped, cat):
        s = E.saliency(model, image, 1)
        assert s.shape == model.input_size
        ref = np.abs(torch_gradient(model, model.preprocess(image), 1, torch)).max(axis=0)
        np.testing.assert_allclose(s, ref, rtol=1e-4, atol=1e-5 * ref.max())


def torch_gradcam(model, image, target, stage, torch) -> np.ndarray:
    xt = torch.from_numpy(model.preprocess(image)[None])
    z, A = torch_run(torch_scores(model, torch), xt, torch, keep=stage_index(model, stage))
    z[0, target].backward()
    a = A.grad[0].mean(dim=(1, 2))  # (C,)
    return torch.relu((a[:, None, None] * A[0]).sum(dim=0)).detach().numpy()


def test_gradcam_is_pytorch_autograd_at_every_map_stage(shipped, cat):
    torch = require_torch()
    for model, image in cases(shipped, cat):
        for stage in E.map_stages(model):
            for target in (0, len(model.classes) - 1):
                cam = E.gradcam(model, image, target, stage)
                ref = torch_gradcam(model, image, target, stage, torch)
                assert cam.shape == ref.shape
                np.testing.assert_allclose(cam, ref, rtol=1e-4, atol=1e-5 * max(1e-6, float(np.abs(ref).max())))


def test_gradcam_looks_at_the_last_maps_before_flatten_by_default(shipped, cat):
    assert E.default_cam_stage(shipped) == "maxpool2"
    assert E.default_cam_stage(small_model()) == "maxpool"
    cam = E.gradcam(shipped, cat, 3)
    np.testing.assert_array_equal(cam, E.gradcam(shipped, cat, 3, "maxpool2"))
    assert cam.shape == (8, 8) and cam.min() >= 0  # stage resolution, never negative


def test_gradcam_refuses_a_stage_that_is_not_maps(shipped, cat):
    with pytest.raises(ValueError, match="list"):
        E.gradcam(shipped, cat, 0, "dense")
    with pytest.raises(KeyError):
        E.gradcam(shipped, cat, 0, "no such stage")


# ---------------------------------------------------------------- occlusion


def occlusion_loop(model, image, target, patch, stride) -> np.ndarray:
    """The teaching version: hide one square, run the network, write down the drop; one picture at a time."""
    x = model.preprocess(image)
    h, w = x.shape[1:]
    base = forward(model, x[None])[0, target]
    out = np.zeros(((h - patch) // stride + 1, (w - patch) // stride + 1))
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            hidden = x.copy()
            hidden[:, r * stride:r * stride + patch, c * stride:c * stride + patch] = 0
            out[r, c] = base - forward(model, hidden[None])[0, target]
    return out


@pytest.mark.parametrize("patch, stride", [(8, 4), (8, 2), (5, 3), (1, 7)])
def test_occlusion_is_the_hand_written_loop(shipped, cat, patch, stride):
    for model, image in cases(shipped, cat):
        occ = E.occlusion(model, image, 2, patch, stride)
        h, w = model.input_size
        assert occ.shape == ((h - patch) // stride + 1, (w - patch) // stride + 1)
        np.testing.assert_allclose(occ, occlusion_loop(model, image, 2, patch, stride), atol=2e-6)


def test_occlusion_in_small_chunks_is_the_same(shipped, cat, monkeypatch):
    whole = E.occlusion(shipped, cat, 3, 8, 2)
    monkeypatch.setattr(E, "CHUNK", 5)  # fewer than a row of squares: one row a pass
    np.testing.assert_allclose(E.occlusion(shipped, cat, 3, 8, 2), whole, atol=1e-6)


def test_occlusion_probabilities_are_pytorchs(shipped, cat):
    torch = require_torch()
    x = shipped.preprocess(cat)
    hidden = E.occluded_batch(x, 8, 4, range(7), 7)  # (49, 3, 32, 32)
    with torch.no_grad():
        p = torch.softmax(torch_run(torch_scores(shipped, torch), torch.from_numpy(np.concatenate([x[None], hidden])),
                                    torch)[0], dim=1).numpy()
    np.testing.assert_allclose(E.occlusion(shipped, cat, 3, 8, 4), (p[0, 3] - p[1:, 3]).reshape(7, 7), atol=2e-6)


def test_hiding_the_mean_on_an_all_mean_picture_changes_nothing(shipped):
    # A mean that is a whole 0-255 value, so the picture can be exactly "the training mean".
    grey = (128, 64, 200)
    for model in (shipped, small_model()):
        model = replace(model, preprocessing={"mean": [v / 255 for v in grey],
                                              "std": list(model.preprocessing["std"])})
        image = np.broadcast_to(np.array(grey, np.uint8), (*model.input_size, 3)).copy()
        assert not model.preprocess(image).any()  # all 0, exactly: the same as a hidden square
        for target in (0, len(model.classes) - 1):
            occ = E.occlusion(model, image, target, 4, 2)
            assert occ.shape == ((model.input_size[0] - 4) // 2 + 1, (model.input_size[1] - 4) // 2 + 1)
            assert not occ.any()


def test_occlusion_refuses_a_square_bigger_than_the_picture(shipped, cat):
    with pytest.raises(ValueError, match="fit"):
        E.occlusion(shipped, cat, 0, 40, 4)


def test_occlusion_pixels_average_every_square_over_a_pixel():
    occ = np.arange(9, dtype=np.float32).reshape(3, 3)
    px = E.occlusion_pixels(occ, (6, 6), 2, 2)  # squares side by side: each pixel under exactly one
    np.testing.assert_array_equal(px, np.kron(occ, np.ones((2, 2))))
    px = E.occlusion_pixels(np.array([[1.0, 3.0]]), (2, 4), 2, 1)  # overlapping in the middle column
    np.testing.assert_array_equal(px, [[1, 2, 3, 0], [1, 2, 3, 0]])


# ---------------------------------------------------------------- the adversarial nudge


@pytest.mark.parametrize("epsilon", [0, 0.5, 1, 2.7, 4, 8, 40])
def test_fgsm_moves_no_value_more_than_epsilon_and_stays_a_picture(shipped, cat, epsilon):
    for model, image in cases(shipped, cat):
        small = fit_to_input(image, model.input_size)
        moved = E.fgsm(model, image, 0, epsilon)
        assert moved.dtype == np.uint8 and moved.shape == small.shape
        assert np.abs(moved.astype(int) - small.astype(int)).max() <= epsilon


def test_fgsm_steps_against_pytorchs_gradient_sign(shipped, cat):
    torch = require_torch()
    for model, image in cases(shipped, cat):
        small = fit_to_input(image, model.input_size)
        target = int(np.argmax(forward(model, model.normalize(small)[None])[0]))
        g = np.moveaxis(torch_gradient(model, model.normalize(small), target, torch), 0, -1)  # (h, w, 3)
        want = np.clip(small.astype(int) - 3 * np.sign(g).astype(int), 0, 255)
        clear = np.abs(g) > 1e-4 * np.abs(g).max()  # signs of gradients this close to 0 are float noise
        np.testing.assert_array_equal(E.fgsm(model, image, target, 3)[clear], want[clear])


@pytest.mark.parametrize("epsilon", [1, 2, 4, 8])
def test_fgsm_lowers_the_targets_score(shipped, cat, epsilon):
    for model, image in cases(shipped, cat):
        small = fit_to_input(image, model.input_size)
        for target in range(len(model.classes)):
            before = E.scores(model, model.normalize(small)[None])[0, target]
            after = E.scores(model, model.normalize(E.fgsm(model, image, target, epsilon))[None])[0, target]
            assert after < before


def test_smallest_flip_is_the_first_epsilon_that_changes_the_answer(shipped, sample_pictures):
    for name, image in sample_pictures.items():
        small = fit_to_input(image, shipped.input_size)
        winner = int(np.argmax(forward(shipped, shipped.normalize(small)[None])[0]))
        e = E.smallest_flip(shipped, image, largest=32)
        tried = (0, 1, 2, 4, 8, 16, 32) if e is None else range(e + 1)
        answers = [int(np.argmax(forward(shipped, shipped.normalize(E.fgsm(shipped, image, winner, eps))[None])[0]))
                   for eps in tried]
        if e is None:
            assert all(a == winner for a in answers), name
        else:
            assert answers[e] != winner and all(a == winner for a in answers[:e]), name


# ---------------------------------------------------------------- changed pictures (the lab)


def test_no_change_gives_the_picture_back(shipped, cat):
    small = fit_to_input(cat, shipped.input_size)
    np.testing.assert_array_equal(E.changed_pictures(shipped, small, [E.Change()], 0)[0], small)


def test_turns_and_shifts_are_exact_on_whole_steps(shipped):
    small = picture(shipped, 3)
    turned, half, moved = E.changed_pictures(shipped, small, [
        E.Change(rotation=90), E.Change(rotation=180), E.Change(shift_down=3, shift_right=-2)], 0)
    np.testing.assert_array_equal(turned, np.rot90(small))  # anticlockwise
    np.testing.assert_array_equal(half, small[::-1, ::-1])
    np.testing.assert_array_equal(moved[3:, :-2], small[:-3, 2:])
    assert np.all(moved[:3] == E.mean_colour(shipped)) and np.all(moved[:, -2:] == E.mean_colour(shipped))


def test_brightness_contrast_noise_and_square(shipped):
    small = picture(shipped, 4)
    bright, flat, noisy, noisier, covered = E.changed_pictures(shipped, small, [
        E.Change(brightness=40), E.Change(contrast=0.0), E.Change(noise=10), E.Change(noise=20),
        E.Change(square=(5, 6, 4))], 0)
    np.testing.assert_array_equal(bright, np.clip(small.astype(int) + 40, 0, 255))
    assert np.all(flat == 128)
    pattern = np.random.default_rng(0).standard_normal(small.shape)  # the same speckles, twice as strong
    np.testing.assert_array_equal(noisy, np.clip(np.round(small + 10 * pattern), 0, 255))
    np.testing.assert_array_equal(noisier, np.clip(np.round(small + 20 * pattern), 0, 255))
    assert E.square_box((5, 6, 4), small.shape[:2]) == (3, 4, 7, 8)
    assert np.all(covered[3:7, 4:8] == E.mean_colour(shipped))
    mask = np.ones(small.shape[:2], bool)
    mask[3:7, 4:8] = False
    np.testing.assert_array_equal(covered[mask], small[mask])
    assert E.square_box((0, 0, 5), (32, 32)) == (0, 0, 3, 3)  # clipped at the edge


def test_a_nudge_in_changed_pictures_is_fgsm_of_the_changed_picture(shipped, cat):
    small = fit_to_input(cat, shipped.input_size)
    plain, nudged = E.changed_pictures(shipped, small, [E.Change(brightness=10), E.Change(brightness=10, epsilon=3)], 3)
    np.testing.assert_array_equal(nudged, E.fgsm(shipped, plain, 3, 3))


# ---------------------------------------------------------------- what a filter looks for


def torch_map_gradients(model, stage, indices, x, torch, before_activation=False):
    xt = torch.from_numpy(np.array(x)).requires_grad_()
    k = stage_index(model, stage) - (1 if before_activation else 0)
    _, A = torch_run(torch_scores(model, torch)[:k + 1], xt, torch, keep=k)
    sum(A[n, f].mean() for n, f in enumerate(indices)).backward()
    return xt.grad.numpy()


@pytest.mark.parametrize("stage", ["conv1_2", "relu1_1", "maxpool1", "relu2_2"])
def test_map_gradients_are_pytorch_autograd(shipped, stage):
    torch = require_torch()
    x = np.stack([shipped.preprocess(picture(shipped, s)) for s in range(4)])
    indices = [0, 3, 7, 1]
    g = E.map_gradients(shipped, stage, indices, x)
    ref = torch_map_gradients(shipped, stage, indices, x, torch)
    np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_a_map_that_is_all_zero_climbs_the_map_before_its_relu(shipped):
    torch = require_torch()
    x = np.zeros((1, 3, 32, 32), np.float32)
    A = E.stage_maps(shipped, "relu1_1", x)[0]
    dark = [f for f in range(len(A)) if not A[f].any()]
    if not dark:
        pytest.skip("every map of relu1_1 lights up somewhere on a grey picture")
    g = E.map_gradients(shipped, "relu1_1", dark[:1], x)
    ref = torch_map_gradients(shipped, "relu1_1", dark[:1], x, torch, before_activation=True)
    assert np.abs(ref).max() > 0
    np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-6)


def test_each_favourite_picture_beats_every_sample_picture(shipped, sample_pictures):
    pictures = list(sample_pictures.values())
    for stage in STAGES:
        C = E.stage_maps(shipped, stage, shipped.preprocess(pictures[0])[None]).shape[1]
        indices = list(range(C)) if stage == "relu1_1" else list(range(0, C, 8))
        prefs = E.preferences(shipped, stage, indices)
        assert prefs.shape == (len(indices), 32, 32, 3) and prefs.dtype == np.uint8
        for f, pref in zip(indices, prefs):
            best = E.map_response(shipped, stage, f, pictures).max()
            assert E.map_response(shipped, stage, f, [pref])[0] > best, (stage, f)


def test_filter_preference_of_one_map_is_seeded_and_wins(shipped, sample_pictures):
    pref = E.filter_preference(shipped, "relu2_1", 6, steps=48, seed=3)
    assert pref.shape == (32, 32, 3) and pref.dtype == np.uint8
    np.testing.assert_array_equal(pref, E.filter_preference(shipped, "relu2_1", 6, steps=48, seed=3))
    assert E.map_response(shipped, "relu2_1", 6, [pref])[0] > \
        E.map_response(shipped, "relu2_1", 6, list(sample_pictures.values())).max()


def test_favourite_pictures_of_a_small_network_win_too():
    m = small_model()
    rivals = [picture(m, s) for s in range(8)]
    for stage in ("tanh1", "relu2", "conv3"):
        C = E.stage_maps(m, stage, m.preprocess(rivals[0])[None]).shape[1]
        for f, pref in enumerate(E.preferences(m, stage, steps=64)):
            assert E.map_response(m, stage, f, [pref])[0] > E.map_response(m, stage, f, rivals).max(), (stage, f)
        assert f == C - 1


def test_top_patches_are_where_pytorchs_maps_are_largest(shipped, sample_pictures):
    torch = require_torch()
    names = list(sample_pictures)
    smalls = np.stack([fit_to_input(sample_pictures[n], shipped.input_size) for n in names])
    for stage in STAGES:
        k = stage_index(shipped, stage)
        with torch.no_grad():
            _, A = torch_run(torch_scores(shipped, torch)[:k + 1], torch.from_numpy(shipped.normalize(smalls)), torch,
                             keep=k)
        maps = A.numpy()  # (N, C, H', W')
        below = shipped.layers[:k + 1]
        for f in (0, maps.shape[1] - 1):
            patches = E.top_patches(shipped, stage, f, sample_pictures, k=4)
            best = maps[:, f].reshape(len(names), -1).max(axis=1)  # each picture's largest value
            np.testing.assert_allclose([p.value for p in patches], np.sort(best)[::-1][:4], rtol=1e-4, atol=1e-5)
            assert len({p.picture for p in patches}) == 4  # one place per picture
            for p in patches:
                n = names.index(p.picture)
                assert maps[n, f, p.row, p.col] == pytest.approx(p.value, rel=1e-4, abs=1e-5)
                top, left, bottom, right = L.receptive_field(below, p.row, p.col)
                assert p.box == (max(top, 0), max(left, 0), min(bottom, 32), min(right, 32))
                np.testing.assert_array_equal(p.pixels, smalls[n][p.box[0]:p.box[2], p.box[1]:p.box[3]])


def test_deepest_patches_are_fourteen_pixels_wide_inside_the_picture(shipped):
    # 3, then 5 (two 3x3 filters), 6 (2x2 pooling), 10 and 14 (two more 3x3 filters on a grid twice as coarse)
    for i, j in ((4, 4), (7, 9)):
        top, left, bottom, right = L.receptive_field(shipped.layers[:stage_index(shipped, "relu2_2") + 1], i, j)
        assert (bottom - top, right - left) == (14, 14)


def test_top_patches_of_a_list_of_pictures_and_of_none(shipped):
    pics = [picture(shipped, s) for s in range(3)]
    patches = E.top_patches(shipped, "relu1_1", 2, pics, k=5, per_picture=2)
    assert len(patches) == 5 and {p.picture for p in patches} <= {"0", "1", "2"}
    assert [p.value for p in patches] == sorted((p.value for p in patches), reverse=True)
    assert E.top_patches(shipped, "relu1_1", 2, {}, k=3) == []


# ---------------------------------------------------------------- cache keys


def test_model_key_follows_the_weights_not_the_object(shipped):
    again = load_model()
    assert again is not shipped and E.model_key(again) == E.model_key(shipped)
    w = np.array(shipped.layer("conv1_1").params["weight"][0])
    w[0, 0, 0] += 1e-3
    edited = shipped.with_filter("conv1_1", 0, w)
    assert E.model_key(edited) != E.model_key(shipped)
    assert E.model_key(shipped.with_activation("tanh")) != E.model_key(shipped)
    assert E.model_key(replace(shipped, preprocessing={"mean": [0, 0, 0], "std": [1, 1, 1]})) != E.model_key(shipped)
