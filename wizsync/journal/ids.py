"""Run ids and timestamps: pure helpers, no I/O.

A run id is ``r`` + UTC start time to the second + 4 random hex digits, e.g.
``r20261125-211530-ab12``: it sorts by start time as text, reads well in a
terminal and is short enough to type after ``wizsync resume``.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

RUN_ID_RE = re.compile(r"^r\d{8}-\d{6}-[0-9a-f]{4}$")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a ``Z``: fixed width, so text order is time order."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_rfc3339() -> str:
    return rfc3339(utc_now())


def parse_rfc3339(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def new_run_id(moment: datetime | None = None) -> str:
    moment = moment or utc_now()
    return moment.astimezone(timezone.utc).strftime("r%Y%m%d-%H%M%S-") + secrets.token_hex(2)
