"""The benchmark's verdicts: issue #14's round-two targets judged on one run's rows."""

from __future__ import annotations

from bench.report import (
    ADD_NEW,
    ARCHIVE,
    CEILING,
    CEILING_HOP,
    OPEN_LOOP,
    OPEN_LOOP_RATE,
    OUTBOX_EMPTY,
    OUTBOX_FULL,
    PAYMENT,
    Results,
    Row,
    Target,
    targets,
)
from bench.wrk import Measure


def measure(rps: float = 100, p50: float = 10, p99: float = 20, errors: int = 0) -> Measure:
    return Measure(requests=int(rps * 10), seconds=10, p50_ms=p50, p99_ms=p99, errors=errors)


def results(*rows: Row, **fields: object) -> Results:
    run = Results(
        machine={}, rows=[Row(CEILING, measure(10_000)), Row(CEILING_HOP, measure(1_000))]
    )
    run.rows += rows
    for name, value in fields.items():
        setattr(run, name, value)
    return run


def verdict(run: Results, starts: str) -> Target:
    (found,) = [t for t in targets(run) if t.text.startswith(starts)]
    return found


def test_throughput_is_a_share_of_the_one_hop_ceiling_not_of_the_bare_one() -> None:
    half = verdict(results(Row(ADD_NEW, measure(rps=520))), f"{ADD_NEW}: ≥ 50%")
    short = verdict(results(Row(ADD_NEW, measure(rps=480))), f"{ADD_NEW}: ≥ 50%")

    assert half.met is True and half.measured.startswith("52%")
    assert short.met is False


def test_the_open_loop_row_is_judged_on_its_p99() -> None:
    name = OPEN_LOOP.format(ADD_NEW, OPEN_LOOP_RATE)

    assert verdict(results(Row(name, measure(p99=45))), name).met is True
    assert verdict(results(Row(name, measure(p99=60))), name).met is False
    assert verdict(results(), name).met is None


def test_payments_need_the_full_rate_and_count_and_none_late() -> None:
    def run(requests: int, late: int, p99: float = 50) -> bool | None:
        row = Row(
            PAYMENT, Measure(requests=requests, seconds=30, p50_ms=20, p99_ms=p99, errors=late)
        )
        paid = results(row, payment_late=late, payment_rate=100.0, payment_late_after_s=10.0)
        return verdict(paid, "payment → order paid").met

    assert run(3_000, 0) is True
    assert run(500, 0) is False  # the quick run's few payments cannot meet it
    assert run(3_000, 1) is False
    assert run(3_000, 0, p99=150) is False


def test_the_long_archive_is_compared_with_the_short_one_page_by_page() -> None:
    def run(long_p50: float) -> bool | None:
        rows = [
            Row(ARCHIVE.format("deep", "10k"), measure(p50=long_p50)),
            Row(ARCHIVE.format("deep", 10), measure(p50=10)),
        ]
        return verdict(results(*rows), ARCHIVE.format("deep", "10k")).met

    assert run(14) is True
    assert run(16) is False


def test_outbox_latency_with_history_is_compared_with_an_empty_outbox() -> None:
    full = OUTBOX_FULL.format("1M")

    def run(p50: float) -> bool | None:
        rows = [Row(OUTBOX_EMPTY, measure(p50=10)), Row(full, measure(p50=p50))]
        return verdict(results(*rows), full).met

    assert run(12) is True
    assert run(20) is False
    assert verdict(results(), full).met is None


def test_search_pages_are_a_share_of_the_ceiling_and_barely_slower_at_100k() -> None:
    from bench.report import SEARCH

    small, large = SEARCH.format("1k", "typo"), SEARCH.format("100k", "typo")

    def run(p50: float) -> bool | None:
        rows = [Row(small, measure(rps=400, p50=10)), Row(large, measure(rps=400, p50=p50))]
        return verdict(results(*rows), f"{large}: p50").met

    assert run(14) is True
    assert run(16) is False
    rows = [Row(large, measure(rps=360))]
    assert verdict(results(*rows), f"{large}: ≥ 35%").met is True
