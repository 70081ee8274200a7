"""Servers wizsync has never seen (issue 10): `wizsync plan` and botocore's adaptive mode, side by side.

One emulator (a subprocess) per scenario, each one limiter of a real-world
kind (``wizsync emulator --limiter/--no-rate-headers/--retry-after/--org-rate``):

| scenario | emulator options | targets: wall/floor, 429s |
|---|---|---|
| token bucket with headers | (default) | ≤ 1.05, ≤ 1 % |
| token bucket, no headers | --no-rate-headers | ≤ 1.15, ≤ 3 % |
| fixed window, bare 429 | --limiter fixed-window --no-rate-headers --retry-after none | ≤ 1.15, ≤ 3 % |
| sliding-window log | --limiter sliding-window --no-rate-headers --retry-after http-date | ≤ 1.15, ≤ 3 % |
| org-shared limit | --org-rate 2R --org-burst 2B, two keys per organization | ≤ 1.20, ≤ 3 % |

K tenants (one key each) × N/K chatbots, rate R and burst B per key (the
org scenario: no per-key limit, one allowance of 2R/2B per organization of
two keys), L ms added to every answer. wizsync runs as a CLI subprocess
(`plan --json`); the baseline is botocore's own ClientRateLimiter (one per
key, a pool of 10 threads per key: bench/baselines.py), sending the same
dry-runs. Counts come from the emulator.

    T_floor = max over limits of (accepted − burst) / rate

(accepted = requests − 429s; a limit is a key, or an organization in the
org scenario). ``wall`` is the whole CLI process (start-up included);
``window`` is the request phase seen from the emulator (first request to
last, ±50 ms), the figure comparable with the in-process baseline.

    python bench/rate_limit_scenarios.py            # K=6, N=360, R=2, B=2, L=20 ms (~7 min)
    python bench/rate_limit_scenarios.py --quick    # N=180 (~4 min)
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

SCENARIOS: list[tuple[str, list[str], float, float]] = [
    ("token bucket, headers", [], 1.05, 1.0),
    ("token bucket, no headers", ["--no-rate-headers"], 1.15, 3.0),
    ("fixed window, bare 429", ["--limiter", "fixed-window", "--no-rate-headers", "--retry-after", "none"], 1.15, 3.0),
    ("sliding-window log", ["--limiter", "sliding-window", "--no-rate-headers", "--retry-after", "http-date"], 1.15, 3.0),
    ("org-shared limit", [], 1.20, 3.0),
]
ORG = "org-shared limit"


def org_seed(doc: dict[str, Any]) -> dict[str, Any]:
    """Two tenants' keys and chatbots per organization (tenants t000+t001, t002+t003, ...)."""
    orgs = doc["organizations"]
    merged = []
    for i in range(0, len(orgs), 2):
        pair = orgs[i : i + 2]
        for o in pair:  # chatbot names are unique per organization
            for c in o["chatbots"]:
                c["name"] = c["config"]["core"]["name"] = f"{o['tenant']}-{c['name']}"
        merged.append({"name": f"org-{i // 2}", "tenant": pair[0]["tenant"], "environment": fleetgen.ENV,
                       "keys": [k for o in pair for k in o["keys"]],
                       "chatbots": [c for o in pair for c in o["chatbots"]]})
    return {**doc, "organizations": merged}


def floor(per_key: dict[str, dict[str, int]], o: argparse.Namespace, org: bool) -> float:
    if not org:
        return fleetgen.floor_seconds(per_key, o.rate, o.burst)
    labels = sorted(per_key)
    grouped: dict[str, dict[str, int]] = {}
    for index, label in enumerate(labels):  # labels sort as t000, t001, ...: pairs share an organization
        g = grouped.setdefault(f"org-{index // 2}", {"requests": 0, "rate_limited": 0})
        g["requests"] += per_key[label]["requests"]
        g["rate_limited"] += per_key[label]["rate_limited"]
    return fleetgen.floor_seconds(grouped, 2 * o.rate, 2 * o.burst)


def measure(emu: EmulatorProcess, o: argparse.Namespace, org: bool, run: Any) -> dict[str, Any]:
    before = emu.stats()
    with fleetgen.Window(emu) as window:
        wall, extra = run()
    per_key = fleetgen.stats_delta(before, emu.stats())
    requests = sum(s["requests"] for s in per_key.values())
    throttled = sum(s["rate_limited"] for s in per_key.values())
    t_floor = floor(per_key, o, org)
    win = window.seconds or 0.0
    return {
        "wall_s": round(wall, 2),
        "window_s": round(win, 2),
        "floor_s": round(t_floor, 2),
        "wall_over_floor": round(wall / t_floor, 3) if t_floor else None,
        "window_over_floor": round(win / t_floor, 3) if t_floor else None,
        "requests": requests,
        "429s": throttled,
        "429_pct": round(100.0 * throttled / requests, 2) if requests else 0.0,
        **extra,
    }


