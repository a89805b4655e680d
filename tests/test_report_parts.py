"""A library call is recorded whole and in parts; the report keeps the parts out of the requests."""

from __future__ import annotations

from redis_harness.load.recorder import Recorder, part_name, split_part
from redis_harness.report.analysis import split_parts
from redis_harness.report.gates import is_update
from redis_harness.report.text import library_table


def test_parts_are_grouped_under_their_call_and_leave_the_requests() -> None:
    recorder = Recorder()
    for us in (300, 400, 500):
        recorder.record("cache.get price", us, True, redis_call=False)
        recorder.record(part_name("cache.get price", "redis"), us - 100, True)
        recorder.record(part_name("cache.get price", "library"), 90, True, redis_call=False)
    recorder.record("GET raw", 50, False)
    recorder.record("odd [name]", 7, True)  # brackets that are not a part stay a request
    requests, calls = split_parts(recorder.commands())
    assert set(requests) == {"cache.get price", "GET raw", "odd [name]"}
    assert set(calls) == {"cache.get price"}
    parts = calls["cache.get price"]
    assert parts["total"]["count"] == parts["redis"]["count"] == parts["library"]["count"] == 3
    assert parts["redis"]["p50_us"] < parts["total"]["p50_us"] and "origin" not in parts
    header, row = library_table(calls)[1:]  # under the p50 µs / p99 µs labels
    cells = dict(zip(header.split()[2:6], row.split()[2:6], strict=True))  # the p50s: whole, redis, origin, library
    expected = {"whole": parts["total"]["p50_us"], "redis": parts["redis"]["p50_us"], "library": 90}
    assert row.startswith("cache.get price") and cells == {**{k: f"{v:,}" for k, v in expected.items()}, "origin": "-"}


def test_library_updates_are_judged_as_updates() -> None:
    assert is_update("cache.on_price price") and is_update("cache.write_quotes price") and is_update("SET raw")
    assert not is_update("cache.get price") and not is_update("GET raw")


def test_part_names_round_trip() -> None:
    assert split_part(part_name("cache.get price", "origin")) == ("cache.get price", "origin")
    assert split_part("odd [name]") == ("odd [name]", None) and split_part("GET raw") == ("GET raw", None)
