"""Step 7, softmax: the class scores become shares that add up to 100%, and the biggest share is the answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnnviz import render
from cnnviz.ui import describe as D
from cnnviz.ui.common import fmt_prob, show

INTRO = """
The scores can be any numbers, even negative ones. **Softmax** turns them into shares of 100%:

1. **Subtract the largest score from every score first; it changes nothing** in the shares below, and it
   keeps the numbers in step 2 small enough for a computer (the largest becomes 0, the others negative).
2. Take **exp** of each of these (e ≈ 2.718 multiplied by itself that many times). The result is always
   positive, and a score just 1 higher gives a number almost 3 times bigger, so **bigger scores get much
   bigger shares**.
3. Add all these numbers up.
4. Each class's share is its number divided by the total. All shares **add up to 100%**.
"""

WHY_SHIFT = """
**Why subtracting changes nothing:** taking away the same number from every score divides every exp by
the same amount, and so it divides their total by that amount too: each share stays exactly the same.
**Why do it at all:** exp of a big score is too big for a computer (exp(1000) overflows), and exp of a
very negative one rounds to 0 (exp(-1000) is 0 for a computer, and 0 ÷ 0 is not a number). After the
subtraction the largest score is 0, its exp is 1, so the total is always at least 1. It is exactly what
the network's own softmax layer does.
"""


def softmax_table(logits: np.ndarray) -> dict:
    """Softmax written out step by step for display, in float64, the way `layers.softmax` computes it.

    logits (K,) -> shift (the largest score), shifted (K,) = logits - shift, exps (K,), total, probs (K,).
    Subtracting the largest score first keeps exp from overflowing or every exp from rounding to 0
    (all scores below about -745); the shares do not change, since the common factor cancels out.
    """
    z = logits.astype(np.float64)
    shift = float(z.max())
    shifted = z - shift  # (K,), the largest is 0
    e = np.exp(shifted)  # (K,), the largest is 1, so the total is at least 1
    total = float(e.sum())
    return {"shift": shift, "shifted": shifted, "exps": e, "total": total, "probs": e / total}


def render_softmax(ctx) -> None:
    """Draw step 7: the table of exp(score) / sum, the sorted chart, the answer, and the checks."""
    logits = next(s for s in reversed(ctx.stages) if s.kind == "dense").output
    classes, probs = ctx.model.classes, ctx.probabilities
    t = softmax_table(logits)
    winner = int(np.argmax(t["probs"]))
    st.markdown(INTRO)
    st.success(f"### The network's answer: {classes[winner]}, {fmt_prob(t['probs'][winner])}")

    chart = _sorted_chart(classes, t["probs"], ctx.presentation)
    order = np.argsort(-t["probs"])
    names, shares = [classes[k] for k in order], t["probs"][order]
    alt = D.describe_bars(names, shares, "Bars, one per class, most likely first", limit=len(names))
    if ctx.presentation:  # the chart first and wide, the table under it
        show(chart, "All classes, most likely first", alt)
        _table(classes, logits, t)
    else:
        left, right = st.columns([1.1, 1])
        with left:
            _table(classes, logits, t)
        with right:
            show(chart, "All classes, most likely first", alt)

    same = np.allclose(t["probs"], probs, rtol=1e-4, atol=1e-6)
    adds_up = np.isclose(t["probs"].sum(), 1.0) and np.isclose(float(np.sum(probs, dtype=np.float64)), 1.0)
    st.markdown(f"{'✓' if same else '✗'} These shares are the network's own output (the **{ctx.stages[-1].name}** "
                f"layer).  \n{'✓' if adds_up else '✗'} They add up to {t['probs'].sum():.0%}.")
    with st.expander("Why subtract the largest score first?"):
        st.markdown(WHY_SHIFT)
    if not ctx.presentation:
        st.caption(f"The network only knows these {len(classes)} classes, so it always picks one of them, even for "
                   "a picture of something else. A low top share means it is unsure.")


def _sorted_chart(classes, probs: np.ndarray, presentation: bool):
    order = np.argsort(-probs)
    width, bar_h = (760, 30) if presentation else (400, 24)  # bar_chart fits longer names in 30-pixel rows
    return render.bar_chart([classes[k] for k in order], probs[order], highlight=0, width=width, bar_h=bar_h)


def _table(classes, logits: np.ndarray, t: dict) -> None:
    """One row per class: score, score minus the largest, its exp, exp ÷ sum = probability."""
    table = pd.DataFrame({
        "class": classes,
        "score": logits.astype(np.float64),
        "score − largest": t["shifted"],
        "exp(score − largest)": t["exps"],
        "exp ÷ sum": [f"{e:.4g} ÷ {t['total']:.4g} =" for e in t["exps"]],
        "probability": t["probs"],
    })
    st.dataframe(table, hide_index=True, key="sm_table", height=36 + 35 * len(classes),
                 column_config={"score": st.column_config.NumberColumn(format="%.3f"),
                                "score − largest": st.column_config.NumberColumn(format="%.3f"),
                                "exp(score − largest)": st.column_config.NumberColumn(format="%.4g"),
                                "probability": st.column_config.NumberColumn(format="percent")})
    st.markdown(f"The largest score is **{t['shift']:.3f}**. Sum of the exp column: **{t['total']:.4g}**")
