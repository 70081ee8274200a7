"""The blind limiter's learning cost at every phase of the server's second, on a simulated clock.

`bench/rate_limit_scenarios.py` measures the blind rows against the
emulator, but one run of a row lands on one phase: where in the server's
second the first 429 falls decides how far an HTTP-date (or whole-second)
Retry-After rounds the first wait up, and so how slowly the shared climb
starts (docs/rate-limits.md, "Learning a limit blind"). Five emulator runs
of a row are five random phases and four minutes; this sweeps them all in
seconds, deterministically, so a change to `wizsync/engine/grant.py` can be
read phase by phase before the emulator bench confirms it.

It drives the simulated servers and fleet loop of
`tests/test_engine_blind_limiter.py` (token bucket, fixed window,
sliding-window log, and the sliding log whose Retry-After is an HTTP-date),
K keys of one server with a limit each, sharing one climb as the executor's
keys do, each sending N accepted requests, latency L. For each limiter and
each start phase (0, 1/P, ..., (P-1)/P of a second):

    over = elapsed / floor,   floor = (N − burst) / rate   (no start-up: it is not a process)

and the 429s of all keys. Printed per limiter: mean, worst and best over the
phases, the worst phase, and the 429s (mean and worst); ``--each`` prints
every phase.

Read it as a guide, not a verdict: the simulation has no jitter and no
queueing, and its fixed window is aligned to the simulated clock's seconds.
A change that looked neutral here for the fixed window (a trial figure above
the held pace) drew 429s from the emulator's (docs/benchmarks.md,
2026-12-03): the emulator bench decides.

    python bench/blind_phases.py                  # K=6, N=61, R=2/s, B=2, L=20 ms, 20 phases
    python bench/blind_phases.py --each --only date
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleetgen  # noqa: E402

_SIM = Path(__file__).resolve().parent.parent / "tests" / "test_engine_blind_limiter.py"


def _simulation() -> Any:
    """The test module whose simulated servers and fleet loop this sweeps (loaded by path: no test is run)."""
    spec = importlib.util.spec_from_file_location("blind_limiter_simulation", _SIM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=6, help="keys of one server (default 6, as rate_limit_scenarios.py)")
    p.add_argument("--n", type=int, default=61, help="accepted requests per key (default 61: 60 dry-runs + 1)")
    p.add_argument("--rate", type=float, default=2.0, help="requests/s per key (default 2)")
    p.add_argument("--burst", type=int, default=2, help="burst per key (default 2)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="round trip (default 20 ms)")
    p.add_argument("--phases", type=int, default=20, help="start phases across one second (default 20)")
    p.add_argument("--only", action="append", default=[], help="limiters whose name contains this")
    p.add_argument("--each", action="store_true", help="print every phase, not only the summary")
    o = p.parse_args()
    sim = _simulation()
    limiters = {  # name: (server class, sends Retry-After)
        "token bucket, Retry-After seconds": (sim.TokenBucket, True),
        "token bucket, bare 429": (sim.TokenBucket, False),
        "fixed window, bare 429": (sim.FixedWindow, False),
        "sliding-window log, Retry-After seconds": (sim.SlidingLog, True),
        "sliding-window log, HTTP-date": (sim.DateSlidingLog, True),
    }
    rows, each = [], []
    for name, (server, retry_after) in limiters.items():
        if o.only and not any(s in name for s in o.only):
            continue
        overs, throttled = [], []
        for i in range(o.phases):
            phase = i / o.phases
            over, per_key, _ = sim.run_fleet(server, o.rate, o.burst, o.n, keys=o.keys, retry_after=retry_after,
                                             latency=o.latency_ms / 1000, start=1000.0 + phase)
            overs.append(over)
            throttled.append(sum(per_key))
            each.append({"limiter": name, "phase": phase, "over_floor": round(over, 3), "429s": sum(per_key),
                         "429s_per_key": per_key})
        worst = max(range(len(overs)), key=overs.__getitem__)
        rows.append({"limiter": name, "mean": statistics.mean(overs), "worst": overs[worst], "best": min(overs),
                     "worst_phase": worst / o.phases, "429s_mean": statistics.mean(throttled),
                     "429s_worst": max(throttled), "requests": o.keys * o.n})
    print(json.dumps({"bench": "blind_phases", "settings": vars(o), "limiters": rows, "phases": each}, indent=2))
    print(file=sys.stderr)
    print(f"K={o.keys} N={o.n} R={o.rate}/s B={o.burst} L={o.latency_ms} ms, {o.phases} phases (simulated clock)",
          file=sys.stderr)
    if o.each:
        print(fleetgen.table(each, ["limiter", "phase", "over_floor", "429s", "429s_per_key"]), file=sys.stderr)
        print(file=sys.stderr)
    print(fleetgen.table(rows, ["limiter", "mean", "worst", "best", "worst_phase", "429s_mean", "429s_worst",
                                "requests"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
