"""Retry-After as any server may send it: a table, in the style of the Stainless SDKs' own test.

RFC 9110 §10.2.3: delay-seconds or an HTTP-date; §5.6.7: IMF-fixdate, RFC 850
and asctime dates are all to be accepted. Unusable values give None (the
caller backs off on its own), never a made-up or negative wait.
"""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from wizchat_management._retry_after import parse_retry_after, retry_after_from_response

NOW = email.utils.mktime_tz(email.utils.parsedate_tz("Sun, 06 Nov 1994 08:49:37 GMT"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20", 20.0),
        ("0", 0.0),
        ("1.5", 1.5),  # not RFC, but what some servers send; Stainless SDKs accept it too
        ("  7  ", 7.0),
        ("100000000", 100000000.0),  # absurd but a number: the caller's cap decides
        ("Sun, 06 Nov 1994 08:50:07 GMT", 30.0),  # IMF-fixdate, 30 s ahead
        ("Sunday, 06-Nov-94 08:50:07 GMT", 30.0),  # obsolete RFC 850 form
        ("Sun Nov  6 08:50:07 1994", 30.0),  # asctime
        ("Sun, 06 Nov 1994 10:50:07 +0200", 30.0),  # an offset other than GMT
        ("Sun, 06 Nov 1994 08:49:07 GMT", 0.0),  # already past: go now
        ("Fri, 01 Jan 1990 00:00:00 GMT", 0.0),
        ("-5", None),
        ("NaN", None),
        ("nan", None),
        ("inf", None),
        ("-inf", None),
        ("1e999", None),  # overflows to inf
        ("soon", None),
        ("0x10", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("Sun, 06 Nov 1994", None),  # a date without a time
        ("Sun, 32 Nov 1994 08:49:37 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    got = parse_retry_after(value, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("headers", "details", "expected"),
    [
        ({"retry-after": "3"}, {"retryAfterMs": 250}, 0.25),  # the exact figure wins
        ({"retry-after": "3"}, {"retryAfterMs": -1}, 3.0),  # a broken detail falls back to the header
        ({"retry-after": "3"}, {"retryAfterMs": float("nan")}, 3.0),
        ({"retry-after": "3"}, {"retryAfterMs": True}, 3.0),
        ({"retry-after": "3"}, {"retryAfterMs": "250"}, 3.0),
        ({"retry-after": "Sun, 06 Nov 1994 08:49:47 GMT"}, None, 10.0),
        ({}, {"retryAfterMs": 1e15}, 1e12),  # absurd but finite: the caller caps it
        ({}, None, None),
    ],
)
def test_retry_after_from_response(headers: dict[str, str], details: Any, expected: float | None) -> None:
    got = retry_after_from_response(headers, details, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


# A server whose clock is off: its Retry-After date and its Date header are both on its clock.
AHEAD_5_MIN, BEHIND_5_MIN = "Sun, 06 Nov 1994 08:54:37 GMT", "Sun, 06 Nov 1994 08:44:37 GMT"


@pytest.mark.parametrize(
    ("retry_after", "date", "expected", "why"),
    [
        ("Sun, 06 Nov 1994 08:54:47 GMT", AHEAD_5_MIN, 10.0, "5 min ahead: 10 s on its clock, not 310 s"),
        ("Sun, 06 Nov 1994 08:44:47 GMT", BEHIND_5_MIN, 10.0, "5 min behind: 10 s, not 0 (a 429 at once)"),
        ("Sun, 06 Nov 1994 08:50:07 GMT", "Sun, 06 Nov 1994 08:49:38 GMT", 30.0, "within the tolerance: our clock"),
        ("Sun, 06 Nov 1994 08:50:07 GMT", "not a date", 30.0, "an unreadable Date: our clock"),
        ("Sun, 06 Nov 1994 08:50:07 GMT", None, 30.0, "no Date: our clock"),
        ("12", AHEAD_5_MIN, 12.0, "delay-seconds need no clock"),
    ],
)
def test_an_http_date_is_measured_on_the_servers_clock_when_ours_disagrees(
    retry_after: str, date: str | None, expected: float, why: str
) -> None:
    assert parse_retry_after(retry_after, now=NOW, server_date=date) == pytest.approx(expected), why
    headers = {"retry-after": retry_after, **({"date": date} if date is not None else {})}
    assert retry_after_from_response(headers, None, now=NOW) == pytest.approx(expected), why
