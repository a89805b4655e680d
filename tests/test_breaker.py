"""The circuit breaker's state machine, on a clock the test moves (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from redis_harness.client.breaker import BreakerOpen, CircuitBreaker, State, Transition


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Outage(Exception):
    pass


def fail() -> None:
    raise Outage("down")


def make(clock: Clock, **options: object) -> tuple[CircuitBreaker, list[Transition]]:
    seen: list[Transition] = []
    options = {"fail_max": 3, "reset_timeout_s": 5.0, **options}
    breaker = CircuitBreaker(
        "test", clock=clock, is_failure=lambda e: isinstance(e, Outage), listeners=(seen.append,), **options
    )
    return breaker, seen


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.fail_max):
        with pytest.raises(Outage):
            breaker.call(fail)


def test_opens_after_fail_max_consecutive_failures_and_then_fails_fast() -> None:
    breaker, seen = make(Clock())
    for _ in range(2):
        with pytest.raises(Outage):
            breaker.call(fail)
    assert breaker.state is State.CLOSED
    with pytest.raises(Outage):
        breaker.call(fail)
    assert breaker.state is State.OPEN
    calls = []
    with pytest.raises(BreakerOpen):
        breaker.call(calls.append, 1)
    assert calls == []  # the guarded function never ran
    assert [(t.old, t.new) for t in seen] == [(State.CLOSED, State.OPEN)]
    assert breaker.snapshot()["rejected"] == 1


def test_a_success_resets_the_consecutive_count() -> None:
    breaker, _ = make(Clock())
    for _ in range(5):
        with pytest.raises(Outage):
            breaker.call(fail)
        with pytest.raises(Outage):
            breaker.call(fail)
        assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is State.CLOSED


def test_errors_that_are_not_outages_do_not_count() -> None:
    breaker, _ = make(Clock())
    for _ in range(10):
        with pytest.raises(KeyError):
            breaker.call(lambda: {}["missing"])
    assert breaker.state is State.CLOSED and breaker.consecutive_failures == 0


def test_half_opens_after_the_cooldown_and_closes_on_a_successful_trial() -> None:
    clock = Clock()
    breaker, seen = make(clock)
    trip(breaker)
    clock.now += 4.9
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: "early")
    clock.now += 0.2
    assert breaker.call(lambda: "trial") == "trial"
    assert breaker.state is State.CLOSED
    assert [(t.old, t.new) for t in seen] == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]


def test_a_failed_trial_reopens_and_restarts_the_cooldown() -> None:
    clock = Clock()
    breaker, seen = make(clock)
    trip(breaker)
    clock.now += 5
    with pytest.raises(Outage):
        breaker.call(fail)
    assert breaker.state is State.OPEN
    clock.now += 4
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: None)
    clock.now += 1
    breaker.call(lambda: None)
    assert breaker.state is State.CLOSED
    assert [t.new for t in seen] == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


def test_half_open_lets_exactly_one_trial_through() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    trip(breaker)
    clock.now += 5
    inside, release = threading.Event(), threading.Event()

    def slow_trial() -> str:
        inside.set()
        assert release.wait(5)
        return "trial"

    worker = threading.Thread(target=breaker.call, args=(slow_trial,))
    worker.start()
    assert inside.wait(5)
    assert breaker.state is State.HALF_OPEN
    with pytest.raises(BreakerOpen, match="trial call in flight"):
        breaker.call(lambda: "second")
    release.set()
    worker.join(5)
    assert breaker.state is State.CLOSED


def test_calls_are_not_serialized_through_the_breaker() -> None:
    # pybreaker holds its lock during the call; here two calls must be inside at once.
    breaker, _ = make(Clock())
    both_inside = threading.Barrier(2, timeout=5)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            breaker.call(both_inside.wait)
        except BaseException as exc:  # a broken barrier means the calls ran one after the other
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []


def test_a_broken_listener_does_not_break_calls() -> None:
    def broken(transition: Transition) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker("t", fail_max=1, clock=Clock(), is_failure=lambda e: True, listeners=(broken,))
    with pytest.raises(Outage):
        breaker.call(fail)
    assert breaker.state is State.OPEN


def test_interrupts_free_the_trial_slot() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    trip(breaker)
    clock.now += 5

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.call(lambda: "next trial") == "next trial"
    assert breaker.state is State.CLOSED


@pytest.mark.parametrize("options", [{"fail_max": 0}, {"reset_timeout_s": -1}])
def test_bad_settings_are_refused(options: dict) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**options)
