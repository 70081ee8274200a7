"""Rate-limit floor: how close `wizsync plan` / `wizsync apply` come to what the API's limits allow.

The emulator runs as a subprocess with K keys (one tenant each), per-key rate
R and burst B, added latency L; a generated fleet of N chatbots is spread
over the keys (bench/fleetgen.py). wizsync runs as a CLI subprocess, so its
CPU seconds and peak RSS are its own (os.wait4). Requests and 429s come from
the emulator's per-key stats (deltas around each phase).

    T_floor = max over keys of (accepted_k − B) / R      (docs/rate-limits.md, "The floor")

where accepted_k = requests_k − 429s_k (a 429 costs the key no token, so
sending it does not move the floor). Targets: T/T_floor ≤ 1.10, 429s ≤ 1 %.
T is the CLI's whole wall time (process start, manifest, journal included);
``startup`` is the wall time of `wizsync validate` on the same manifest, the
part of T that no request pacing can shorten. ``window`` is the request phase
alone, seen from the emulator (first to last request, ±50 ms);
``before_first_request_s`` (process start to the first request) and
``after_last_request_s`` (the last request to the process's exit: the last
answers, the report, the journal's close, interpreter teardown) are the rest
of T: T = before + window + after.

Baselines, same emulator settings, same documents, dry-runs like plan:
(a) a sequential loop over the sync SDK; (b) a fixed pool of 10 threads
retrying 429s after Retry-After (decK/Terraform ``-parallelism=10``).

    python bench/rate_limit_floor.py            # N=1000 K=4 R=20 B=20 L=20ms (~2.5 min)
    python bench/rate_limit_floor.py --quick    # N=240 K=4 R=20 B=20 L=20ms (~40 s)
    python bench/rate_limit_floor.py --n 2000 --keys 8 --rate 10 --burst 5 --latency-ms 50 --skip-baselines
    python bench/rate_limit_floor.py --wide     # plan: 4 x 250, 40 x 25 and 200 x 5 keys x chatbots (~2 min)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines  # noqa: E402
import fleetgen  # noqa: E402

from wizchat_management.emulator import EmulatorProcess  # noqa: E402


def _settle(rate: float, burst: int) -> None:
    """Let every bucket fill up again, so each phase starts from the same state (full burst)."""
    time.sleep(burst / rate + 0.3)


def wizsync_phase(name: str, args: list[str], emu: EmulatorProcess, work: Path, env: dict[str, str], o: argparse.Namespace) -> dict[str, Any]:
    before = emu.stats()
    with fleetgen.Window(emu) as window:
        res = fleetgen.run_cli(args, cwd=work, env=env)
    after = emu.stats()
    if res.returncode != 0:
        raise SystemExit(f"wizsync {name} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    per_key = fleetgen.stats_delta(before, after)
    doc = json.loads(res.stdout)
    keys = doc.get("keys") or {}
    requests = sum(s["requests"] for s in per_key.values())
    throttled = sum(s["rate_limited"] for s in per_key.values())
    floor = fleetgen.floor_seconds(per_key, o.rate, o.burst)
    return {
        "phase": name,
        "chatbots": len(doc.get("chatbots") or doc.get("items") or []),
        "wall_s": round(res.wall, 3),
        "floor_s": round(floor, 3),
        "t_over_floor": round(res.wall / floor, 3) if floor else None,
        "window_s": round(window.seconds or 0.0, 3),
        "window_over_floor": round((window.seconds or 0.0) / floor, 3) if floor else None,
        "before_first_request_s": round(window.first - res.started, 3) if window.first else None,
        "after_last_request_s": round(res.ended - window.last, 3) if window.last else None,
        "requests": requests,
        "429s": throttled,
        "429_pct": round(100.0 * throttled / requests, 3) if requests else 0.0,
        "retries": sum(int(s.get("retries", 0)) for s in keys.values()),
        "throttled_seen": sum(int(s.get("throttled", 0)) for s in keys.values()),
        "cpu_s": round(res.cpu, 3),
        "peak_rss_mb": round(res.max_rss_mb, 1),
        "per_key": per_key,
    }


def baseline_phase(kind: str, jobs: list[baselines.Job], clients: dict[str, Any], emu: EmulatorProcess,
                   o: argparse.Namespace) -> dict[str, Any]:
    before = emu.stats()
    cpu0, _ = fleetgen.self_usage()
    with fleetgen.Window(emu) as window:
        wall, c = baselines.run(kind, jobs, clients, parallelism=10)
    cpu1, rss = fleetgen.self_usage()
    per_key = fleetgen.stats_delta(before, emu.stats())
    requests = sum(s["requests"] for s in per_key.values())
    throttled = sum(s["rate_limited"] for s in per_key.values())
    floor = fleetgen.floor_seconds(per_key, o.rate, o.burst)
    return {
        "phase": f"baseline {kind}" + (" x10" if kind == "pool" else ""),
        "chatbots": len(jobs) - c.failed,
        "wall_s": round(wall, 3),
        "floor_s": round(floor, 3),
        "t_over_floor": round(wall / floor, 3) if floor else None,
        "window_s": round(window.seconds or 0.0, 3),
        "window_over_floor": round((window.seconds or 0.0) / floor, 3) if floor else None,
        "requests": requests,
        "429s": throttled,
        "429_pct": round(100.0 * throttled / requests, 3) if requests else 0.0,
        "retries": c.retries + c.throttled,
        "throttled_seen": c.throttled,
        "cpu_s": round(cpu1 - cpu0, 3),
        "peak_rss_mb": round(rss, 1),
        "per_key": per_key,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller defaults: N=240 (about 40 s in all)")
    p.add_argument("--n", type=int, help="chatbots (default 1000; --quick 240)")
    p.add_argument("--keys", type=int, default=4, help="API keys = tenants (default 4)")
    p.add_argument("--rate", type=float, default=20.0, help="per-key rate, requests/s (default 20)")
    p.add_argument("--burst", type=int, default=20, help="per-key burst (default 20)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added server latency (default 20 ms)")
    p.add_argument("--concurrency", type=int, default=None, help="wizsync --concurrency (default: its own)")
    p.add_argument("--skip-baselines", action="store_true")
    p.add_argument("--skip-apply", action="store_true")
    p.add_argument("--json-only", action="store_true", help="print only the JSON document")
    p.add_argument("--wide", action="store_true",
                   help="plan only, side by side: the 4-key case and the wide fleets (issue 14 §2): "
                   "40 keys x 25 chatbots at R=5 B=1, 200 keys x 5 chatbots at R=1 B=1")
    o = p.parse_args()
    o.n = o.n or (240 if o.quick else 1000)
    if o.wide:
        return wide(o)
    rows, startup = measure(o)
    report(o, rows, startup)
    return 0


WIDE = [  # (label, chatbots, keys, rate, burst): each floor is 4-12 s, so fixed costs show
    ("4 keys x 250", 1000, 4, 20.0, 20),
    ("40 keys x 25", 1000, 40, 5.0, 1),
    ("200 keys x 5", 1000, 200, 1.0, 1),
]


def wide(o: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for label, n, keys, rate, burst in WIDE:
        shape = argparse.Namespace(**{**vars(o), "n": n, "keys": keys, "rate": rate, "burst": burst,
                                      "skip_baselines": True, "skip_apply": True})
        phase_rows, startup = measure(shape)
        for r in phase_rows:
            r["phase"] = f"{r['phase']}, {label} (R={rate:g} B={burst})"
            r["startup_s"] = round(startup.wall, 3)
        rows += phase_rows
    doc = {"bench": "rate_limit_floor --wide", "targets": {"t_over_floor": 1.10}, "phases": rows}
    print(json.dumps(doc, indent=2))
    if not o.json_only:
        cols = ["phase", "wall_s", "floor_s", "t_over_floor", "window_s", "window_over_floor", "before_first_request_s",
                "after_last_request_s", "startup_s", "requests", "429s", "cpu_s", "peak_rss_mb"]
        print(file=sys.stderr)
        print(fleetgen.table(rows, cols), file=sys.stderr)
    return 0


def measure(o: argparse.Namespace) -> tuple[list[dict[str, Any]], Any]:
    with tempfile.TemporaryDirectory(prefix="wizsync-floor-") as tmp:
        work = Path(tmp)
        seed = fleetgen.write_seed(work / "seed.json", o.n, o.keys)
        args = ["--seed", str(seed), "--rate", str(o.rate), "--burst", str(o.burst), "--latency-ms", str(o.latency_ms)]
        with EmulatorProcess(args) as emu:
            manifest = fleetgen.write_workspace(work, emu.base_url, o.n, o.keys)
            env = fleetgen.base_env(emu.key_env)
            common = ["--env", fleetgen.ENV, "--journal", str(work / "journal.db"), "--json"]
            if o.concurrency:
                common += ["--concurrency", str(o.concurrency)]
            startup = fleetgen.run_cli(["validate", manifest.name], cwd=work, env=env)
            rows: list[dict[str, Any]] = []
            _settle(o.rate, o.burst)
            rows.append(wizsync_phase("wizsync plan", ["plan", manifest.name, *common], emu, work, env, o))
            if not o.skip_baselines:
                jobs = baselines.jobs(manifest, fleetgen.ENV, env)
                labels = sorted({j.label for j in jobs})
                clients = baselines.make_clients(env, emu.base_url, labels, lambda lb: f"WIZCHAT_{lb.split('/')[0].upper()}_STAGING_KEY")
                for kind in ("pool", "sequential"):
                    _settle(o.rate, o.burst)
                    rows.append(baseline_phase(kind, jobs, clients, emu, o))
                for c in clients.values():
                    c.close()
            if not o.skip_apply:
                _settle(o.rate, o.burst)
                rows.append(wizsync_phase("wizsync apply", ["apply", manifest.name, *common, "--yes", "--batches", "100%"],
                                          emu, work, env, o))
                applied = emu.stats()["total"]["applies"]
                rows[-1]["server_applies"] = applied
    return rows, startup


def report(o: argparse.Namespace, rows: list[dict[str, Any]], startup: Any) -> None:
    plan = rows[0]
    for r in rows[1:]:
        if r["phase"].startswith("baseline"):
            r["wizsync_plan_speedup"] = round(r["wall_s"] / plan["wall_s"], 2)
    doc = {
        "bench": "rate_limit_floor",
        "settings": {"chatbots": o.n, "keys": o.keys, "rate": o.rate, "burst": o.burst, "latency_ms": o.latency_ms,
                     "concurrency": o.concurrency},
        "startup_s": round(startup.wall, 3),
        "targets": {"t_over_floor": 1.10, "429_pct": 1.0},
        "phases": rows,
    }
    print(json.dumps(doc, indent=2))
    if not o.json_only:
        cols = ["phase", "chatbots", "wall_s", "floor_s", "t_over_floor", "window_s", "window_over_floor",
                "before_first_request_s", "after_last_request_s", "requests", "429s", "429_pct", "retries", "cpu_s",
                "peak_rss_mb", "wizsync_plan_speedup"]
        print(file=sys.stderr)
        print(f"N={o.n} K={o.keys} R={o.rate}/s B={o.burst} L={o.latency_ms} ms; startup (validate) {startup.wall:.2f} s",
              file=sys.stderr)
        print(fleetgen.table(rows, cols), file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
