"""Step 3 with a network trained with another activation than ReLU (issue 10, defect 6).

An uploaded tanh network is not "switched" to tanh: the page must say what it really uses, offer the
other functions, and go back to tanh (not to ReLU) when asked.
"""

from __future__ import annotations

from cnnviz.model import tiny_vgg
from tests.apptest import APP, AppTest, banner


def tanh_network():
    return tiny_vgg(["a", "b", "c"], (4, 4, 8, 8), input_size=(32, 32), seed=2, activation="tanh")


def texts(at) -> str:
    return " ".join([m.value for m in at.markdown] + [w.value for w in at.warning] + [i.value for i in at.info]
                    + [c.value for c in at.caption])


def test_a_tanh_network_is_said_to_use_tanh_and_goes_back_to_tanh():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["own_model"], at.session_state["own_model_label"] = tanh_network(), "tanh net"
    at.session_state["step"] = 3
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "trained with ReLU" not in texts(at) and "instead of ReLU right now" not in texts(at)
    assert any("trained with **tanh**" in i.value for i in at.info)
    assert not at.warning and "with your edits" not in banner(at)

    at.segmented_control(key="relu_compare").set_value("relu").run()
    assert "learned its weights with tanh" in texts(at)
    at.button(key="relu_use_other").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["activation"] == "relu" and "with your edits" in banner(at)
    warning = " ".join(w.value for w in at.warning)
    assert "uses **ReLU** instead of tanh" in warning and "trained with tanh" in warning

    back = at.button(key="relu_back_top")
    assert back.label == "Go back to tanh"
    back.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["activation"] == "tanh" and "with your edits" not in banner(at)
