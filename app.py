"""cnnviz: see how a small CNN classifies a picture, one stage at a time; train your own.

    python -m streamlit run app.py --server.address 127.0.0.1
"""

import streamlit as st

from cnnviz.ui.walkthrough import render_walkthrough

st.set_page_config(page_title="cnnviz: how a CNN sees", layout="wide")

pages = [
    st.Page(render_walkthrough, title="Walkthrough", url_path="walkthrough", default=True),
]
st.navigation(pages).run()
