"""A class in a classroom: join codes, answers and tallies, kept in a database through SQLAlchemy 2.

By default an SQLite file outside the project (`~/.cache/cnnviz/classroom.sqlite`); set
`CNNVIZ_DATABASE_URL=postgresql+psycopg://user:password@host/db` when several copies of the app
serve one school (every copy then sees the same classes).

    store = Store()                               # or Store(url, clock=..., limits=Limits(...))
    new = store.start_class()                     # new.code "K7QMX3RT" for the board, new.teacher_secret kept
    token = store.join("K7QM-X3RT", "Sam", client_key=address)  # a token for the student's session
    store.record(token, question.id, 2, True)     # the app checks the answer (questions.check)
    store.tally(new.teacher_secret, question.id)  # counts per answer and the share right
    store.reveal(new.teacher_secret, question.id) # now students may see that tally too
    store.follow(new.teacher_secret, 4, "smiley") # "follow me": students go to step 4 of the smiley
    store.end_class(new.teacher_secret)           # every answer of the class is deleted

Security: how hard is a join code to guess?
-------------------------------------------
A code is 8 characters drawn by `secrets` from 30 that cannot be mistaken for one another on a
board (2-9 and A-Z without I, L, O and U), so there are 30^8 = 656,100,000,000 codes. A code works for
2 hours. After 10 wrong codes in 10 minutes a client is refused, right code or not, until the 10
minutes are over: at most 120 guesses per client in a class's lifetime. (The client is the key the
app passes; the store keeps only a keyed hash of it, deleted after those 10 minutes. The join page
passes its browser session, not the address: a school behind one address would otherwise be locked
out after ten typos between all its students.) Even with 1,000 classes running at once, each guess
finds one with odds of 1,000 in 656 billion, so 120 guesses succeed with odds of about 1 in 5.5
million (1.8e-7). An attacker who opens 10,000 sessions has odds of about 1 in 550 (1.8e-3) over
two hours; the proxy in front of the app (deploy/) limits how fast one address opens sessions.
And a lucky guess gives little: an anonymous seat in a class, the step and picture the teacher
shows, and answer counts after they are revealed; no names, no other student's answers.

Other rules, each held by a test in tests/test_classroom.py:
- The teacher secret is 43 random URL-safe characters (`secrets.token_urlsafe(32)`, 256 bits) and is
  stored only as its SHA-256; student tokens likewise (192 bits). A fast hash is enough for secrets
  this long: no password list can guess them. Only the teacher secret reveals, moves the class, ends it.
- A student sees their own answers, and a question's counts only after the teacher reveals it.
- Nicknames are optional, at most 20 characters, no control or invisible characters, stored as given
  (the app escapes them on display). Question ids, answers and keys are length-limited too.
- At most 5 answers per second per student (more are refused with an error that says to wait), at
  most 500 per student per class, at most 300 students per class.
- Nothing identifying is stored: no addresses, no names beyond the optional nickname, and all of a
  class's rows (students, nicknames, answers) go when the teacher ends it or, after its 2 hours, at
  the next `cleanup()` (run whenever a class starts, or `python -m cnnviz.classroom --cleanup`).
  Until then an expired class answers to nothing.
- Every query names the class, so one class never sees another's students or answers.
- Each student's answer to a question is counted exactly once: a unique (student, question) pair in
  the database, and the FIRST answer wins (an atomic insert-or-nothing), as "predict, then reveal"
  needs: a prediction cannot be changed after the reveal. `record` says whether it counted.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # 30 symbols: no 0/O, 1/I/L, and no U
QUESTION_ID = re.compile(r"[A-Za-z0-9_.:-]+")
PICTURE = re.compile(r"[a-z0-9-]{1,64}")  # a sample's name: a class shares samples only, never uploads
SECRET_CHARS = 100  # teacher secrets and student tokens are shorter; longer input is not hashed at all
CLIENT_KEY_CHARS = 1000


@dataclass(frozen=True)
class Limits:
    """Every limit of a class; the defaults are those the module docstring works out."""

    code_length: int = 8
    lifetime: float = 2 * 3600.0  # seconds a class runs
    failed_joins: int = 10  # wrong codes per client key ...
    failed_join_window: float = 600.0  # ... in this many seconds
    answers_per_second: int = 5  # per student
    answers_per_student: int = 500  # per student per class
    students_per_class: int = 300
    nickname_chars: int = 20
    response_chars: int = 200  # an answer as JSON text
    question_id_chars: int = 64


class ClassroomError(ValueError):
    """Something the store refuses; str(err) is a plain sentence to show the student or teacher."""


class NotFound(ClassroomError):
    """A wrong or expired join code, or a student token of no running class."""


class NotAllowed(ClassroomError):
    """Not the teacher's secret, or a tally the teacher has not revealed yet."""


