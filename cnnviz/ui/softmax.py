"""Step 7, softmax: the class scores become shares that add up to 100%, and the biggest share is the answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz import render
from cnnviz.ui.common import explain, fmt_prob, show

INTRO = """
The scores can be any numbers, even negative ones. **Softmax** turns them into shares of 100%:

1. Take **exp** of each score (e ≈ 2.718 multiplied by itself "score" times). The result is always positive,
   and a score just 1 higher gives a number almost 3 times bigger, so **bigger scores get much bigger shares**.
2. Add all these numbers up.
3. Each class's share is its number divided by the total. All shares **add up to 100%**.
"""


def softmax_table(logits: np.ndarray) -> dict:
    """Softmax written out step by step for display, in float64. logits (K,) -> exps (K,), total, probs (K,).

    Very large scores would overflow exp, so then every score is first lowered by the largest one
    (`shift`); the shares do not change, since the common factor cancels out.
    """
    z = logits.astype(np.float64)
    shift = float(z.max()) if z.max() > 50 else 0.0
    e = np.exp(z - shift)  # (K,)
    total = float(e.sum())
    return {"exps": e, "total": total, "probs": e / total, "shift": shift}


def render_softmax(ctx) -> None:
    """Draw step 7: the table of exp(score) / sum, the sorted chart, the answer, and the checks."""
    logits = next(s for s in reversed(ctx.stages) if s.kind == "dense").output
    classes, probs = ctx.model.classes, ctx.probabilities
    t = softmax_table(logits)
    winner = int(np.argmax(t["probs"]))
    explain(INTRO)
    st.success(f"### The network's answer: {classes[winner]}, {fmt_prob(t['probs'][winner])}")

    chart = _sorted_chart(classes, t["probs"], ctx.presentation)
    if ctx.presentation:  # the chart first and wide, the table under it
        show(chart, "All classes, most likely first")
        _table(classes, logits, t)
    else:
        left, right = st.columns([1.1, 1])
        with left:
            _table(classes, logits, t)
        with right:
            show(chart, "All classes, most likely first")

    same = np.allclose(t["probs"], probs, rtol=1e-4, atol=1e-6)
    adds_up = np.isclose(t["probs"].sum(), 1.0) and np.isclose(float(np.sum(probs, dtype=np.float64)), 1.0)
    st.markdown(f"{'✓' if same else '✗'} These shares are the network's own output (the **{ctx.stages[-1].name}** "
                f"layer).  \n{'✓' if adds_up else '✗'} They add up to {t['probs'].sum():.0%}.")
    if not ctx.presentation:
        st.caption(f"The network only knows these {len(classes)} classes, so it always picks one of them, even for "
                   "a picture of something else. A low top share means it is unsure.")


def _sorted_chart(classes, probs: np.ndarray, presentation: bool):
    order = np.argsort(-probs)
    width, bar_h = (760, 30) if presentation else (400, 24)  # bar_chart fits longer names in 30-pixel rows
    return render.bar_chart([classes[k] for k in order], probs[order], highlight=0, width=width, bar_h=bar_h)


def _table(classes, logits: np.ndarray, t: dict) -> None:
    """One row per class: score, exp(score), exp ÷ sum = probability."""
    exp_head = "exp(score)" if not t["shift"] else f"exp(score − {t['shift']:.1f})"
    table = pd.DataFrame({
        "class": classes,
        "score": logits.astype(np.float64),
        exp_head: t["exps"],
        "exp ÷ sum": [f"{e:.4g} ÷ {t['total']:.4g} =" for e in t["exps"]],
        "probability": t["probs"],
    })
    st.dataframe(table, hide_index=True, key="sm_table", height=36 + 35 * len(classes),
                 column_config={"score": st.column_config.NumberColumn(format="%.3f"),
                                exp_head: st.column_config.NumberColumn(format="%.4g"),
                                "probability": st.column_config.NumberColumn(format="percent")})
    st.markdown(f"Sum of the exp column: **{t['total']:.4g}**")
