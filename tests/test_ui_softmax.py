"""Step 7 (softmax) shows the stable computation that layers.softmax does, for any legal scores.

Issue 10, defect 2: scores all below about -745 (a model file with a dense bias of -900) made every
exp(score) round to 0 and the page show nan%. The view must subtract the largest score first, say so in
plain words, and its numbers must be the traced probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz import layers as L
from cnnviz import samples
from cnnviz.images import load_image
from cnnviz.model import Layer, load_model, trace
from cnnviz.ui import softmax
from cnnviz.ui.state import DEFAULT_SAMPLE
from tests.apptest import APP, AppTest


def shifted_dense(model, shift: float):
    """The model with `shift` added to every dense bias: every class score moves by the same amount."""
    dense = model.layer("dense")
    params = {"weight": dense.params["weight"], "bias": dense.params["bias"] + np.float32(shift)}
    return model.with_layer("dense", Layer("dense", "dense", params, dense.options))


@pytest.mark.parametrize("logits", [
    np.array([-900.0, -905.0, -899.5, -950.0]),  # every exp(score) alone rounds to 0
    np.array([1000.0, 990.0, 1001.0, -3.0]),  # every big exp(score) alone overflows
    np.array([0.3, -1.2, 2.5, 0.0]),
])
def test_softmax_table_is_the_layers_softmax_for_any_scores(logits):
    t = softmax.softmax_table(logits)
    assert t["shift"] == logits.max()
    np.testing.assert_array_equal(t["shifted"], logits - logits.max())
    assert np.all(np.isfinite(t["exps"])) and t["exps"].max() == 1.0 and t["total"] >= 1.0
    np.testing.assert_allclose(t["probs"], L.softmax(logits), rtol=1e-12)
    np.testing.assert_allclose(t["exps"] / t["total"], t["probs"])


def test_softmax_step_with_scores_far_below_zero_matches_the_trace():
    model = shifted_dense(load_model(), -900.0)
    stages = trace(model, load_image(samples.sample_path(DEFAULT_SAMPLE)))
    scores, probs = stages[-2].output, stages[-1].output
    assert scores.max() < -745  # exp of any one score alone is 0 in float64: the case that showed nan%

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["own_model"], at.session_state["own_model_label"] = model, "very low scores"
    at.session_state["step"] = 7
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    table = at.dataframe[0].value
    np.testing.assert_allclose(table["score"].to_numpy(), scores, rtol=1e-6)
    np.testing.assert_allclose(table["probability"].to_numpy(), probs, rtol=1e-5, atol=1e-7)  # was nan
    np.testing.assert_allclose(table["score − largest"].to_numpy(), scores.astype(np.float64) - scores.max(),
                               atol=1e-4)
    assert np.all(np.isfinite(table["exp(score − largest)"].to_numpy()))
    shown = " ".join(m.value for m in at.markdown) + " ".join(s.value for s in at.success)
    assert "nan" not in shown.lower()
    top = int(np.argmax(probs))
    assert any(f"The network's answer: {model.classes[top]}," in s.value for s in at.success)
    checks = next(m.value for m in at.markdown if "network's own output" in m.value)
    assert checks.count("✓") == 2 and "✗" not in checks
    assert any("Subtract the largest score from every score first; it changes nothing" in m.value
               for m in at.markdown)
