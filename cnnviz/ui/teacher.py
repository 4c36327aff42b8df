"""Run a class, join a class: check for understanding with a whole room.

The teacher's page starts a class (a join code for the board, and a QR code that opens the join page
with the code filled in), picks the picture and the step everyone follows, watches the answers come
in, reveals them, hands out a printable worksheet, and ends the class. The students' page joins with
the code and a nickname (optional), shows the question of the step the teacher picked (built from
that picture's real numbers, cnnviz.questions), keeps the first answer, and shows the class's
answers once the teacher reveals them. Everything a class shares lives in cnnviz.classroom's store.
"""

from __future__ import annotations

import io
import secrets
from urllib.parse import urlencode, urlsplit

import qrcode
import streamlit as st

from cnnviz import classroom, handout, questions, render, samples
from cnnviz.classroom import ClassroomError
from cnnviz.images import fit_to_input
from cnnviz.ui import state
from cnnviz.ui.common import fmt_prob

REFRESH = 2.0  # seconds between refreshes of the live counts and of a student's page
TEACHER, STUDENT, CLIENT = "class_teacher", "class_student", "class_client"  # session keys
QUESTION_STEPS = tuple(questions.GENERATORS)  # the steps that have a question


@st.cache_resource(show_spinner=False)
def class_store() -> classroom.Store:
    """One store per server process (CNNVIZ_DATABASE_URL, or an SQLite file in the user's cache)."""
    return classroom.Store()


@st.cache_resource(show_spinner=False, max_entries=32)
def class_questions(picture: str) -> dict:
    """{step: Question} for a sample picture and the shipped network: the same for every student."""
    return questions.for_picture(state.default_model(), state.sample_picture(picture))


@st.cache_data(show_spinner=False, max_entries=16)
def worksheet(picture: str) -> bytes:
    return handout.worksheet_pdf(state.default_model(), state.sample_picture(picture), picture)


@st.cache_data(show_spinner=False, max_entries=64)
def qr_png(text: str) -> bytes:
    qr = qrcode.QRCode(border=2, box_size=8)
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    return buf.getvalue()


def join_url(page_url: str | None, code: str) -> str | None:
    """The join page's address with the code filled in, from the address of the page the teacher has open."""
    if not page_url:
        return None
    u = urlsplit(page_url)
    if u.scheme not in ("http", "https") or not u.netloc:
        return None
    base = u.path.rsplit("/", 1)[0]
    return f"{u.scheme}://{u.netloc}{base}/join?{urlencode({'code': code})}"


def answer_text(q, response) -> str:
    """A recorded response in words: the choice(s) it names, or the number."""
    if q.kind == "number":
        return str(response)
    if q.multiple:
        picked = [q.choices[k] for k in response if isinstance(k, int) and 0 <= k < len(q.choices)]
        return ", ".join(picked) if picked else "none of them"
    return q.choices[response] if isinstance(response, int) and 0 <= response < len(q.choices) else str(response)


def right_answer(q) -> str:
    if q.kind == "number":
        return f"{q.answer:.2f} (within {q.tolerance:.2f})"
    return answer_text(q, q.answer)


# ---------------------------------------------------------------- the teacher


def render_teacher() -> None:
    st.title("Run a class")
    store = class_store()
    secret = st.session_state.get(TEACHER)
    if secret is None:
        _start(store)
        return
    try:
        status = store.status(secret)
    except ClassroomError:
        del st.session_state[TEACHER]
        st.warning("This class has ended (after two hours a class ends by itself). Start a new one.")
        _start(store)
        return
    _board(status)
    picture, step = _follow_me(store, secret, status)
    _live_counts(secret, picture, step)
    _teacher_tools(store, secret, picture)


def _start(store) -> None:
    st.markdown("Start a class, put its code on the board, and your students join on the **Join a class** "
                "page. Pick a picture and a step: every student sees the same question, built from that "
                "picture's numbers, answers it on their own screen, and you reveal the answers when you like. "
                "A class ends after two hours, or when you end it; then its answers are deleted.")
    if st.button("Start a class", type="primary"):
        st.session_state[TEACHER] = store.start_class().teacher_secret
        st.rerun()
    with st.expander("Go back to a class you started"):
        with st.form("reopen"):
            key = st.text_input("Teacher key", type="password", max_chars=100)
            if st.form_submit_button("Open the class"):
                try:
                    store.status(key)
                except ClassroomError as e:
                    st.error(str(e))
                else:
                    st.session_state[TEACHER] = key
                    st.rerun()


def _board(status) -> None:
    left, right = st.columns([2, 1])
    with left:
        st.markdown(f"Join code: <span style='font-size:3rem;font-weight:700;letter-spacing:0.15em'>"
                    f"{classroom.format_code(status.code)}</span>", unsafe_allow_html=True)
        st.markdown("On the **Join a class** page.")
    with right:
        url = join_url(st.context.url, status.code)
        if url:
            st.image(qr_png(url), width=180, output_format="PNG", caption="Scan to join")


def _follow_me(store, secret: str, status) -> tuple[str, int]:
    """The picture and step the class follows (changed here, kept in the store for the students)."""
    names = samples.sample_names()
    default = status.picture if status.picture in names else state.DEFAULT_SAMPLE
    left, right = st.columns(2)
    picture = left.selectbox("Picture for everyone", names, index=names.index(default), key="class_picture")
    steps = list(range(1, len(state.STEPS) + 1))
    step = right.selectbox("Step for everyone", steps, index=(status.step or 1) - 1, key="class_step",
                           format_func=lambda k: f"{k}. {state.STEPS[k - 1]}")
    if (picture, step) != (status.picture, status.step):
        store.follow(secret, step, picture)
    return picture, step


