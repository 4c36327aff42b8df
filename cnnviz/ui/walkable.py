"""Which networks the walkthrough can show, step by step, and why it refuses the others.

These are the walkthrough's rules, not the core's: any network that `modelfile` accepts runs
and can be traced; the seven teaching steps are written for the Tiny-VGG layout.
"""

from __future__ import annotations

from cnnviz.layers import ACTIVATIONS
from cnnviz.model import Model, ModelError

TINY_VGG_CHANNELS = 64  # the most maps per conv layer the walkthrough shows
TINY_VGG_CLASSES = 100
TINY_VGG_INPUT = (16, 128)  # smallest and largest input side


def check_walkable(model: Model) -> None:
    """Raise ModelError unless `model` has the Tiny-VGG layout that the walkthrough teaches.

    That is the layout `model.tiny_vgg` builds (any channel counts, any activation): conv1_1, act1_1,
    conv1_2, act1_2, maxpool1, conv2_1, act2_1, conv2_2, act2_2, maxpool2, flatten, dense,
    softmax; 3x3 filters with stride 1 and padding 1, 2x2 pooling, at most TINY_VGG_CHANNELS
    maps a layer, TINY_VGG_CLASSES classes, and input sides from 16 to 128 that pool evenly.
    """
    act = model.layers[1].kind if len(model.layers) > 1 and model.layers[1].kind in ACTIVATIONS else "relu"
    want = [(f"conv{b}_{k}", "conv", f"{act}{b}_{k}", act) for b in (1, 2) for k in (1, 2)]
    names = [n for c, _, a, _ in want[:2] for n in (c, a)] + ["maxpool1"] \
        + [n for c, _, a, _ in want[2:] for n in (c, a)] + ["maxpool2", "flatten", "dense", "softmax"]
    kinds = ["conv", act] * 2 + ["maxpool"] + ["conv", act] * 2 + ["maxpool", "flatten", "dense", "softmax"]
    got = [(la.name, la.kind) for la in model.layers]
    if got != list(zip(names, kinds)):
        raise ModelError("the walkthrough can only show networks with the Tiny-VGG layout that cnnviz trains "
                         f"({', '.join(names)}); this one has {', '.join(n for n, _ in got[:16])}"
                         + (" ..." if len(got) > 16 else ""))
    for la in model.layers:
        if la.kind == "conv":
            F, _, KH, KW = la.params["weight"].shape
            if (KH, KW) != (3, 3) or la.options.get("stride", 1) != 1 or la.options.get("padding", 0) != 1:
                raise ModelError(f"the walkthrough needs 3x3 filters with stride 1 and padding 1; {la.name} has "
                                 f"{KH}x{KW} filters, stride {la.options.get('stride', 1)}, padding "
                                 f"{la.options.get('padding', 0)}")
            if F > TINY_VGG_CHANNELS:
                raise ModelError(f"{la.name} has {F} filters; the walkthrough shows at most {TINY_VGG_CHANNELS}")
        if la.kind == "maxpool" and (la.options.get("size", 2) != 2 or la.options.get("stride") not in (None, 2)):
            raise ModelError(f"the walkthrough needs 2x2 max pooling; {la.name} is different")
    lo, hi = TINY_VGG_INPUT
    if not all(lo <= s <= hi and s % 4 == 0 for s in model.input_size):
        raise ModelError(f"the walkthrough needs an input from {lo}x{lo} to {hi}x{hi} pixels, in steps of 4; "
                         f"this network takes {model.input_size[1]}x{model.input_size[0]}")
    if len(model.classes) > TINY_VGG_CLASSES:
        raise ModelError(f"this network knows {len(model.classes)} classes; the walkthrough shows at most "
                         f"{TINY_VGG_CLASSES}")
