"""A circuit breaker: stop calling Redis while it is down, try again after a cooldown.

Hand-written rather than pybreaker: pybreaker (1.4) holds one lock for the
whole guarded call, so every Redis call of a process is serialized through it,
and while Redis hangs each thread queues behind the others' socket timeouts
instead of failing fast (danielfm/pybreaker#3; the PRs removing the lock, #40,
#41, #57, #77, were closed unmerged). `circuitbreaker` has no lock at all. This
one takes its lock only to read and change state, never during the call.

closed    -> open       after `fail_max` consecutive failures
open      -> half-open  on the first call after `reset_timeout_s`; that call is the trial
half-open -> closed     when the trial succeeds
half-open -> open       when the trial fails (the cooldown starts again)

While open, and while a trial is in flight, calls raise BreakerOpen without
running. Only exceptions `is_failure` accepts count: an answer from the server
(even an error reply) proves it is up and counts as success.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class BreakerOpen(Exception):
    """The breaker is open: the call was not made."""


@dataclass(frozen=True)
class Transition:
    breaker: str
    old: State
    new: State
    at: float  # time.time(), for reports
    monotonic: float  # the breaker's clock, for durations
    reason: str


Listener = Callable[[Transition], None]


def _any_exception(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


class CircuitBreaker:
    def __init__(
        self,
        name: str = "redis",
        *,
        fail_max: int = 5,
        reset_timeout_s: float = 5.0,
        is_failure: Callable[[BaseException], bool] = _any_exception,
        clock: Callable[[], float] = time.monotonic,
        listeners: tuple[Listener, ...] = (),
        history: int = 100,
    ) -> None:
        if fail_max < 1:
            raise ValueError("fail_max: use 1 or more")
        if reset_timeout_s < 0:
            raise ValueError("reset_timeout_s: use 0 or more seconds")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self._is_failure = is_failure
        self._clock = clock
        self._listeners: list[Listener] = list(listeners)
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.transitions: deque[Transition] = deque(maxlen=history)
        self.counters = {"calls": 0, "successes": 0, "failures": 0, "rejected": 0, "opened": 0}

    # ------------------------------------------------------------------ observation

    @property
    def state(self) -> State:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "name": self.name,
                "state": self._state.value,
                "consecutive_failures": self._consecutive_failures,
                **self.counters,
            }

    # ------------------------------------------------------------------ the call

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        is_trial, changed = self._admit()
        self._notify(changed)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            counted = self._is_failure(exc)
            self._notify(self._record(is_trial, failed=counted, reason=f"{exc.__class__.__name__}: {exc}"))
            raise
        except BaseException:
            # KeyboardInterrupt and friends say nothing about Redis; just free the trial slot.
            if is_trial:
                with self._lock:
                    self._trial_in_flight = False
            raise
        self._notify(self._record(is_trial, failed=False, reason="call succeeded"))
        return result

    def _admit(self) -> tuple[bool, Transition | None]:
        with self._lock:
            self.counters["calls"] += 1
            if self._state is State.CLOSED:
                return False, None
            if self._state is State.OPEN:
                waited = self._clock() - self._opened_at
                if waited < self.reset_timeout_s:
                    self.counters["rejected"] += 1
                    raise BreakerOpen(
                        f"circuit '{self.name}' open for {waited:.1f} s of {self.reset_timeout_s:g} s cooldown"
                    )
                changed = self._move(State.HALF_OPEN, f"cooldown of {self.reset_timeout_s:g} s elapsed")
                self._trial_in_flight = True
                return True, changed
            if self._trial_in_flight:  # half-open: one trial at a time
                self.counters["rejected"] += 1
                raise BreakerOpen(f"circuit '{self.name}' half-open, trial call in flight")
            self._trial_in_flight = True
            return True, None

    def _record(self, is_trial: bool, *, failed: bool, reason: str) -> Transition | None:
        with self._lock:
            if is_trial:
                self._trial_in_flight = False
            if not failed:
                self.counters["successes"] += 1
                self._consecutive_failures = 0
                if is_trial and self._state is State.HALF_OPEN:
                    return self._move(State.CLOSED, "trial call succeeded")
                return None
            self.counters["failures"] += 1
            self._consecutive_failures += 1
            if is_trial and self._state is State.HALF_OPEN:
                return self._open(f"trial call failed ({reason})")
            if self._state is State.CLOSED and self._consecutive_failures >= self.fail_max:
                return self._open(f"{self._consecutive_failures} consecutive failures, last {reason}")
            return None

    def _open(self, reason: str) -> Transition | None:
        self._opened_at = self._clock()
        self.counters["opened"] += 1
        return self._move(State.OPEN, reason)

    def _move(self, new: State, reason: str) -> Transition | None:
        old, self._state = self._state, new
        if old is new:
            return None
        transition = Transition(self.name, old, new, time.time(), self._clock(), reason)
        self.transitions.append(transition)
        return transition

    def _notify(self, transition: Transition | None) -> None:
        # Outside the lock: a listener may call back into the breaker (or be slow).
        if transition is None:
            return
        level = logging.WARNING if transition.new is State.OPEN else logging.INFO
        log.log(
            level, "circuit %s: %s -> %s (%s)", self.name, transition.old.value, transition.new.value, transition.reason
        )
        for listener in list(self._listeners):
            try:
                listener(transition)
            except Exception:  # a broken listener must not break the Redis call path
                log.exception("circuit %s: listener %r failed", self.name, listener)