@st.fragment(run_every=REFRESH)
def _live_counts(secret: str, picture: str, step: int) -> None:
    q = class_questions(picture).get(step)
    if q is None:
        st.info("This step has no question: the class follows along on the screen.")
        return
    store = class_store()
    try:
        t = store.tally(secret, q.id)
        status = store.status(secret)
    except ClassroomError:
        st.warning("This class has ended.")
        return
    revealed = q.id in status.revealed
    st.markdown(f"Students in the class: **{status.students}**.")
    st.subheader("The question")
    st.markdown(q.prompt)
    share = "" if t.share_right is None else f", {fmt_prob(t.share_right)} of them right"
    st.markdown(f"**{t.answered}** answered{share}.")
    if q.kind == "choice":
        rows = {answer_text(q, r): n for r, n in sorted(t.counts.items(), key=lambda kv: -kv[1])}
        if rows:
            st.dataframe({"answer": list(rows), "students": list(rows.values())}, hide_index=True)
    if not revealed and st.button("Reveal the answer", type="primary"):
        store.reveal(secret, q.id)
        revealed = True
    if revealed:
        st.success(f"Answer: {right_answer(q)}. {q.reason}")


def _teacher_tools(store, secret: str, picture: str) -> None:
    st.divider()
    st.download_button("Worksheet for this picture (PDF)", worksheet(picture), f"worksheet-{picture}.pdf",
                       "application/pdf")
    with st.expander("Nicknames"):
        names = store.nicknames(secret)
        st.text("\n".join(names) if names else "Nobody gave a nickname yet.")  # st.text: never markup
    with st.expander("Teacher key (do not show it on the board)"):
        st.markdown("With this key you can go back to the class from another tab or after a reload.")
        st.code(secret, language=None)
    if st.button("End the class and delete its answers"):
        store.end_class(secret)
        del st.session_state[TEACHER]
        st.rerun()


# ---------------------------------------------------------------- the students


def client_key() -> str:
    """Who is trying codes, for the store's limit on wrong codes: this browser session, never an address.

    (A school behind one address would lock every student out after ten typos between them.)
    """
    return st.session_state.setdefault(CLIENT, secrets.token_hex(16))


def render_join() -> None:
    st.title("Join a class")
    store = class_store()
    token = st.session_state.get(STUDENT)
    if token is None:
        _join_form(store)
        return
    _in_class(token)


def _join_form(store) -> None:
    typed = str(st.query_params.get("code", ""))[:20]
    with st.form("join"):
        code = st.text_input("Class code (from the board)", value=typed, max_chars=20)
        nickname = st.text_input("Nickname (optional; not your real name)", max_chars=20)
        if st.form_submit_button("Join", type="primary"):
            try:
                st.session_state[STUDENT] = store.join(code, nickname or None, client_key=client_key())
            except ClassroomError as e:
                st.error(str(e))
            else:
                st.rerun()


@st.fragment(run_every=REFRESH)
def _in_class(token: str) -> None:
    store = class_store()
    try:
        following = store.following(token)
    except ClassroomError as e:
        st.warning(str(e))
        if st.button("Join another class"):
            del st.session_state[STUDENT]
            st.rerun()
        return
    if following.step is None or following.picture is None:
        st.info("You are in. Wait for your teacher to pick a picture and a step.")
        return
    st.markdown(f"Your teacher is on step **{following.step}. {state.STEPS[following.step - 1]}**.")
    small = fit_to_input(state.sample_picture(following.picture), state.default_model().input_size)
    st.image(render.upscale(small, 160), output_format="PNG", caption="The picture as the network sees it")
    q = class_questions(following.picture).get(following.step)
    if q is None:
        st.info("No question on this step: follow along on the screen.")
        return
    st.markdown(q.prompt)
    mine = store.my_answers(token).get(q.id)
    if mine is None and _answer_form(store, token, q):
        mine = store.my_answers(token).get(q.id)
    if mine is None:
        return
    st.markdown(f"Your answer: **{answer_text(q, mine.response)}**")
    try:
        t = store.revealed_tally(token, q.id)
    except ClassroomError:
        st.info("Your teacher will show the answers soon.")
        return
    (st.success if mine.correct else st.error)(f"{'Right' if mine.correct else 'Not this time'}: the answer is "
                                                f"{right_answer(q)}. {q.reason}")
    if t.share_right is not None:
        st.markdown(f"In the class, {t.right} of {t.answered} got it right.")


def _answer_form(store, token: str, q) -> bool:
    """The question's answer box -> whether an answer was just recorded."""
    with st.form(f"answer-{q.id}"):
        if q.kind == "number":
            response = st.number_input("Your answer", value=None, step=0.01, format="%.2f")
        elif q.multiple:
            response = st.multiselect("Pick every right one", range(len(q.choices)),
                                      format_func=lambda k: f"{k + 1}: {q.choices[k]}")
        else:
            response = st.radio("Your answer", range(len(q.choices)), index=None,
                                format_func=lambda k: q.choices[k])
        if not st.form_submit_button("Send my answer", type="primary"):
            return False
    if response is None:
        st.warning("Pick or type an answer first.")
        return False
    try:
        store.record(token, q.id, response, questions.check(q, response))
    except ClassroomError as e:
        st.error(str(e))
        return False
    return True
