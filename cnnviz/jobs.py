"""Training jobs that run beside a session: one thread each, bounded, stoppable, and never left behind.

A `TrainingJob` trains a `teaching.Plan` in a background thread, in chunks of a few steps, and
publishes what the page draws (the step, loss and accuracy points, a copy of the first-layer
filters). The thread never touches Streamlit; the page polls the job and calls `beat()`.

Limits, so that one student cannot starve the class:
- every job stops at `Limits.max_steps` steps or `Limits.max_seconds` of training;
- `SLOTS`, a bounded semaphore, lets at most `MAX_JOBS` jobs train at once on the whole server;
- `QUEUE`, a `TrainingQueue`, hands those slots out in turn: first come, first served, one job
  (waiting or training) per client, a cooldown between one client's jobs while others wait, and the
  next job starts as soon as one ends, whether or not its page is polling at that moment;
- the app runs NumPy's BLAS with one thread per call (`one_blas_thread_per_call`), so two jobs on
  two cores do not fight over a pool of BLAS threads.

Closed tabs: Streamlit 1.67 has no hook for the end of a session (it even keeps a disconnected
session's state for `server.disconnectedSessionTTL`, 120 s, in case the tab reconnects). So the
page's polling fragment calls `beat()` about once a second, and a job that hears no beat for
`Limits.heartbeat_timeout` seconds stops itself: a closed tab, or a page left mid-training,
ends its training within about ten seconds.

Time is injected, so tests never wait for it: a job reads the time only from its `clock` (a
`ManualClock` in tests), and before every training step it passes its `gate`, if it has one
(`StepGate` in tests), which can hold the thread at a chosen step while the test looks at the job
or moves the clock.
"""

from __future__ import annotations

import datetime
import functools
import heapq
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from cnnviz.teaching import Plan, subset
from cnnviz.train import Progress, evaluate, train_steps

MAX_JOBS = 2  # jobs training at once on the whole server: the machine has 2 cores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Bounds on one training job (all in one place, so a teacher can see and change them)."""

    max_steps: int = 900
    max_seconds: float = 60.0  # clock time of the training itself
    heartbeat_timeout: float = 10.0  # stop when the page has not polled for this long
    every: int = 10  # steps between curve points and filter snapshots
    eval_every: int = 50  # steps between measurements on the held-out pictures
    eval_images: int = 300  # held-out pictures used for those measurements (all of them at the end)


LEARN_LIMITS = Limits()
TEACH_LIMITS = Limits(max_steps=400, max_seconds=45.0, eval_every=10)

# Why a job ended, in words for the page.
ENDINGS = {
    "finished": "It finished all its steps.",
    "stopped": "You stopped it.",
    "time": "It reached the time limit for one training.",
    "abandoned": "The page stopped asking about it (the tab was closed or left), so it stopped.",
    "diverged": "The numbers blew up (the loss became infinite): the learning rate was too big. "
                "Try a smaller one.",
    "failed": "Something went wrong while training, so it stopped. Try again; if it happens again, "
              "tell your teacher.",
}


class Busy(RuntimeError):
    """Every training slot of the server is taken."""


class JobSlots(threading.BoundedSemaphore):
    """At most `size` jobs train at once, across every session of the server.

    A job takes a slot with `acquire(blocking=False)` and gives it back with `release()`;
    `taken` says how many are in use.
    """

    def __init__(self, size: int = MAX_JOBS):
        super().__init__(size)
        self.size = size

    @property
    def taken(self) -> int:
        return self.size - self._value  # the semaphore's own count of free slots


SLOTS = JobSlots()


def _limit_blas(n: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=n, user_api="blas")


@functools.cache  # once per process; the cache also keeps the limiter alive
def one_blas_thread_per_call():
    """Limit NumPy's BLAS to one thread in this process (later calls do nothing).

    The app multiplies small matrices (32x32 pictures, at most 32 maps) for many sessions at once:
    a pool of BLAS threads per call only adds hand-over time and fights the other sessions, the
    training jobs and the browser for the cores. Measured in benchmarks/forward_speed.py: one
    thread runs the traced forward pass several times faster than two on this loaded 2-core
    machine. Needs threadpoolctl; without it everything works, only slower on a busy machine.
    """
    return _limit_blas(1)


