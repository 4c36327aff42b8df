"""cnnviz: see how a small CNN classifies a picture, one stage at a time.

    python -m streamlit run app.py --server.address 127.0.0.1
"""

import streamlit as st

from cnnviz.ui import sidebar, state, steps
from cnnviz.ui.common import PRESENTATION_CSS, fmt_prob

st.set_page_config(page_title="cnnviz: how a CNN sees", layout="wide")

state.init_from_url()
presentation = sidebar.render_sidebar()
if presentation:
    st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)
ctx = state.build_context(presentation)

step = st.session_state["step"]
nav_prev, nav_title, nav_next = st.columns([1, 6, 1], vertical_alignment="center")
nav_prev.button("Previous", on_click=state.go, args=(-1,), disabled=step == 1, width="stretch")
nav_next.button("Next", on_click=state.go, args=(1,), disabled=step == len(state.STEPS), width="stretch",
                type="primary")
nav_title.markdown(steps.indicator(step), unsafe_allow_html=True)

p = ctx.probabilities
top = int(p.argmax())
note = " (with your edits)" if ctx.edited else ""
st.info(f"**Prediction{note}: {ctx.model.classes[top]}** ({fmt_prob(p[top])})")

st.header(f"{step}. {state.STEPS[step - 1]}")
steps.VIEWS[steps.KINDS[step - 1]](ctx)
state.write_url()