def scenario(name: str, options: list[str], o: argparse.Namespace, work: Path) -> dict[str, Any]:
    org = name == ORG
    doc = fleetgen.seed(o.n, o.keys)
    if org:
        doc = org_seed(doc)
        limits = ["--org-rate", str(2 * o.rate), "--org-burst", str(2 * o.burst)]
    else:
        limits = ["--rate", str(o.rate), "--burst", str(o.burst)]
    seed = work / "seed.json"
    seed.write_text(json.dumps(doc))
    args = ["--seed", str(seed), *limits, *options, "--latency-ms", str(o.latency_ms)]
    row: dict[str, Any] = {"scenario": name}
    with EmulatorProcess(args) as emu:
        manifest = fleetgen.write_workspace(work, emu.base_url, o.n, o.keys)
        env = fleetgen.base_env(emu.key_env)
        journal = work / f"journal-{len(name)}-{time.monotonic_ns()}.db"
        cmd = ["plan", manifest.name, "--env", fleetgen.ENV, "--journal", str(journal), "--json"]

        def wizsync() -> tuple[float, dict[str, Any]]:
            res = fleetgen.run_cli(cmd, cwd=work, env=env)
            if res.returncode != 0:
                raise SystemExit(f"wizsync plan failed ({res.returncode}) in {name!r}:\n{res.stderr[-3000:]}")
            planned = len(json.loads(res.stdout).get("chatbots") or [])
            return res.wall, {"chatbots": planned}

        time.sleep(o.burst / o.rate + 0.3)  # every allowance whole at the start
        row["wizsync"] = measure(emu, o, org, wizsync)
        if not o.skip_baseline:
            jobs = baselines.jobs(manifest, fleetgen.ENV, env)
            labels = sorted({j.label for j in jobs})
            clients = baselines.make_clients(env, emu.base_url, labels,
                                             lambda lb: f"WIZCHAT_{lb.split('/')[0].upper()}_STAGING_KEY")

            def botocore() -> tuple[float, dict[str, Any]]:
                wall, c = baselines.run("botocore", jobs, clients, parallelism=10)
                return wall, {"chatbots": len(jobs) - c.failed}

            time.sleep(o.burst / o.rate + 1.0)
            row["botocore"] = measure(emu, o, org, botocore)
            for c in clients.values():
                c.close()
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N=180 instead of 360")
    p.add_argument("--n", type=int, help="chatbots in all (default 360; --quick 180)")
    p.add_argument("--keys", type=int, default=6, help="tenants = keys (default 6; even, for the org scenario)")
    p.add_argument("--rate", type=float, default=2.0, help="per-key rate, requests/s (default 2)")
    p.add_argument("--burst", type=int, default=2, help="per-key burst (default 2)")
    p.add_argument("--latency-ms", type=float, default=20.0, help="added server latency (default 20 ms)")
    p.add_argument("--only", action="append", default=[], help="run only scenarios whose name contains this")
    p.add_argument("--skip-baseline", action="store_true", help="wizsync only")
    o = p.parse_args()
    o.n = o.n or (180 if o.quick else 360)
    rows = []
    for name, options, target_ratio, target_pct in SCENARIOS:
        if o.only and not any(s in name for s in o.only):
            continue
        with tempfile.TemporaryDirectory(prefix="wizsync-scenario-") as tmp:
            row = scenario(name, options, o, Path(tmp))
        row["targets"] = {"over_floor": target_ratio, "429_pct": target_pct}
        rows.append(row)
        print(f"done: {name}", file=sys.stderr)
    doc = {"bench": "rate_limit_scenarios",
           "settings": {"chatbots": o.n, "keys": o.keys, "rate": o.rate, "burst": o.burst, "latency_ms": o.latency_ms},
           "scenarios": rows}
    print(json.dumps(doc, indent=2))
    print(file=sys.stderr)
    print(f"N={o.n} K={o.keys} R={o.rate}/s B={o.burst} L={o.latency_ms} ms", file=sys.stderr)
    table = []
    for r in rows:
        w, b = r["wizsync"], r.get("botocore") or {}
        table.append({
            "scenario": r["scenario"], "target": f"{r['targets']['over_floor']} / {r['targets']['429_pct']}%",
            "floor_s": w["floor_s"], "wizsync wall/floor": w["wall_over_floor"],
            "wizsync window/floor": w["window_over_floor"], "wizsync 429%": w["429_pct"],
            "botocore window/floor": b.get("window_over_floor"), "botocore 429%": b.get("429_pct"),
        })
    print(fleetgen.table(table, list(table[0]) if table else []), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