class ManualClock:
    """A clock that moves only when told to: `clock()` reads it, `advance(seconds)` moves it on.

    Give it to a `TrainingJob` (as `clock`) to test its heartbeat and time limit without waiting.
    """

    def __init__(self, start: float = 0.0):
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class StepGate:
    """Holds a job's thread at a chosen step, so a test can look at the job (or move its clock)
    while it is certainly running, then let it go on.

    The thread calls `wait(step)` before every training step (`step` = steps done so far) and
    waits there while `step >= ` the allowed count: `StepGate()` holds it before its first step,
    `allow(k)` lets it train until k steps are done, `open()` lets it run to its end. `held()`
    waits until the thread is held and returns its step.
    """

    def __init__(self, allow: float = 0):
        self._changed = threading.Condition()
        self._allowed = allow
        self._held_at: int | None = None

    def wait(self, step: int) -> None:
        with self._changed:
            while step >= self._allowed:
                self._held_at = step
                self._changed.notify_all()
                self._changed.wait()
            self._held_at = None

    def allow(self, steps: float) -> None:
        with self._changed:
            self._allowed = steps
            self._held_at = None  # the thread says again where it holds, once it has looked
            self._changed.notify_all()

    def open(self) -> None:
        self.allow(math.inf)

    def held(self, timeout: float = 300.0) -> int:
        """Wait until the thread is held at the gate; its step. TimeoutError if it never gets there."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._held_at is not None, timeout):
                raise TimeoutError(f"the job did not reach its gate (allowed {self._allowed} steps) "
                                   f"within {timeout:.0f} s")
            return self._held_at


def _finite(params: dict) -> bool:
    return all(np.all(np.isfinite(a)) for p in params.values() for a in p.values())


@dataclass
class Point:
    """One point of the curves: the mean loss and accuracy of the last few steps' batches."""

    step: int
    loss: float
    accuracy: float


