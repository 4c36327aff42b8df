"""The class store against SQLite and PostgreSQL: the whole life of a class, hostile inputs, limits
(with a clock the tests step, never sleep) and twenty threads answering at once.

PostgreSQL: CNNVIZ_TEST_POSTGRES_URL names a database the tests may create schemas in (each test
gets its own schema, dropped afterwards). Without it these tests skip with the reason, except in CI
(tests/torchref.py's rule), where they fail: .ci/run starts a server and sets the variable.
"""

import os
import secrets
import threading
import uuid

import pytest
import sqlalchemy as sa

from cnnviz import classroom as C
from cnnviz.classroom import BadInput, Limits, NotAllowed, NotFound, Store, TooMany
from tests.torchref import unavailable

POSTGRES_ENV = "CNNVIZ_TEST_POSTGRES_URL"
ADDRESS = "203.0.113.7"  # a documentation address standing in for a student's


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def postgres():
    """(url, engine options) for a fresh schema of the test PostgreSQL database, dropped afterwards."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        unavailable(f"{POSTGRES_ENV} is not set: no PostgreSQL to test the class store against "
                    "(see .ci/run for how CI starts one)", "the PostgreSQL tests")
    url = C.normalise_url(url)
    schema = f"cnnviz_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    try:
        with admin.begin() as c:
            c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as e:
        admin.dispose()
        unavailable(f"cannot reach the PostgreSQL of {POSTGRES_ENV}: {str(e.orig).strip()[:200]}",
                    "the PostgreSQL tests")
    yield url, {"connect_args": {"options": f"-csearch_path={schema}"}}
    with admin.begin() as c:
        c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'classroom.sqlite'}", {}
    return request.getfixturevalue("postgres")


@pytest.fixture
def make_store(database):
    """make_store(clock=None, limits=None) -> a Store on the test database; every store closed after."""
    url, options = database
    made = []

    def make(clock=None, limits=None):
        store = Store(url, clock=clock or Clock(), limits=limits or Limits(), engine_options=options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(make_store, clock):
    return make_store(clock)


def every_row(store) -> list[tuple]:
    with store.engine.begin() as c:
        return [(t.name, *row) for t in C.metadata.sorted_tables for row in c.execute(sa.select(t))]


def rows_of(store, table) -> int:
    with store.engine.begin() as c:
        return c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


# ---------------------------------------------------------------- a class from start to end


def test_a_class_from_start_to_end(store, clock):
    new = store.start_class()
    assert new.expires_at == clock() + 2 * 3600
    sam = store.join(C.format_code(new.code).lower(), "Sam", client_key=ADDRESS)
    kim = store.join(f" {new.code[:4]} {new.code[4:]} ", client_key=ADDRESS)
    ali = store.join(new.code, "Ali", client_key="another")
    assert store.record(sam, "s4-abc", 2, True)
    assert store.record(kim, "s4-abc", 1, False)
    assert store.record(ali, "s4-abc", 2, True)
    assert store.record(sam, "s3-def", [4, 1, 2], True)
    t = store.tally(new.teacher_secret, "s4-abc")
    assert (t.answered, t.right, dict(t.counts)) == (3, 2, {2: 2, 1: 1})
    assert t.share_right == pytest.approx(2 / 3)
    assert dict(store.tally(new.teacher_secret, "s3-def").counts) == {(1, 2, 4): 1}
    assert store.tally(new.teacher_secret, "s9-none").share_right is None
    mine = store.my_answers(sam)
    assert {q: (a.response, a.correct) for q, a in mine.items()} == {"s4-abc": (2, True), "s3-def": ((1, 2, 4), True)}

    assert store.step(sam) is None
    store.follow(new.teacher_secret, 4, "smiley")
    assert store.step(kim) == 4 and store.following(sam) == C.Following(4, "smiley")
    store.reveal(new.teacher_secret, "s4-abc")
    assert store.revealed_tally(kim, "s4-abc") == t
    status = store.status(new.teacher_secret)
    assert (status.code, status.students, status.step, status.picture, status.revealed) == \
        (new.code, 3, 4, "smiley", {"s4-abc"})
    assert store.nicknames(new.teacher_secret) == ["Sam", "Ali"]

    store.end_class(new.teacher_secret)
    assert every_row(store) == [every_row(store)[0]] and every_row(store)[0][0] == "cnnviz_settings"
    with pytest.raises(NotFound):
        store.join(new.code, client_key=ADDRESS)
    with pytest.raises(NotFound):
        store.record(sam, "s5-x", 0, True)
    with pytest.raises(NotAllowed):
        store.tally(new.teacher_secret, "s4-abc")


def test_codes_and_secrets_are_random_and_only_hashes_are_stored(store):
    made = [store.start_class() for _ in range(50)]
    assert len({m.code for m in made}) == 50
    for m in made:
        assert len(m.code) == 8 and set(m.code) <= set(C.ALPHABET)
        assert len(m.teacher_secret) >= 43
    assert not set(C.ALPHABET) & set("01ILOU")
    token = store.join(made[0].code, client_key=ADDRESS)
    stored = repr(every_row(store))
    assert made[0].teacher_secret not in stored and token not in stored
    assert made[0].code in stored


def test_a_store_from_the_default_url_lives_outside_the_project(tmp_path):
    url = C.default_url({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert url == f"sqlite:///{tmp_path / 'cache' / 'cnnviz' / 'classroom.sqlite'}"
    home = C.default_url({})
    assert home.startswith("sqlite:///") and "/.cache/cnnviz/" in home
    assert C.default_url({"CNNVIZ_DATABASE_URL": "postgres://u:p@db/cnnviz"}) == "postgresql+psycopg://u:p@db/cnnviz"
    assert C.normalise_url("postgresql://db/x") == "postgresql+psycopg://db/x"
    s = Store(url, clock=Clock())
    try:
        assert (tmp_path / "cache" / "cnnviz" / "classroom.sqlite").exists()
        s.join(s.start_class().code, client_key="x")
    finally:
        s.close()


def test_two_copies_of_the_app_share_classes_and_counts(make_store, clock):
    a, b = make_store(clock), make_store(clock)
    new = a.start_class()
    token = b.join(new.code, client_key=ADDRESS)
    b.record(token, "q1", 1, True)
    assert a.tally(new.teacher_secret, "q1").answered == 1
    for store in (a, b) * 5:  # ten wrong codes, split between the two copies
        with pytest.raises(NotFound):
            store.join("ABCDEFGH", client_key="split")
    for store in (a, b):
        with pytest.raises(TooMany):
            store.join(new.code, client_key="split")


# ---------------------------------------------------------------- hostile inputs


@pytest.mark.parametrize("code", ["ABCDEFGH", "", "x" * 10_000, None, 12345678, "' OR 1=1 --", "K7QM-X3R"])
def test_a_wrong_code_is_refused(store, code):
    store.start_class()
    with pytest.raises(NotFound, match="No class with this code"):
        store.join(code, client_key=ADDRESS)
    assert rows_of(store, C.students) == 0


def test_an_expired_class_is_closed_and_then_deleted(store, clock):
    new = store.start_class()
    token = store.join(new.code, "Sam", client_key=ADDRESS)
    store.record(token, "q1", 1, True)
    clock.advance(2 * 3600 - 1)
    assert store.step(token) is None  # still running one second before the end
    clock.advance(1)
    with pytest.raises(NotFound):
        store.join(new.code, client_key=ADDRESS)
    with pytest.raises(NotFound):
        store.record(token, "q2", 1, True)
    with pytest.raises(NotFound):
        store.my_answers(token)
    with pytest.raises(NotAllowed):
        store.tally(new.teacher_secret, "q1")
    assert rows_of(store, C.answers) == 1  # invisible, not yet deleted
    assert store.cleanup() == 1
    assert [rows_of(store, t) for t in (C.classes, C.students, C.answers, C.reveals)] == [0, 0, 0, 0]


def test_starting_a_class_cleans_up_expired_ones(store, clock):
    old = store.start_class()
    store.record(store.join(old.code, client_key=ADDRESS), "q1", 0, False)
    clock.advance(3 * 3600)
    store.start_class()
    assert rows_of(store, C.classes) == 1 and rows_of(store, C.answers) == 0


def test_a_10000_character_nickname_is_refused_and_nothing_is_kept(store):
    new = store.start_class()
    with pytest.raises(BadInput, match="at most 20 characters"):
        store.join(new.code, "n" * 10_000, client_key=ADDRESS)
    with pytest.raises(BadInput, match="at most 20 characters"):
        store.join(new.code, "n" * 21, client_key=ADDRESS)
    assert rows_of(store, C.students) == 0 and store.status(new.teacher_secret).students == 0
    store.join(new.code, "n" * 20, client_key=ADDRESS)
    store.join(new.code, "   ", client_key=ADDRESS)  # blank: no nickname
    assert store.nicknames(new.teacher_secret) == ["n" * 20]


@pytest.mark.parametrize("nickname", ["<b>Sam</b>", "<script>x()</script>", "Zoë & \"Ann\"", "'; DROP--", "ﷺ🙂"])
def test_nicknames_are_kept_as_given_text(store, nickname):
    new = store.start_class()
    store.join(new.code, nickname, client_key=ADDRESS)
    assert store.nicknames(new.teacher_secret) == [nickname]


@pytest.mark.parametrize("nickname", ["Sam\x00", "a\u202eevil", "tab\there", "<img src=x onerror=alert(1)>", 42])
def test_hostile_nicknames_are_refused(store, nickname):
    new = store.start_class()
    with pytest.raises(BadInput):
        store.join(new.code, nickname, client_key=ADDRESS)
    assert rows_of(store, C.students) == 0


def test_a_student_posing_as_the_teacher_is_refused(make_store, clock):
    store = make_store(clock)
    new, other = store.start_class(), store.start_class()
    token = store.join(new.code, client_key=ADDRESS)
    store.record(token, "q1", 1, True)
    guesses = [token, new.code, secrets.token_urlsafe(32), "", None, "x" * 10_000, new.teacher_secret[:-1],
               new.teacher_secret.upper()]
    for guess in guesses:
        for act in (lambda g: store.tally(g, "q1"), lambda g: store.reveal(g, "q1"),
                    lambda g: store.follow(g, 3), lambda g: store.end_class(g), lambda g: store.status(g),
                    lambda g: store.nicknames(g)):
            with pytest.raises(NotAllowed):
                act(guess)
    store.end_class(other.teacher_secret)  # the other class's teacher cannot touch this one
    assert store.tally(new.teacher_secret, "q1").answered == 1
    assert store.step(token) is None
    with pytest.raises(NotAllowed, match="not shown the answers"):
        store.revealed_tally(token, "q1")


def test_a_student_sees_only_their_own_answers_until_the_reveal(store):
    new = store.start_class()
    a, b = store.join(new.code, client_key="a"), store.join(new.code, client_key="b")
    store.record(a, "q1", 1, True)
    store.record(b, "q1", 2, False)
    assert {k: v.response for k, v in store.my_answers(a).items()} == {"q1": 1}
    assert {k: v.response for k, v in store.my_answers(b).items()} == {"q1": 2}
    for who in (a, b):
        with pytest.raises(NotAllowed):
            store.revealed_tally(who, "q1")
    store.reveal(new.teacher_secret, "q1")
    store.reveal(new.teacher_secret, "q1")  # twice is harmless
    assert dict(store.revealed_tally(a, "q1").counts) == {1: 1, 2: 1}
    with pytest.raises(NotAllowed):
        store.revealed_tally(a, "q2")


def test_one_class_never_sees_another(store):
    one, two = store.start_class(), store.start_class()
    a, b = store.join(one.code, "A", client_key="a"), store.join(two.code, "B", client_key="b")
    store.record(a, "q1", 1, True)
    store.record(b, "q1", 2, False)
    store.reveal(two.teacher_secret, "q1")
    store.follow(two.teacher_secret, 6)
    assert dict(store.tally(one.teacher_secret, "q1").counts) == {1: 1}
    assert dict(store.tally(two.teacher_secret, "q1").counts) == {2: 1}
    assert store.nicknames(one.teacher_secret) == ["A"]
    assert store.step(a) is None and store.step(b) == 6
    with pytest.raises(NotAllowed):
        store.revealed_tally(a, "q1")  # revealed in the other class only
    store.end_class(two.teacher_secret)
    assert store.tally(one.teacher_secret, "q1").answered == 1 and store.my_answers(a)


@pytest.mark.parametrize("question_id", ["", "q" * 65, "has space", "<script>", "q1;DROP", None, 7])
def test_bad_question_ids_are_refused(store, question_id):
    new = store.start_class()
    token = store.join(new.code, client_key=ADDRESS)
    with pytest.raises(BadInput):
        store.record(token, question_id, 1, True)
    with pytest.raises(BadInput):
        store.tally(new.teacher_secret, question_id)
    assert rows_of(store, C.answers) == 0


@pytest.mark.parametrize("response", ["x" * 10_000, float("nan"), float("inf"), True, None, {"a": 1}, [1, "2"],
                                      [[1]], list(range(51)), 10 ** 400, object(), b"1"])
def test_bad_answers_are_refused(store, response):
    new = store.start_class()
    token = store.join(new.code, client_key=ADDRESS)
    with pytest.raises(BadInput):
        store.record(token, "q1", response, True)
    with pytest.raises(BadInput):
        store.record(token, "q2", 1, "yes")
    assert rows_of(store, C.answers) == 0


def test_the_kinds_of_answer_come_back_as_they_were_given(store, clock):
    import numpy as np

    new = store.start_class()
    token = store.join(new.code, client_key=ADDRESS)
    given = {"q1": 3, "q2": -1.25, "q3": (0, 2, 4), "q4": "1.5", "q5": np.int64(2), "q6": np.float32(0.5),
             "q7": {3, 1}}
    for q, r in given.items():
        store.record(token, q, r, True)
        clock.advance(1)
    back = {q: a.response for q, a in store.my_answers(token).items()}
    assert back == {"q1": 3, "q2": -1.25, "q3": (0, 2, 4), "q4": "1.5", "q5": 2, "q6": 0.5, "q7": (1, 3)}


@pytest.mark.parametrize("step", [0, 100, -1, "3", 2.0, True])
def test_follow_me_takes_only_a_step_number(store, step):
    new = store.start_class()
    with pytest.raises(BadInput):
        store.follow(new.teacher_secret, step)
    store.follow(new.teacher_secret, 8)
    store.follow(new.teacher_secret, None)


@pytest.mark.parametrize("picture", ["", "../etc/passwd", "x" * 65, "Smiley", "<b>", 3, "my photo.jpg"])
def test_follow_me_shares_only_sample_names(store, picture):
    new = store.start_class()
    with pytest.raises(BadInput):
        store.follow(new.teacher_secret, 2, picture)
    assert store.status(new.teacher_secret).picture is None


# ---------------------------------------------------------------- limits


def test_many_failed_joins_from_one_client_are_blocked(store, clock):
    new = store.start_class()
    for k in range(10):
        with pytest.raises(NotFound):
            store.join(f"WRONG{k:03d}", client_key=ADDRESS)
        clock.advance(30)
    with pytest.raises(TooMany, match="Wait 10 minutes"):
        store.join(new.code, client_key=ADDRESS)  # even the right code, while blocked
    store.join(new.code, client_key="another client")
    clock.advance(600 - 10 * 30)  # the first failure leaves the window; nine remain
    store.join(new.code, client_key=ADDRESS)
    with pytest.raises(NotFound):
        store.join("WRONG999", client_key=ADDRESS)
    with pytest.raises(TooMany):
        store.join(new.code, client_key=ADDRESS)


def test_a_burst_of_1000_answers_from_one_student_is_rate_limited(store, clock):
    new = store.start_class()
    token = store.join(new.code, client_key=ADDRESS)
    other = store.join(new.code, client_key="b")
    kept, refused = 0, []
    for k in range(1000):
        try:
            kept += store.record(token, f"q{k}", k, True)
        except TooMany as e:
            refused.append(str(e))
    assert kept == 5 and len(refused) == 995
    assert set(refused) == {C.TOO_FAST}
    assert store.record(other, "q0", 1, True)  # another student is not held up
    clock.advance(0.5)
    with pytest.raises(TooMany):
        store.record(token, "late", 1, True)
    clock.advance(0.5)
    assert sum(store.record(token, f"r{k}", 1, True) for k in range(5)) == 5
    assert len(store.my_answers(token)) == 10


def test_a_student_has_a_total_number_of_answers(make_store, clock):
    store = make_store(clock, Limits(answers_per_student=12))
    new = store.start_class()
    token = store.join(new.code, client_key=ADDRESS)
    for k in range(12):
        store.record(token, f"q{k}", 1, True)
        clock.advance(1)
    with pytest.raises(TooMany, match="as many answers as one class allows"):
        store.record(token, "q99", 1, True)


def test_a_full_class_takes_nobody_else(make_store, clock):
    store = make_store(clock, Limits(students_per_class=3))
    new = store.start_class()
    for k in range(3):
        store.join(new.code, client_key=str(k))
    with pytest.raises(TooMany, match="full"):
        store.join(new.code, client_key="late")
    assert store.status(new.teacher_secret).students == 3


def test_nothing_identifying_is_stored(store, clock):
    new = store.start_class()
    for _ in range(3):
        with pytest.raises(NotFound):
            store.join("ABCDEFGH", client_key=ADDRESS)
    token = store.join(new.code, client_key=ADDRESS)
    store.record(token, "q1", 1, True)
    rows = repr(every_row(store))
    assert ADDRESS not in rows and ADDRESS.encode().hex() not in rows
    columns = {c.name for t in C.metadata.sorted_tables for c in t.columns}
    assert not columns & {"ip", "address", "name", "email", "user_agent"}
    clock.advance(601)
    store.cleanup()
    assert rows_of(store, C.join_failures) == 0


# ---------------------------------------------------------------- concurrency


def test_twenty_threads_answering_count_every_answer_exactly_once(make_store, clock):
    """10 students, two threads each (a double click, two tabs), all 5 questions, all at once.

    The first answer wins: for each student and question exactly one `record` call returns True,
    and the answer kept is that call's.
    """
    store = make_store(clock, Limits(answers_per_second=1000))
    new = store.start_class()
    tokens = [store.join(new.code, f"s{k}", client_key=str(k)) for k in range(10)]
    questions = [f"q{k}" for k in range(5)]
    start = threading.Barrier(20)
    results, errors = [], []

    def answer(student: int, copy: int):
        try:
            start.wait()
            for q in questions:
                kept = store.record(tokens[student], q, copy, copy == 0)
                results.append((student, q, copy, kept))
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            errors.append(repr(e))

    threads = [threading.Thread(target=answer, args=(s, c)) for s in range(10) for c in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 100
    winners = {(s, q): c for s, q, c, kept in results if kept}
    assert len(winners) == 50  # exactly one True per (student, question)
    for q in questions:
        t = store.tally(new.teacher_secret, q)
        assert t.answered == 10
        assert dict(t.counts) == {c: n for c in (0, 1)
                                  if (n := sum(winners[(s, q)] == c for s in range(10)))}
    for s, token in enumerate(tokens):
        assert {q: a.response for q, a in store.my_answers(token).items()} == {q: winners[(s, q)] for q in questions}
    assert rows_of(store, C.answers) == 50
