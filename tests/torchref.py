"""PyTorch as the reference: `torch = require_torch()` in a test, and the PyTorch twin of a cnnviz model.

Outside CI a missing torch skips the comparison, with the reason in pytest's summary. With `CI` set
(to anything but "", "0" or "false") it fails instead, so CI cannot go green without the comparisons;
the browser tests treat a missing Chromium the same way (tests/e2e/conftest.py uses `in_ci` too).

The benchmarks import `torch_layers` from here (benchmarks/common.py); tests never import benchmarks.
Nothing here imports pytest or torch at import time, so a benchmark needs neither to load this module.
"""

from __future__ import annotations

import os

import numpy as np

INSTALL = "python -m pip install torch==2.13.0"


def in_ci() -> bool:
    """True when the environment says this is CI: `CI` set to a value other than "", "0" or "false"."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def unavailable(reason: str, what: str) -> None:
    """Skip the test for `reason`; with CI set, fail it instead (`what` may not be skipped there)."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI is set, so {what} may not be skipped)", pytrace=False)
    pytest.skip(reason)


def require_torch():
    """The torch module, or a skip (a failure in CI) with the reason when it cannot be imported."""
    try:
        import torch
    except ImportError as e:
        unavailable(f"torch is not installed ({e}): {INSTALL}", "the PyTorch comparisons")
    return torch


def torch_layers(model, torch, dtype=None):
    """The layers of a cnnviz Model as a list of torch.nn modules holding the same weights."""
    nn = torch.nn
    mods = []
    for la in model.layers:
        p, o = la.params, la.options
        if la.kind == "conv":
            F, C, KH, KW = p["weight"].shape
            mod = nn.Conv2d(C, F, (KH, KW), stride=o.get("stride", 1), padding=o.get("padding", 0))
        elif la.kind == "dense":
            mod = nn.Linear(p["weight"].shape[1], p["weight"].shape[0])
        elif la.kind in ("maxpool", "avgpool"):
            mod = (nn.MaxPool2d if la.kind == "maxpool" else nn.AvgPool2d)(o.get("size", 2), o.get("stride"))
        elif la.kind == "softmax":
            mod = nn.Softmax(dim=1)
        else:
            mod = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "flatten": nn.Flatten}[la.kind]()
        with torch.no_grad():
            for k, v in p.items():
                getattr(mod, k).copy_(torch.from_numpy(np.array(v)))
        mods.append(mod if dtype is None else mod.to(dtype))
    return mods