class TrainingJob:
    """One training run in a background thread. Read its fields from any thread; they only grow.

    `kind` says which page started it ("learn" or "teach"); `watch` is the layer whose filters
    are copied for the page every `limits.every` steps. `clock()` gives the time in seconds
    (heartbeat, time limit, elapsed); `gate`, if given, is passed before every step
    (`gate.wait(steps_done)`; see `StepGate`).
    """

    def __init__(self, plan: Plan, limits: Limits = LEARN_LIMITS, kind: str = "learn",
                 slots: threading.Semaphore = SLOTS, clock=time.monotonic, gate=None, watch: str = "conv1_1"):
        self.plan, self.limits, self.kind, self.slots = plan, limits, kind, slots
        self.clock, self.gate, self.watch = clock, gate, watch
        self.steps = min(plan.steps, limits.max_steps)
        self.status = "new"  # new, running, then a key of ENDINGS
        self.error: Exception | None = None  # what made it fail: for the server's log and tests, not the page
        self.step = 0
        self.points: list[Point] = []
        self.tests: list[tuple[int, float]] = []  # (step, accuracy on held-out pictures)
        self.first_filters = np.array(plan.trainer.params[watch]["weight"])  # (F, C, 3, 3)
        self.filters = self.first_filters
        self.images_per_s = 0.0
        self.started = self.ended = None
        self.last_seen = clock()
        self.model = None  # the trained Model, once the job has ended (None if it diverged or failed)
        self.test_accuracy = None
        self.on_end = None  # called with the job, from its thread, once it has ended (a TrainingQueue sets it)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    # -- control, from the page
    def start(self) -> None:
        """Start training in the background; raises Busy when the server's training slots are full."""
        if self._thread is not None:
            raise RuntimeError("a job runs only once")
        if not self.slots.acquire(blocking=False):
            raise Busy("every training slot of the server is taken")
        self.started = self.last_seen = self.clock()
        self.status = "running"
        self._thread = threading.Thread(target=self._run, name=f"cnnviz-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the job to stop; it does before its next training step."""
        self._stop.set()

    def beat(self) -> None:
        """The page is still watching: keep going."""
        self.last_seen = self.clock()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        return self.status in ("new", "running") and self._thread is not None

    @property
    def waiting(self) -> bool:
        """In a TrainingQueue, waiting for its turn (see `TrainingQueue.turn`)."""
        return self.status == "waiting"

    @property
    def stop_asked(self) -> bool:
        return self._stop.is_set()

    def _withdraw(self, ending: str) -> None:
        """End a job that never started (it left its queue): `ending` is a key of ENDINGS."""
        if self._thread is not None:
            raise RuntimeError("only a job that never started can be withdrawn")
        self.ended = self.clock()
        self.status = ending

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else self.clock()) - self.started

    def curves(self) -> tuple[list[Point], list[tuple[int, float]]]:
        """Consistent copies of the training points and the held-out measurements."""
        with self._lock:
            return list(self.points), list(self.tests)

    # -- the thread
    def _reason_to_stop(self) -> str | None:
        """Before each step: pass the gate, then a key of ENDINGS if the job must end now, else None."""
        if self.gate is not None:
            self.gate.wait(self.plan.trainer.step)
        if self._stop.is_set():
            return "stopped"
        now = self.clock()
        if now - self.last_seen > self.limits.heartbeat_timeout:
            return "abandoned"
        if now - self.started > self.limits.max_seconds:
            return "time"
        return None

    def _run(self) -> None:
        ending = "failed"
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # blow-ups are caught below
                ending = self._train()
                if not _finite(self.plan.trainer.params):
                    ending = "diverged"
                if ending != "diverged":
                    self._finish_model(ending)
        except Exception as e:  # a failure ends this job only, never the server; the page says so plainly
            ending, self.error = "failed", e
            log.exception("a %s training job failed at step %d", self.kind, self.plan.trainer.step)
        finally:
            self.ended = self.clock()
            self.slots.release()  # before the status, so a job seen ended has given its slot back
            self.status = ending
            if self.on_end is not None:
                try:
                    self.on_end(self)  # e.g. the queue starts the next job in this slot
                except Exception:
                    log.exception("the end of a %s training job could not be handed on", self.kind)

    def _train(self) -> str:
        plan, limits, trainer = self.plan, self.limits, self.plan.trainer
        probe = subset(plan.test, limits.eval_images) if plan.test is not None and len(plan.test) else None
        heard: list[Progress] = []
        if probe is not None:  # where the accuracy curve starts: about chance
            self.tests.append((0, evaluate(trainer.model(), probe)))
        while True:
            reason = self._reason_to_stop()
            if reason or trainer.step >= self.steps:
                return reason or "finished"
            heard.clear()
            done = train_steps(trainer, plan.train, min(limits.every, self.steps - trainer.step), heard.append,
                               lambda: self._reason_to_stop() is not None)
            if done == 0:  # a stop arrived before the chunk's first step, or the schedule has ended
                return self._reason_to_stop() or "finished"
            last = heard[-1]
            if not np.isfinite(last.loss):
                return "diverged"
            test = None
            if probe is not None and (trainer.step % limits.eval_every < done or trainer.step >= self.steps):
                test = evaluate(trainer.model(), probe)
            with self._lock:
                self.step = trainer.step
                self.points.append(Point(trainer.step, float(last.loss), float(last.accuracy)))
                if test is not None:
                    self.tests.append((trainer.step, test))
                self.filters = np.array(trainer.params[self.watch]["weight"])
                self.images_per_s = last.images_per_s

    def _finish_model(self, ending: str) -> None:
        plan, trainer = self.plan, self.plan.trainer
        model = trainer.model()
        accuracy = evaluate(model, plan.test) if plan.test is not None and len(plan.test) else None
        epochs = round(trainer.step * trainer.config.batch_size / max(1, len(plan.train)), 2)
        meta = {**plan.meta, "steps": trainer.step, "epochs": epochs,
                "train_seconds": round(self.clock() - self.started, 1), "ended": ending,
                "date": datetime.date.today().isoformat()}
        if accuracy is not None:
            meta["test_accuracy"] = round(accuracy, 4)
        self.model, self.test_accuracy = replace(model, meta={**model.meta, **meta}), accuracy