class TooMany(ClassroomError):
    """A limit is reached: wrong codes, answers per second or per student, students per class."""


class BadInput(ClassroomError):
    """A nickname, question id or answer the store will not keep."""


WRONG_CODE = "No class with this code is running. Check the code with your teacher."
NOT_IN_CLASS = "You are not in a running class (it may have ended). Join again with the code."
NOT_TEACHER = "Only the teacher of a running class can do that."
NOT_REVEALED = "Your teacher has not shown the answers to this question yet."
TOO_MANY_CODES = "Too many wrong codes from here. Wait 10 minutes, then try again."
TOO_FAST = "Too many answers at once. Wait a second, then try again."
TOO_MANY_ANSWERS = "You have sent as many answers as one class allows."
CLASS_FULL = "This class is full."


@dataclass(frozen=True)
class NewClass:
    code: str  # for the board: format_code(code) writes it as "K7QM-X3RT"
    teacher_secret: str  # for the teacher only; the store keeps its hash
    expires_at: float  # clock seconds


@dataclass(frozen=True)
class Answer:
    question_id: str
    response: object  # as recorded: int, float, str or a tuple of ints
    correct: bool
    at: float


@dataclass(frozen=True)
class Tally:
    """One question's answers in one class: how many gave each response, and how many were right."""

    question_id: str
    answered: int
    right: int
    counts: Mapping  # response -> number of students

    @property
    def share_right(self) -> float | None:
        return self.right / self.answered if self.answered else None


@dataclass(frozen=True)
class Following:
    """Follow me: the step and the sample picture the teacher shows (None: each student chooses)."""

    step: int | None
    picture: str | None


@dataclass(frozen=True)
class Status:
    code: str
    students: int
    expires_at: float
    step: int | None
    picture: str | None
    revealed: frozenset


# ---------------------------------------------------------------- tables

