"""``json.dumps(value, indent=2, ensure_ascii=True, allow_nan=False)``, byte for byte, ~2.5× faster.

With ``indent`` set, the standard library encodes in pure Python (its C encoder
takes no indent): a generator per container and a yield per token, ~50 µs for
one chatbot's ``--json`` entry, written once per chatbot (report/spool.py).
Here the same text is built by direct recursion, strings escaped by the
standard library's own C escaper; anything outside plain JSON types (a key
that is not a string, an unknown type, a cycle) goes to ``json.dumps`` itself,
so its errors and conversions stay exactly the standard library's.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

__all__ = ["indented"]

_INF = float("inf")


class _Unsupported(Exception):
    pass


def indented(value: Any) -> str:
    """The text ``json.dumps(value, indent=2, ensure_ascii=True, allow_nan=False)`` returns."""
    out: list[str] = []
    try:
        _emit(value, "\n", out)
    except (_Unsupported, RecursionError):
        return json.dumps(value, indent=2, ensure_ascii=True, allow_nan=False)
    return "".join(out)


def _emit(value: Any, nl: str, out: list[str]) -> None:
    # The order of json.encoder._make_iterencode's checks: str, None, True, False, int, float, list/tuple, dict.
    if isinstance(value, str):
        out.append(encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (_INF, -_INF):
            raise ValueError("Out of range float values are not JSON compliant: " + repr(value))
        out.append(float.__repr__(value))
    elif isinstance(value, (list, tuple)):
        _emit_list(value, nl, out)
    elif isinstance(value, dict):
        _emit_dict(value, nl, out)
    else:
        raise _Unsupported


def _emit_list(value: list[Any] | tuple[Any, ...], nl: str, out: list[str]) -> None:
    if not value:
        out.append("[]")
        return
    inner = nl + "  "
    sep = "[" + inner
    for item in value:
        out.append(sep)
        sep = "," + inner
        _emit(item, inner, out)
    out.append(nl + "]")


def _emit_dict(value: dict[Any, Any], nl: str, out: list[str]) -> None:
    if not value:
        out.append("{}")
        return
    inner = nl + "  "
    sep = "{" + inner
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Unsupported  # json converts numbers, booleans and None keys: its own path does
        out.append(sep + encode_basestring_ascii(key) + ": ")
        sep = "," + inner
        _emit(item, inner, out)
    out.append(nl + "}")
