"""Rollout arithmetic, pure: order, batches and the failure budget.

- Order: by ``rollout.waves`` (a chatbot without a wave is in ``default``),
  then manifest order. Users rely on the canary going first (argo-cd #29410
  is what happens when a later step runs before an earlier one).
- Batches: sizes as absolute counts or percentages of the whole run; the
  last size repeats until every chatbot has a batch.
- Budget: ``maxFailures`` is a count or a percentage of the run; the run
  halts after the batch in which failures exceed it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TypeVar

from ..manifest import parse_percent

__all__ = ["parse_batches", "batch_sizes", "cut_batches", "wave_order", "failure_budget", "budget_exceeded", "parse_max_failures"]

T = TypeVar("T")


def _exact_percent(spec: str) -> Fraction:
    """The percentage as an exact fraction: with floats, 64.4% of 250 came out 161.00000000000003
    (ceil → 162) and 18.4% of 375 came out 68.99999999999999 (floor → a budget of 68, not 69)."""
    pct = parse_percent(spec)
    assert pct is not None, spec
    return pct


def parse_batches(text: str) -> list[int | str]:
    """``"1,10%,100%"`` → ``[1, "10%", "100%"]``; ValueError with the offending part."""
    sizes: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        pct = parse_percent(part)
        if pct is not None:
            if not 0 < pct <= 100:
                raise ValueError(f"batch size {part!r} must be a percentage in (0%, 100%]")
            sizes.append(part)
            continue
        try:
            n = int(part)
        except ValueError:
            raise ValueError(f"batch size {part!r} is neither a count (5) nor a percentage (10%)") from None
        if n < 1:
            raise ValueError(f"batch size {part!r} must be at least 1")
        sizes.append(n)
    return sizes


def parse_max_failures(text: str) -> int | str:
    """``"3"`` → 3, ``"5%"`` → ``"5%"``; ValueError otherwise."""
    pct = parse_percent(text)
    if pct is not None:
        if not 0 <= pct <= 100:
            raise ValueError(f"--max-failures {text!r} must be a percentage in [0%, 100%]")
        return text.strip()
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"--max-failures {text!r} is neither a count (0, 3) nor a percentage (5%)") from None
    if n < 0:
        raise ValueError("--max-failures must be 0 or more")
    return n


def _size(spec: int | str, total: int) -> int:
    if isinstance(spec, int):
        return spec
    return max(1, math.ceil(total * _exact_percent(spec) / 100))


def batch_sizes(total: int, specs: Sequence[int | str]) -> list[int]:
    """The size of each batch for ``total`` chatbots (the last spec repeats)."""
    if not specs:
        specs = ["100%"]
    sizes: list[int] = []
    left = total
    i = 0
    while left > 0:
        n = min(left, _size(specs[min(i, len(specs) - 1)], total))
        sizes.append(n)
        left -= n
        i += 1
    return sizes


def cut_batches(items: Sequence[T], specs: Sequence[int | str]) -> list[list[T]]:
    out: list[list[T]] = []
    start = 0
    for n in batch_sizes(len(items), specs):
        out.append(list(items[start : start + n]))
        start += n
    return out


def wave_order(waves_in_order: Sequence[str], wave_of: Sequence[str]) -> list[int]:
    """Indexes of the chatbots sorted by wave (listed order; unlisted waves last), then manifest order."""
    rank = {w: i for i, w in enumerate(waves_in_order)}
    return sorted(range(len(wave_of)), key=lambda i: (rank.get(wave_of[i], len(rank)), i))


def failure_budget(max_failures: int | str, total: int) -> int:
    """How many failed chatbots the run tolerates."""
    if isinstance(max_failures, int):
        return max_failures
    return math.floor(total * _exact_percent(max_failures) / 100)


def budget_exceeded(failures: int, max_failures: int | str, total: int) -> bool:
    return failures > failure_budget(max_failures, total)
