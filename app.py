"""cnnviz: see how a small CNN classifies a picture, one stage at a time; train your own.

    python -m streamlit run app.py --server.address 127.0.0.1
"""

import streamlit as st

from cnnviz.jobs import one_blas_thread_per_call
from cnnviz.ui.pages import all_pages

st.set_page_config(page_title="cnnviz: how a CNN sees", layout="wide")
one_blas_thread_per_call()

st.navigation(all_pages()).run()
