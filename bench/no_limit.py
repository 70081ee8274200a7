"""No rate limit: `wizsync plan` throughput against Little's law, and client CPU per chatbot.

The same generated fleet as bench/rate_limit_floor.py, on an emulator
subprocess with no limit and an added latency L. With C requests in
flight, throughput cannot exceed C / latency (Little's law, field notes);
the measured latency per request (L plus the emulator's own time) is
taken from a sequential probe of the same emulator, so the bound is the
real one for this machine.

    throughput   = N / (T − startup)      startup = `wizsync validate` of the same manifest
    cpu_ms/bot   = CPU of the plan process / N   (journal, report and interpreter start included)

Target: ≤ 3 ms of client CPU per chatbot for plan, journal included.

    python bench/no_limit.py                      # N=1000, L=20 ms, concurrency 16 and 64
    python bench/no_limit.py --quick              # N=300
    python bench/no_limit.py --n 5000 --latency-ms 50 --concurrency 16 --concurrency 128
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines  # noqa: E402
import fleetgen  # noqa: E402

from wizchat_management.emulator import EmulatorProcess  # noqa: E402


def probe_latency(jobs: list[baselines.Job], clients: dict[str, Any], count: int = 40) -> float:
    """Median seconds of one dry-run, sent alone (no queueing anywhere)."""
    samples = []
    for job in jobs[:count]:
        t = time.perf_counter()
        clients[job.label].apply_config(job.chatbot_id, job.document, dry_run=True, prune=job.prune)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N=300")
    p.add_argument("--n", type=int)
    p.add_argument("--keys", type=int, default=4)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, action="append", help="repeatable (default: 16 and 64)")
    p.add_argument("--json-only", action="store_true")
    o = p.parse_args()
    o.n = o.n or (300 if o.quick else 1000)
    concurrencies = o.concurrency or [16, 64]

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wizsync-nolimit-") as tmp:
        work = Path(tmp)
        seed = fleetgen.write_seed(work / "seed.json", o.n, o.keys)
        with EmulatorProcess(["--seed", str(seed), "--latency-ms", str(o.latency_ms)]) as emu:
            manifest = fleetgen.write_workspace(work, emu.base_url, o.n, o.keys)
            env = fleetgen.base_env(emu.key_env)
            jobs = baselines.jobs(manifest, fleetgen.ENV, env)
            clients = baselines.make_clients(env, emu.base_url, sorted({j.label for j in jobs}),
                                             lambda lb: f"WIZCHAT_{lb.split('/')[0].upper()}_STAGING_KEY")  # fmt: skip
            latency = probe_latency(jobs, clients)
            for c in clients.values():
                c.close()
            startup = fleetgen.run_cli(["validate", manifest.name], cwd=work, env=env)
            for conc in concurrencies:
                before = emu.stats()
                res = fleetgen.run_cli(["plan", manifest.name, "--env", fleetgen.ENV, "--json", "--concurrency", str(conc),
                                        "--journal", str(work / f"journal-{conc}.db")], cwd=work, env=env)  # fmt: skip
                if res.returncode != 0:
                    raise SystemExit(f"plan failed:\n{res.stderr[-3000:]}")
                per_key = fleetgen.stats_delta(before, emu.stats())
                requests = sum(s["requests"] for s in per_key.values())
                window = max(res.wall - startup.wall, 1e-6)
                bound = conc / latency
                rows.append({
                    "concurrency": conc,
                    "chatbots": o.n,
                    "requests": requests,
                    "wall_s": round(res.wall, 3),
                    "requests_per_s": round(requests / window, 1),
                    "littles_bound_per_s": round(bound, 1),
                    "of_bound": round(requests / window / bound, 3),
                    "cpu_s": round(res.cpu, 3),
                    "cpu_ms_per_chatbot": round(1000 * res.cpu / o.n, 3),
                    "cpu_ms_per_chatbot_net": round(1000 * (res.cpu - startup.cpu) / o.n, 3),
                    "peak_rss_mb": round(res.max_rss_mb, 1),
                })  # fmt: skip

    doc = {
        "bench": "no_limit",
        "settings": {"chatbots": o.n, "keys": o.keys, "latency_ms": o.latency_ms},
        "measured_latency_ms": round(1000 * latency, 2),
        "startup": {"wall_s": round(startup.wall, 3), "cpu_s": round(startup.cpu, 3)},
        "targets": {"cpu_ms_per_chatbot": 3.0},
        "runs": rows,
    }
    print(json.dumps(doc, indent=2))
    if not o.json_only:
        print(f"\nN={o.n} K={o.keys} L={o.latency_ms} ms (measured {1000 * latency:.1f} ms); "
              f"startup (validate) {startup.wall:.2f} s wall, {startup.cpu:.2f} s CPU", file=sys.stderr)  # fmt: skip
        print(fleetgen.table(rows, list(rows[0])), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
