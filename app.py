"""cnnviz: see how a small CNN classifies a picture, one stage at a time; train your own.

    python -m streamlit run app.py --server.address 127.0.0.1
"""

import streamlit as st

from cnnviz.ui.jobs import one_blas_thread_per_call
from cnnviz.ui.learn import render_learn
from cnnviz.ui.modelfile import render_modelfile
from cnnviz.ui.teach import render_teach
from cnnviz.ui.walkthrough import render_walkthrough

st.set_page_config(page_title="cnnviz: how a CNN sees", layout="wide")
one_blas_thread_per_call()

pages = [
    st.Page(render_walkthrough, title="Walkthrough", url_path="walkthrough", default=True),
    st.Page(render_learn, title="Watch it learn", url_path="learn"),
    st.Page(render_teach, title="Teach your own classes", url_path="teach"),
    st.Page(render_modelfile, title="Your own model file", url_path="model"),
]
st.navigation(pages).run()