# ---------------------------------------------------------------- turns


class Refused(RuntimeError):
    """The queue does not take this request now; str(err) is a plain-words message for the student."""


class AlreadyQueued(Refused):
    """This client already has a job training or waiting."""


class TooSoon(Refused):
    """This client's last job ended less than the cooldown ago, and others are waiting; `seconds` to go."""

    def __init__(self, message: str, seconds: float):
        super().__init__(message)
        self.seconds = seconds


class QueueFull(Refused):
    """More than `max_waiting` requests already wait."""


@dataclass(frozen=True)
class Turn:
    """Where a waiting job stands: `place` 1 starts next; `wait` is an estimate in seconds."""

    place: int
    waiting: int  # requests waiting in all
    wait: float


class TrainingQueue:
    """Hands the server's training slots out in turn, fairly, to the clients of a whole class.

    - First come, first served: `submit(client, job)` starts the job at once if a slot is free and
      nobody is waiting, else puts it at the back of the line (`job.waiting`, `turn(job)`).
    - One job per client key (the page passes the client's address or a signed cookie id, not a session
      id, so that two tabs or two scripted sessions are one client): a second `submit` is refused while
      the first trains or waits (`AlreadyQueued`).
    - A cooldown: after a client's job has ended, that client cannot queue again for `cooldown` seconds
      while the class is busy (someone waiting or every slot taken: `TooSoon`); in a quiet class nobody
      loses by a restart, so it is allowed.
    - A waiting request whose page stops polling (no `job.beat()` for its limits' `heartbeat_timeout`)
      leaves the line, as a running job does (it ends "abandoned"); so does one whose page asked it to
      stop (`job.stop()`, or `leave(job)`).
    - When a job ends, for any reason, its thread hands the slot to the head of the line itself (the
      job's `on_end`), so the next student's job starts even if nobody polls at that moment. `pump()`
      (called by every `submit`, `poll` and end) drops the stale requests and fills free slots.

    Thread-safe: one lock guards the line; jobs end, and start their successors, on their own threads.
    The queue reads time only from `clock` (each job must share it), so tests move a `ManualClock`.
    """

    def __init__(self, slots: JobSlots = SLOTS, clock=time.monotonic, cooldown: float = 60.0,
                 max_waiting: int = 200):
        self.slots, self.clock, self.cooldown, self.max_waiting = slots, clock, cooldown, max_waiting
        self._lock = threading.RLock()
        self._waiting: OrderedDict[TrainingJob, str] = OrderedDict()  # job -> client, oldest first
        self._running: dict[TrainingJob, str] = {}  # started here and not yet ended
        self._clients: dict[str, TrainingJob] = {}  # client -> its one job, waiting or running
        self._last_end: dict[str, float] = {}  # client -> when its last job ended
        self._typical: float | None = None  # a moving average of how long jobs here have taken

    # -- from the pages
    def job(self, plan: Plan, limits: Limits = LEARN_LIMITS, kind: str = "learn", gate=None,
            watch: str = "conv1_1") -> TrainingJob:
        """A new TrainingJob on this queue's slots and clock, ready to `submit`."""
        return TrainingJob(plan, limits, kind, slots=self.slots, clock=self.clock, gate=gate, watch=watch)

    def submit(self, client: str, job: TrainingJob) -> TrainingJob:
        """Queue `job` for `client` (or start it, if a slot is free and nobody waits); returns it.

        Raises AlreadyQueued, TooSoon or QueueFull (all `Refused`, with a message for the student).
        """
        if job.status != "new" or job.slots is not self.slots or job.clock is not self.clock:
            raise ValueError("submit a new job made on this queue's slots and clock (see TrainingQueue.job)")
        with self._lock:
            self.pump()
            mine = self._clients.get(client)
            if mine is not None:
                raise AlreadyQueued("Your network is still training or waiting for its turn. "
                                    "One training at a time for each student.")
            left = self.cooldown_left(client)
            if left > 0 and self._busy():
                raise TooSoon(f"Others are waiting for their turn, and your last training ended moments ago. "
                              f"You can queue again in {math.ceil(left)} s.", left)
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull("Too many trainings are waiting already. Try again in a few minutes.")
            job.last_seen = self.clock()
            job.status = "waiting"
            job.on_end = self._ended
            self._waiting[job] = client
            self._clients[client] = job
            self.pump()
        return job

    def poll(self, job: TrainingJob) -> Turn | None:
        """The page is still watching `job`: beat, let the line move on, and say where the job stands
        (None once it has started or ended)."""
        job.beat()
        with self._lock:
            self.pump()
            return self.turn(job)

    def leave(self, job: TrainingJob) -> None:
        """The student gives up: a waiting job leaves the line ("stopped"), a running one stops."""
        job.stop()
        with self._lock:
            self.pump()

    def turn(self, job: TrainingJob) -> Turn | None:
        """Where a waiting job stands; None if it is not waiting here."""
        with self._lock:
            if job not in self._waiting:
                return None
            estimates = self._estimates()
            return Turn(list(self._waiting).index(job) + 1, len(self._waiting), estimates[job])

    def cooldown_left(self, client: str) -> float:
        with self._lock:
            ended = self._last_end.get(client)
            return 0.0 if ended is None else max(0.0, self.cooldown - (self.clock() - ended))

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    # -- the line
    def pump(self) -> None:
        """Drop the waiting requests nobody watches (or that were asked to stop), then start the oldest
        ones while slots are free."""
        with self._lock:
            now = self.clock()
            for job in list(self._waiting):
                if job.stop_asked:
                    self._drop(job, "stopped")
                elif now - job.last_seen > job.limits.heartbeat_timeout:
                    self._drop(job, "abandoned")
            while self._waiting:
                job, client = next(iter(self._waiting.items()))
                try:
                    job.start()
                except Busy:
                    break
                del self._waiting[job]
                self._running[job] = client
            for client, ended in list(self._last_end.items()):
                if now - ended >= self.cooldown:
                    del self._last_end[client]

    def _drop(self, job: TrainingJob, ending: str) -> None:
        client = self._waiting.pop(job)
        if self._clients.get(client) is job:
            del self._clients[client]
        job._withdraw(ending)
        log.info("a waiting %s training left the queue (%s)", job.kind, ending)

    def _ended(self, job: TrainingJob) -> None:
        """From the ending job's thread: free its client, remember when, and start the next jobs."""
        with self._lock:
            client = self._running.pop(job, None)
            if client is not None:
                if self._clients.get(client) is job:
                    del self._clients[client]
                self._last_end[client] = self.clock()
                took = job.elapsed
                self._typical = took if self._typical is None else 0.7 * self._typical + 0.3 * took
            self.pump()

    def _busy(self) -> bool:
        return bool(self._waiting) or self.slots.taken >= self.slots.size

    # -- estimates
    def _duration(self, job: TrainingJob) -> float:
        """How long a job that has not started will probably train: the recent average, at most its cap."""
        cap = job.limits.max_seconds
        return cap if self._typical is None else min(cap, self._typical)

    def _remaining(self, job: TrainingJob) -> float:
        """How much longer a running job will probably train, from its pace so far, at most to its cap."""
        elapsed = job.elapsed
        left = max(0.0, job.limits.max_seconds - elapsed)
        if job.step > 0:
            return min(left, elapsed * (job.steps - job.step) / job.step)
        return min(left, max(0.0, self._duration(job) - elapsed))

    def _estimates(self) -> dict[TrainingJob, float]:
        """Seconds until each waiting job starts: slots go, in order, to whoever waits longest."""
        size = self.slots.size
        free_at = sorted([0.0] * max(0, size - self.slots.taken) + [self._remaining(j) for j in self._running])[:size]
        while len(free_at) < size:  # a slot taken outside this queue: assume a typical job
            free_at.append(self._duration(next(iter(self._waiting))) if self._waiting else 0.0)
        heapq.heapify(free_at)
        out = {}
        for job in self._waiting:
            start = heapq.heappop(free_at)
            out[job] = start
            heapq.heappush(free_at, start + self._duration(job))
        return out


QUEUE = TrainingQueue()