metadata = sa.MetaData()
classes = sa.Table(
    "cnnviz_classes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("teacher", sa.String(64), nullable=False, unique=True),  # SHA-256 of the teacher secret
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False, index=True),
    sa.Column("step", sa.Integer),
    sa.Column("picture", sa.String(64)),
    sa.Column("students", sa.Integer, nullable=False, default=0),
)
students = sa.Table(
    "cnnviz_students", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("cnnviz_classes.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),  # SHA-256 of the student token
    sa.Column("nickname", sa.String(64)),
    sa.Column("window_start", sa.Float, nullable=False, default=0.0),  # rate limit: this second's answers
    sa.Column("window_count", sa.Integer, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),  # answers sent in this class
)
answers = sa.Table(
    "cnnviz_answers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("class_id", sa.Integer, sa.ForeignKey("cnnviz_classes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("student_id", sa.Integer, sa.ForeignKey("cnnviz_students.id", ondelete="CASCADE"), nullable=False),
    sa.Column("question", sa.String(64), nullable=False),
    sa.Column("response", sa.Text, nullable=False),  # JSON
    sa.Column("correct", sa.Boolean, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.UniqueConstraint("student_id", "question", name="cnnviz_one_answer_each"),
    sa.Index("cnnviz_answers_by_question", "class_id", "question"),
)
reveals = sa.Table(
    "cnnviz_reveals", metadata,
    sa.Column("class_id", sa.Integer, sa.ForeignKey("cnnviz_classes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("question", sa.String(64), primary_key=True),
)
join_failures = sa.Table(
    "cnnviz_join_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client", sa.String(64), nullable=False, index=True),  # keyed hash of the client key
    sa.Column("at", sa.Float, nullable=False, index=True),
)
settings = sa.Table(
    "cnnviz_settings", metadata,
    sa.Column("setting", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
)


# ---------------------------------------------------------------- the database


def default_url(environ: Mapping = os.environ) -> str:
    """CNNVIZ_DATABASE_URL, or an SQLite file in the user's cache folder (never inside the project)."""
    url = environ.get("CNNVIZ_DATABASE_URL", "").strip()
    if url:
        return normalise_url(url)
    cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return f"sqlite:///{cache / 'cnnviz' / 'classroom.sqlite'}"


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// mean PostgreSQL through psycopg 3 (SQLAlchemy would pick psycopg2)."""
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url[len(bare):]
    return url


def _engine(url: str, options: Mapping) -> sa.Engine:
    u = sa.make_url(normalise_url(url))
    if u.get_backend_name() == "postgresql":
        try:
            import psycopg  # noqa: F401 (SQLAlchemy imports it by name; say plainly when it is missing)
        except ImportError as e:
            raise RuntimeError("PostgreSQL needs psycopg 3: python -m pip install 'psycopg[binary]'") from e
        return sa.create_engine(u, pool_pre_ping=True, **options)
    if u.get_backend_name() != "sqlite":
        raise ValueError(f"cnnviz keeps classes in SQLite or PostgreSQL, not {u.get_backend_name()}")
    if u.database in (None, "", ":memory:"):
        engine = sa.create_engine(u, poolclass=StaticPool, connect_args={"check_same_thread": False}, **options)
    else:
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = sa.create_engine(u, connect_args={"timeout": 30}, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection, record) -> None:
    # pysqlite's own transaction handling starts transactions lazily, so two writers can each read first
    # and then deadlock on upgrading their locks; SQLAlchemy's documented recipe: turn it off, BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
    cur.close()


def _sqlite_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock first: one writer at a time


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def format_code(code: str) -> str:
    """'K7QMX3RT' -> 'K7QM-X3RT', easier to read off a board."""
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


def clean_code(typed) -> str:
    """What a student typed -> the code to look up: upper case, without spaces and dashes."""
    if not isinstance(typed, str):
        return ""
    return re.sub(r"[\s-]", "", typed[:40]).upper()


# ---------------------------------------------------------------- the store


class Store:
    """Classes, students and answers in one database. Safe to share between threads and app copies.

    url: an SQLAlchemy URL (default: `default_url()`); clock: seconds, `time.time` unless a test steps
    its own; engine_options: passed to `sqlalchemy.create_engine`.
    """

    def __init__(self, url: str | None = None, *, clock: Callable[[], float] = time.time,
                 limits: Limits = Limits(), engine_options: Mapping | None = None):
        self.engine = _engine(url or default_url(), engine_options or {})
        self.clock = clock
        self.limits = limits
        self._create_tables()
        self._salt = self._client_salt()

    def _create_tables(self) -> None:
        try:
            metadata.create_all(self.engine)
        except (IntegrityError, ProgrammingError, OperationalError):
            metadata.create_all(self.engine)  # another copy of the app created them at the same moment

    def _client_salt(self) -> bytes:
        """A random key shared by every copy of the app, for hashing client keys (see `join`)."""
        with self.engine.begin() as c:
            row = c.execute(sa.select(settings.c.value).where(settings.c.setting == "client_salt")).first()
            if row is None:
                c.execute(_insert_or_nothing(c, settings).values(setting="client_salt", value=secrets.token_hex(32)))
                row = c.execute(sa.select(settings.c.value).where(settings.c.setting == "client_salt")).first()
        return bytes.fromhex(row[0])

    def close(self) -> None:
        self.engine.dispose()

    # -------------------------------------------------------- teacher

    def start_class(self) -> NewClass:
        """A new class: a join code for the board and a secret for the teacher alone."""
        self.cleanup()
        now = self.clock()
        secret = secrets.token_urlsafe(32)
        for _ in range(10):  # a clash of random codes is most unlikely; try another
            code = "".join(secrets.choice(ALPHABET) for _ in range(self.limits.code_length))
            try:
                with self.engine.begin() as c:
                    c.execute(classes.insert().values(code=code, teacher=_hash(secret), created=now,
                                                      expires=now + self.limits.lifetime, students=0))
                return NewClass(code, secret, now + self.limits.lifetime)
            except IntegrityError:
                continue
        raise RuntimeError("could not find a free join code")

    def _teacher_class(self, c, secret) -> sa.Row:
        if not isinstance(secret, str) or not secret or len(secret) > SECRET_CHARS:
            raise NotAllowed(NOT_TEACHER)
        row = c.execute(sa.select(classes).where(classes.c.teacher == _hash(secret),
                                                 classes.c.expires > self.clock())).first()
        if row is None:
            raise NotAllowed(NOT_TEACHER)
        return row

    def tally(self, teacher_secret: str, question_id: str) -> Tally:
        """The teacher's view of one question: counts per response and how many were right."""
        qid = self._question_id(question_id)
        with self.engine.begin() as c:
            return _tally(c, self._teacher_class(c, teacher_secret).id, qid)

    def reveal(self, teacher_secret: str, question_id: str) -> None:
        """Let the students of the class see this question's tally."""
        qid = self._question_id(question_id)
        with self.engine.begin() as c:
            cls = self._teacher_class(c, teacher_secret)
            c.execute(_insert_or_nothing(c, reveals).values(class_id=cls.id, question=qid))

    def follow(self, teacher_secret: str, step: int | None, picture: str | None = None) -> None:
        """Follow me: the walkthrough step and sample picture every student should see (None: their own)."""
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 99):
            raise BadInput("A step is a number from 1 to 99.")
        if picture is not None and (not isinstance(picture, str) or not PICTURE.fullmatch(picture)):
            raise BadInput("A picture is a sample's name.")
        with self.engine.begin() as c:
            cls = self._teacher_class(c, teacher_secret)
            c.execute(classes.update().where(classes.c.id == cls.id).values(step=step, picture=picture))

    def status(self, teacher_secret: str) -> Status:
        with self.engine.begin() as c:
            cls = self._teacher_class(c, teacher_secret)
            shown = c.execute(sa.select(reveals.c.question).where(reveals.c.class_id == cls.id)).scalars()
            return Status(cls.code, cls.students, cls.expires, cls.step, cls.picture, frozenset(shown))

    def nicknames(self, teacher_secret: str) -> list[str]:
        """The nicknames students gave, as they typed them (escape them before showing them as HTML)."""
        with self.engine.begin() as c:
            cls = self._teacher_class(c, teacher_secret)
            rows = c.execute(sa.select(students.c.nickname).where(students.c.class_id == cls.id,
                                                                  students.c.nickname.is_not(None))
                             .order_by(students.c.id))
            return list(rows.scalars())

    def end_class(self, teacher_secret: str) -> None:
        """End the class now: its students, nicknames and answers are deleted, and the code stops working."""
        with self.engine.begin() as c:
            _delete_classes(c, [self._teacher_class(c, teacher_secret).id])

    def cleanup(self) -> int:
        """Delete every expired class with all its rows, and failed joins older than their window.

        -> how many classes were deleted.
        """
        now = self.clock()
        with self.engine.begin() as c:
            old = list(c.execute(sa.select(classes.c.id).where(classes.c.expires <= now)).scalars())
            _delete_classes(c, old)
            c.execute(join_failures.delete().where(join_failures.c.at <= now - self.limits.failed_join_window))
        return len(old)

    # -------------------------------------------------------- students

    def join(self, code: str, nickname: str | None = None, *, client_key: str) -> str:
        """Join the class with this code -> the student's token (keep it in the student's session).

        client_key: whatever identifies the client to the app (its address, say); only a keyed hash
        of it is kept, for 10 minutes, to count wrong codes. Required: with one key for everybody,
        10 wrong codes from anyone would lock the whole school out. Raises NotFound for a wrong or expired
        code, TooMany after too many wrong codes from this client or when the class is full,
        BadInput for a nickname it will not keep.
        """
        nickname = self._nickname(nickname)
        client = self._client(client_key)
        now = self.clock()
        cut = now - self.limits.failed_join_window
        with self.engine.begin() as c:
            failed = c.execute(sa.select(sa.func.count()).select_from(join_failures)
                               .where(join_failures.c.client == client, join_failures.c.at > cut)).scalar_one()
            if failed >= self.limits.failed_joins:
                raise TooMany(TOO_MANY_CODES)
            code = clean_code(code)
            cls = c.execute(sa.select(classes.c.id).where(classes.c.code == code, classes.c.expires > now)).first()
            if cls is None:
                c.execute(join_failures.insert().values(client=client, at=now))
            else:
                seat = c.execute(classes.update().where(classes.c.id == cls.id,
                                                        classes.c.students < self.limits.students_per_class)
                                 .values(students=classes.c.students + 1))
                if seat.rowcount != 1:
                    raise TooMany(CLASS_FULL)
                token = secrets.token_urlsafe(24)
                c.execute(students.insert().values(class_id=cls.id, token=_hash(token), nickname=nickname,
                                                   window_start=0.0, window_count=0, attempts=0))
                return token
        raise NotFound(WRONG_CODE)  # after the commit, so the wrong code is counted

    def _student(self, c, token) -> sa.Row:
        if not isinstance(token, str) or not token or len(token) > SECRET_CHARS:
            raise NotFound(NOT_IN_CLASS)
        row = c.execute(sa.select(students.c.id, students.c.class_id).join(classes)
                        .where(students.c.token == _hash(token), classes.c.expires > self.clock())).first()
        if row is None:
            raise NotFound(NOT_IN_CLASS)
        return row

    def record(self, student_token: str, question_id: str, response, correct: bool) -> bool:
        """Keep a student's answer -> True, or False when their first answer to this question stands.

        response: an int (a choice), a float (a number), a short str, or a collection of ints (several
        choices); correct: what `questions.check` said. Raises TooMany when the student sends answers
        too fast or too many, NotFound for a token of no running class, BadInput for bad values.
        """
        qid = self._question_id(question_id)
        text = self.encode(response)
        if not isinstance(correct, bool):
            raise BadInput("correct must be True or False")
        now = self.clock()
        with self.engine.begin() as c:
            st = self._student(c, student_token)
            if not self._take_turn(c, st.id, now):
                attempts = c.execute(sa.select(students.c.attempts).where(students.c.id == st.id)).scalar_one()
                raise TooMany(TOO_MANY_ANSWERS if attempts >= self.limits.answers_per_student else TOO_FAST)
            done = c.execute(_insert_or_nothing(c, answers, ["student_id", "question"])
                             .values(class_id=st.class_id, student_id=st.id, question=qid, response=text,
                                     correct=correct, at=now).returning(answers.c.id))
            return done.first() is not None

    def _take_turn(self, c, student_id: int, now: float) -> bool:
        """Count one answer against the student's limits, in one atomic statement -> allowed?

        A fixed one-second window: the first answer after a second has passed opens a new window.
        The database applies the condition and the increment together, so racing threads and app
        copies can never let more through than the limit.
        """
        lim = self.limits
        fresh = students.c.window_start <= now - 1.0
        done = c.execute(
            students.update()
            .where(students.c.id == student_id,
                   sa.or_(fresh, students.c.window_count < lim.answers_per_second),
                   students.c.attempts < lim.answers_per_student)
            .values(window_count=sa.case((fresh, 1), else_=students.c.window_count + 1),
                    window_start=sa.case((fresh, now), else_=students.c.window_start),
                    attempts=students.c.attempts + 1))
        return done.rowcount == 1

    def my_answers(self, student_token: str) -> dict[str, Answer]:
        """This student's own answers, {question id: Answer}; never anyone else's."""
        with self.engine.begin() as c:
            st = self._student(c, student_token)
            rows = c.execute(sa.select(answers).where(answers.c.student_id == st.id))
            return {r.question: Answer(r.question, self.decode(r.response), bool(r.correct), r.at) for r in rows}

    def revealed_tally(self, student_token: str, question_id: str) -> Tally:
        """The class's tally of a question, for a student, once the teacher has revealed it (else NotAllowed)."""
        qid = self._question_id(question_id)
        with self.engine.begin() as c:
            st = self._student(c, student_token)
            shown = c.execute(sa.select(reveals.c.question).where(reveals.c.class_id == st.class_id,
                                                                  reveals.c.question == qid)).first()
            if shown is None:
                raise NotAllowed(NOT_REVEALED)
            return _tally(c, st.class_id, qid)

    def step(self, student_token: str) -> int | None:
        """The step the teacher asks everyone to follow, or None."""
        return self.following(student_token).step

    def following(self, student_token: str) -> Following:
        """The step and picture the teacher asks everyone to follow."""
        with self.engine.begin() as c:
            st = self._student(c, student_token)
            row = c.execute(sa.select(classes.c.step, classes.c.picture).where(classes.c.id == st.class_id)).one()
            return Following(row.step, row.picture)

    # -------------------------------------------------------- inputs

    def _nickname(self, nickname) -> str | None:
        if nickname is None:
            return None
        if not isinstance(nickname, str):
            raise BadInput("A nickname is text.")
        n = self.limits.nickname_chars
        if len(nickname) > 4 * n:  # refuse long text before looking at it character by character
            raise BadInput(f"A nickname has at most {n} characters.")
        nickname = nickname.strip()
        if len(nickname) > n:
            raise BadInput(f"A nickname has at most {n} characters.")
        # Control characters (a NUL breaks PostgreSQL text), invisible formatting (text direction
        # overrides that turn a name around on screen), surrogates and unassigned code points.
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in nickname):
            raise BadInput("A nickname can have letters, digits, spaces and punctuation, nothing invisible.")
        return nickname or None

    def _client(self, key) -> str:
        if not isinstance(key, str) or len(key) > CLIENT_KEY_CHARS:
            raise BadInput("client_key must be text of at most 1000 characters")
        return hmac.new(self._salt, key.encode("utf-8", "replace"), hashlib.sha256).hexdigest()

    def _question_id(self, qid) -> str:
        if (not isinstance(qid, str) or len(qid) > self.limits.question_id_chars
                or not QUESTION_ID.fullmatch(qid)):
            raise BadInput("A question id is up to 64 letters, digits and _ . : -")
        return qid

    def encode(self, response) -> str:
        """An answer -> the JSON text kept: an int, a finite float, a short str or sorted distinct ints."""
        if isinstance(response, bool):
            raise BadInput("An answer is a number, a choice or some choices, not True or False.")
        if isinstance(response, int) or (hasattr(response, "dtype") and getattr(response, "ndim", 1) == 0):
            value = response.item() if hasattr(response, "item") else response
        elif isinstance(response, str):
            value = response
        elif isinstance(response, (list, tuple, set, frozenset)):
            if len(response) > 50 or not all(isinstance(k, int) and not isinstance(k, bool) for k in response):
                raise BadInput("Several choices are a few whole numbers.")
            value = sorted(set(response))
        else:
            value = response
        if isinstance(value, bool) or not isinstance(value, (int, float, str, list)):
            raise BadInput("An answer is a number, a choice or some choices.")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput("An answer must be a finite number.")
        if isinstance(value, int) and abs(value) > 10**15:
            raise BadInput("That number is too big.")
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if len(text) > self.limits.response_chars:
            raise BadInput(f"An answer is at most {self.limits.response_chars} characters.")
        return text

    @staticmethod
    def decode(text: str):
        value = json.loads(text)
        return tuple(value) if isinstance(value, list) else value


def _insert_or_nothing(c, table, keys=None):
    """INSERT that does nothing when the row (by primary key or `keys`) is already there, atomically."""
    dialect = postgresql if c.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)


def _tally(c, class_id: int, qid: str) -> Tally:
    right = sa.func.sum(sa.case((answers.c.correct, 1), else_=0))
    rows = c.execute(sa.select(answers.c.response, sa.func.count(), right)
                     .where(answers.c.class_id == class_id, answers.c.question == qid)
                     .group_by(answers.c.response)).all()
    counts = {Store.decode(r[0]): int(r[1]) for r in rows}
    return Tally(qid, sum(counts.values()), sum(int(r[2]) for r in rows), MappingProxyType(counts))


def _delete_classes(c, ids: list[int]) -> None:
    """Delete these classes and every row that belongs to them (children first: SQLite may not cascade)."""
    if not ids:
        return
    for table in (answers, reveals, students):
        c.execute(table.delete().where(table.c.class_id.in_(ids)))
    c.execute(classes.delete().where(classes.c.id.in_(ids)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cnnviz.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("--cleanup", action="store_true", help="delete expired classes and their answers")
    parser.add_argument("--url", help="database URL (default: CNNVIZ_DATABASE_URL or the SQLite file)")
    args = parser.parse_args(argv)
    if args.cleanup:
        store = Store(args.url)
        print(f"deleted {store.cleanup()} expired classes")
        store.close()
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
