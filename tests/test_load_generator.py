"""Generator CPU figures: the summary per process and the saturation verdict (pure logic)."""

from __future__ import annotations

from redis_harness.load.generator import CpuSampler, process_label, saturated, summarize


def test_summary_of_a_busy_process() -> None:
    samples = [(99.0, 99.0)] * 5 + [(40.0, 40.0)] * 5
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
    light = summarize("local", [(20.0, 20.0), (30.0, 30.0), (95.0, 95.0)] + [(25.0, 25.0)] * 7)
    assert light["cpu_over_90_share"] == 0.1
    assert not saturated([light])
    assert saturated([light, summarize("master", [(95.0, 95.0), (96.0, 96.0), (10.0, 10.0)])])


def test_waiting_for_a_core_counts_as_busy() -> None:
    """On a shared machine: 60 % CPU plus 35 % in the run queue is a saturated process."""
    starved = summarize("worker a", [(60.0, 95.0)] * 4)
    assert starved["cpu_p50"] == 60.0 and starved["cpu_over_90_share"] == 1.0
    assert saturated([starved])


def test_no_samples_gives_no_figures() -> None:
    assert summarize("local", [])["cpu_p50"] is None
    assert not saturated([])


def test_the_sampler_sees_this_process_work() -> None:
    sampler = CpuSampler()
    total = 0
    for n in range(3_000_000):
        total += n
    cpu, busy = sampler.sample()
    assert 0 < cpu <= busy


def test_a_worker_is_named_by_its_host_and_eight_hex_digits_of_its_id() -> None:
    assert process_label("worker vm_1c22946a13374a809e3c3cb6de2e9057") == "worker vm_1c22946a"
    assert process_label("worker my-host.example_a9c8d0ae4bf741ec9e9430b3f7938cee") == "worker my-host.example_a9c8d0ae"
    assert process_label("master") == "master" and process_label("local") == "the Locust process"
    assert process_label("worker vm_1c22946a") == "worker vm_1c22946a"  # not a full Locust id: as it is
