"""The report's JSON text is the standard library's, byte for byte (report/jsontext.py)."""

from __future__ import annotations

import enum
import json
import random
from typing import Any

import pytest

from wizsync.report.jsontext import indented


class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def _expected(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=True, allow_nan=False)


SAMPLES: list[Any] = [
    None, True, False, 0, -7, 2**70, 0.1, -0.0, 1e16, 1.5e-300, "", "plain", "Grüße \u2028 \U0001f600 \"q\" \\ \n\t\x00",
    [], {}, (), [[]], {"a": {}}, {"a": [1, [2, {"b": None}]], "c": ()}, [Colour.RED, Level.HIGH],
    {"name": "t000/bot-00000", "summary": {"create": 0, "update": 1}, "operations": [
        {"op": "update", "section": "core", "key": None, "changes": [{"path": "temperature", "before": 0.3, "after": 0.5}]}]},
]


@pytest.mark.parametrize("value", SAMPLES)
def test_the_text_is_json_dumps_own(value: Any) -> None:
    assert indented(value) == _expected(value)


def test_random_documents_are_json_dumps_own() -> None:
    rng = random.Random(14)
    leaves: list[Any] = [None, True, False, 0, 1, -3, 2.5, 1e-7, "x", "ü", "a\"b", "\x1f"]

    def build(depth: int) -> Any:
        kind = rng.random()
        if depth > 4 or kind < 0.4:
            return rng.choice(leaves)
        if kind < 0.7:
            return [build(depth + 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice(["a", "b", "ключ", "k\n"]) + str(i): build(depth + 1) for i in range(rng.randint(0, 4))}

    for _ in range(500):
        value = build(0)
        assert indented(value) == _expected(value)


def test_what_json_converts_or_refuses_is_left_to_json() -> None:
    assert indented({1: "a", None: "b", 2.5: "c", True: "d"}) == _expected({1: "a", None: "b", 2.5: "c", True: "d"})
    for bad in (float("nan"), float("inf"), {"x": [float("-inf")]}):
        with pytest.raises(ValueError):
            indented(bad)
    with pytest.raises(TypeError):
        indented({"x": object()})
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError):
        indented(cycle)
