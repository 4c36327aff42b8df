"""The Run a class and Join a class pages, driven with AppTest: a teacher and a student in one class
(an SQLite store in a temporary folder), from the join code to the revealed answer and the end."""

import pytest

from cnnviz import questions
from cnnviz.ui import teacher as T
from tests.apptest import AppTest


def teacher_script():
    from cnnviz.ui.teacher import render_teacher

    render_teacher()


def student_script():
    from cnnviz.ui.teacher import render_join

    render_join()


@pytest.fixture(autouse=True)
def fresh_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_DATABASE_URL", f"sqlite:///{tmp_path / 'classroom.sqlite'}")
    T.class_store.clear()
    yield
    T.class_store().close()
    T.class_store.clear()


def start(script):
    return AppTest.from_function(script, default_timeout=60).run()


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_a_teacher_and_a_student_from_join_code_to_reveal():
    teacher = start(teacher_script)
    button(teacher, "Start a class").click().run()
    secret = teacher.session_state[T.TEACHER]
    status = T.class_store().status(secret)
    assert any(T.classroom.format_code(status.code) in m.value for m in teacher.markdown)
    assert (status.picture, status.step) == ("cat-chelsea", 1)  # the page's picture and step, for everyone

    student = start(student_script)
    student.text_input[0].set_value(status.code.lower())
    student.text_input[1].set_value("<b>Sam</b>")
    button(student, "Join").click().run()
    assert T.STUDENT in student.session_state
    q = T.class_questions("cat-chelsea")[1]
    assert any(q.prompt in m.value for m in student.markdown)

    student.radio[0].set_value(q.answer)
    button(student, "Send my answer").click().run()
    assert any("Your answer" in m.value for m in student.markdown)
    assert any("will show the answers soon" in i.value for i in student.info)

    teacher.run()
    assert any("**1** answered, 100% of them right" in m.value for m in teacher.markdown)
    assert any("<b>Sam</b>" in t.value for t in teacher.text)  # as text, never as markup
    button(teacher, "Reveal the answer").click().run()
    student.run()
    assert any(s.value.startswith("Right") for s in student.success)

    button(teacher, "End the class and delete its answers").click().run()
    assert T.TEACHER not in teacher.session_state
    student.run()
    assert student.warning and "not in a running class" in student.warning[0].value


def test_a_wrong_code_says_so_and_the_qr_points_at_the_join_page():
    student = start(student_script)
    student.text_input[0].set_value("WRONG123")
    button(student, "Join").click().run()
    assert "No class with this code" in student.error[0].value
    assert T.STUDENT not in student.session_state
    assert T.join_url("http://school.example:8501/class", "K7QMX3RT") == "http://school.example:8501/join?code=K7QMX3RT"
    assert T.join_url("https://x.example/cnnviz/class?a=1", "AB") == "https://x.example/cnnviz/join?code=AB"
    assert T.join_url("javascript:alert(1)", "AB") is None and T.join_url(None, "AB") is None
    assert T.qr_png("http://x/join?code=AB").startswith(b"\x89PNG")


def test_a_number_question_is_answered_with_a_number():
    teacher = start(teacher_script)
    button(teacher, "Start a class").click().run()
    teacher.selectbox(key="class_step").set_value(2).run()
    code = T.class_store().status(teacher.session_state[T.TEACHER]).code
    student = start(student_script)
    student.text_input[0].set_value(code)
    button(student, "Join").click().run()
    q = T.class_questions("cat-chelsea")[2]
    assert q.kind == "number"
    student.number_input[0].set_value(round(q.answer + 5 * q.tolerance, 2))
    button(student, "Send my answer").click().run()
    answers = T.class_store().my_answers(student.session_state[T.STUDENT])
    assert answers[q.id].correct is False and not questions.check(q, answers[q.id].response)
