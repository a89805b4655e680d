"""Generator CPU figures: the summary per process and the saturation verdict (pure logic)."""

from __future__ import annotations

from redis_harness.load.generator import CpuSampler, saturated, summarize


def test_summary_of_a_busy_process() -> None:
    samples = [99.0] * 5 + [40.0] * 5
    summary = summarize("worker a", samples)
    assert summary == {
        "role": "worker a",
        "cpu_p50": 99.0,
        "cpu_max": 99.0,
        "cpu_over_90_share": 0.5,
        "samples": 10,
    }
    assert saturated([summary])


def test_a_light_process_is_not_saturated_and_exactly_ten_percent_is_allowed() -> None:
    light = summarize("local", [20.0, 30.0, 95.0] + [25.0] * 7)
    assert light["cpu_over_90_share"] == 0.1
    assert not saturated([light])
    assert saturated([light, summarize("master", [95.0, 96.0, 10.0])])


def test_no_samples_gives_no_figures() -> None:
    assert summarize("local", [])["cpu_p50"] is None
    assert not saturated([])


def test_the_sampler_sees_this_process_work() -> None:
    sampler = CpuSampler()
    total = 0
    for n in range(3_000_000):
        total += n
    assert sampler.sample() > 0
