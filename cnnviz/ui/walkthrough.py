"""The walkthrough page: a picture, then every stage of the network one step at a time."""

from __future__ import annotations

import streamlit as st

from cnnviz.ui import sidebar, state, steps
from cnnviz.ui.common import PRESENTATION_CSS, fmt_prob, page_script


def render_walkthrough() -> None:
    state.init_from_url()
    presentation = sidebar.render_sidebar()
    if presentation:
        st.html(PRESENTATION_CSS)  # only a style: takes no room on the page
    ctx = state.build_context(presentation)

    step = st.session_state["step"]
    # The keys name the buttons for the page script, which keeps the keyboard focus on them.
    page_script(announce=f"Step {step} of {len(state.STEPS)}: {state.STEPS[step - 1]}")
    nav_prev, nav_title, nav_next = st.columns([1, 6, 1], vertical_alignment="center")
    nav_prev.button("Previous", on_click=state.go, args=(-1,), disabled=step == 1, width="stretch", key="nav_prev")
    nav_next.button("Next", on_click=state.go, args=(1,), disabled=step == len(state.STEPS), width="stretch",
                    type="primary", key="nav_next")
    nav_title.markdown(steps.indicator(step), unsafe_allow_html=True)

    p = ctx.probabilities
    top = int(p.argmax())
    note = " (with your edits)" if ctx.edited else ""
    whose = "" if state.own_model_label() is None else f" · network: {state.own_model_label()}"
    st.info(f"**Prediction{note}: {ctx.model.classes[top]}** ({fmt_prob(p[top])}){whose}")

    st.header(f"{step}. {state.STEPS[step - 1]}")
    steps.VIEWS[steps.KINDS[step - 1]](ctx)
    state.write_url()
