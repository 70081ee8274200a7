"""Rollout arithmetic users plan around: batch sizes, the repeating last size, percentages rounded up,
failure budgets (N and P%, exceeded only when failures are MORE than the budget) and wave order."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

import pytest

from wizsync.apply.schedule import (
    batch_sizes,
    budget_exceeded,
    cut_batches,
    failure_budget,
    parse_batches,
    parse_max_failures,
    wave_order,
)

CANARY_10_100 = [1, "10%", "100%"]


@pytest.mark.parametrize(
    ("total", "specs", "sizes"),
    [
        (60, CANARY_10_100, [1, 6, 53]),
        (300, CANARY_10_100, [1, 30, 269]),
        (10, CANARY_10_100, [1, 1, 8]),
        (5, CANARY_10_100, [1, 1, 3]),  # 10% of 5 = 0.5 → 1 (rounded up, never 0)
        (2, CANARY_10_100, [1, 1]),
        (1, CANARY_10_100, [1]),
        (0, CANARY_10_100, []),
        (61, CANARY_10_100, [1, 7, 53]),  # 6.1 → 7
        # the last size repeats until every chatbot has a batch
        (30, [1, "10%"], [1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2]),
        (25, [10], [10, 10, 5]),
        (7, [2, 3], [2, 3, 2]),
        (10, ["33%"], [4, 4, 2]),  # 3.3 → 4
        (10, ["0.5%"], [1] * 10),
        (100, ["100%"], [100]),
        (100, [], [100]),  # no sizes: one batch
        (3, [5, 1], [3]),  # a size larger than what is left takes the rest
        # exact decimal percentages: 64.4% of 250 is 161, 17.6% of 375 is 66 (float products overshoot)
        (250, ["64.4%"], [161, 89]),
        (375, ["17.6%"], [66] * 5 + [45]),
    ],
)
def test_batch_sizes(total: int, specs: list[int | str], sizes: list[int]) -> None:
    assert batch_sizes(total, specs) == sizes
    assert sum(sizes) == total


def test_percentages_round_up_exactly_for_every_one_decimal_percentage() -> None:
    for total in (7, 60, 250, 375, 999):
        for tenths in range(1, 1001):
            spec = f"{Decimal(tenths) / 10}%"
            exact = Decimal(total) * Decimal(tenths) / 1000
            want = max(1, min(total, math.ceil(exact)))
            assert batch_sizes(total, [spec])[0] == want, (total, spec)


def test_cut_batches_keeps_order_and_every_item_once() -> None:
    items = [f"bot{i:02}" for i in range(60)]
    batches = cut_batches(items, CANARY_10_100)
    assert [len(b) for b in batches] == [1, 6, 53]
    assert [x for b in batches for x in b] == items


@pytest.mark.parametrize(
    ("max_failures", "total", "budget"),
    [
        (0, 60, 0),
        (1, 60, 1),
        (5, 3, 5),
        ("0%", 60, 0),
        ("5%", 60, 3),
        ("5%", 10, 0),  # 0.5 tolerated failures: the first failure exceeds it
        ("10%", 10, 1),
        ("100%", 7, 7),
        ("18.4%", 375, 69),  # exactly 69, not 68.99999
        ("32.8%", 375, 123),
    ],
)
def test_failure_budget(max_failures: int | str, total: int, budget: int) -> None:
    assert failure_budget(max_failures, total) == budget
    assert not budget_exceeded(budget, max_failures, total)
    assert budget_exceeded(budget + 1, max_failures, total)


def test_failure_budget_is_exact_for_every_one_decimal_percentage() -> None:
    for total in (7, 60, 375, 1000):
        for tenths in range(0, 1001):
            spec = f"{Decimal(tenths) / 10}%"
            assert failure_budget(spec, total) == int(Decimal(total) * Decimal(tenths) / 1000), (total, spec)


@pytest.mark.parametrize(
    ("waves", "wave_of", "order"),
    [
        (["canary", "default"], ["default", "default", "canary", "default"], [2, 0, 1, 3]),
        # listed order wins over manifest order; ties keep manifest order
        (["canary", "early", "default"], ["default", "early", "canary", "early", "canary"], [2, 4, 1, 3, 0]),
        # a wave not listed goes after every listed wave, still in manifest order
        (["canary", "default"], ["late", "default", "canary", "late"], [2, 1, 0, 3]),
        ([], ["b", "a", "b"], [0, 1, 2]),
    ],
)
def test_wave_order(waves: list[str], wave_of: list[str], order: list[int]) -> None:
    assert wave_order(waves, wave_of) == order


def test_parse_batches_and_max_failures() -> None:
    assert parse_batches("1, 10%,100%") == [1, "10%", "100%"]
    assert parse_max_failures("3") == 3
    assert parse_max_failures(" 5% ") == "5%"
    for bad in ("0", "-1", "0%", "101%", "x", "10 %%", "", "nan%"):
        with pytest.raises(ValueError):
            parse_batches(bad)
    for bad in ("-1", "101%", "many", "inf%"):
        with pytest.raises(ValueError):
            parse_max_failures(bad)


@pytest.mark.parametrize("text", ["10%", "0.5%", "12.5 %", " 100% ", ".5%", "5.%", "1e1%", "+5%", "5", "%", "0x10%"])
def test_the_command_line_and_the_manifest_read_a_percentage_alike(text: str) -> None:
    # One grammar: what --batches / --max-failures accept is what rollout.batches / maxFailures accept.
    from pydantic import ValidationError

    from wizsync.manifest import Rollout

    def cli(parse: Callable[[str], object]) -> bool:
        try:
            parse(text)
        except ValueError:
            return False
        return True

    def manifest(field: str) -> bool:
        try:
            Rollout.model_validate({field: [text] if field == "batches" else text})
        except ValidationError:
            return False
        return True

    if text.strip().endswith("%"):
        assert cli(parse_batches) == manifest("batches")
        assert cli(parse_max_failures) == manifest("maxFailures")
    assert cli(parse_batches) is (text in ("10%", "0.5%", "12.5 %", " 100% ", "5"))
