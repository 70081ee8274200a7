"""Per-key statistics and the request log the admin API serves (key labels only, never key values)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}

    def _entry(self, label: str) -> dict[str, Any]:
        e = self._keys.get(label)
        if e is None:
            e = self._keys[label] = {
                "requests": 0, "byStatus": {}, "rateLimited": 0, "applies": 0, "dryRuns": 0, "partialFailures": 0,
            }
        return e

    def request(self, label: str, status: int) -> None:
        with self._lock:
            e = self._entry(label)
            e["requests"] += 1
            s = str(status) if status else "dropped"
            e["byStatus"][s] = e["byStatus"].get(s, 0) + 1
            if status == 429:
                e["rateLimited"] += 1

    def count(self, label: str, what: str) -> None:
        """``what``: applies, dryRuns or partialFailures."""
        with self._lock:
            self._entry(label)[what] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            keys = {k: {**v, "byStatus": dict(v["byStatus"])} for k, v in self._keys.items()}
        total: dict[str, Any] = {"requests": 0, "byStatus": {}, "rateLimited": 0, "applies": 0, "dryRuns": 0,
                                 "partialFailures": 0}
        for v in keys.values():
            for f in ("requests", "rateLimited", "applies", "dryRuns", "partialFailures"):
                total[f] += v[f]
            for s, n in v["byStatus"].items():
                total["byStatus"][s] = total["byStatus"].get(s, 0) + n
        return {"keys": keys, "total": total}

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


class RequestLog:
    """The last ``size`` requests: method, path, status, key label, request id, arrival, duration.

    ``at`` is when the request arrived (Unix time, ms): what a test groups a key's 429s by.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def add(self, method: str, path: str, status: int, label: str | None, request_id: str, started: float) -> None:
        took = time.perf_counter() - started
        self._entries.append(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "at": round(time.time() - took, 3),
                "method": method,
                "path": path,
                "status": status,
                "key": label,
                "requestId": request_id,
                "durationMs": round(took * 1000, 3),
            }
        )

    def entries(self, limit: int | None = None, label: str | None = None) -> list[dict[str, Any]]:
        items = [e for e in list(self._entries) if label is None or e["key"] == label]
        return items[-limit:] if limit else items

    def clear(self) -> None:
        self._entries.clear()
