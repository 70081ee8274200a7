"""Scale: a generated manifest of 10,000 chatbots over 50 tenants.

1. `wizsync validate` and `wizsync render --env staging` of all of them, offline: wall time and
   peak RSS of each process (targets: validate + render ≤ 5 s, each ≤ 300 MB).
2. `wizsync plan` of N = 2,500 / 5,000 / 10,000 of them against an unlimited emulator
   (a subprocess): wall, CPU and peak RSS per N, and RSS per chatbot between sizes. Results
   stream to the journal and both reports (--json and human, also run at the largest N) stream
   their rows, and documents wait packed for their dry-run, so what grows with N is about one
   manifest entry per chatbot (target: ≤ 150 MB at 10,000 and a flat curve to 50,000, issue 14;
   docs/benchmarks.md "Scale").

    python bench/scale.py                  # 10,000 chatbots / 50 tenants (~2 min)
    python bench/scale.py --quick          # 2,000 chatbots, plans of 500/1,000/2,000
    python bench/scale.py --n 20000 --tenants 100 --sizes 5000,10000,20000
    python bench/scale.py --n 50000 --sizes 2000,10000,50000 --plans-only --no-human   # the flat curve
    python bench/scale.py --n 10000 --sizes 2000,10000 --plans-only --reports markdown,out   # the other outputs

`--reports` picks the plans' outputs: json (`--json`, every size), human (`--quiet`, the largest
size), markdown (`--format markdown`, every size) and out (`--out plan.json --quiet`, every size,
the plan file's size in output_mb).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleetgen  # noqa: E402

from wizchat_management.emulator import EmulatorProcess  # noqa: E402


_REPORT_ARGS = {"json": ["--json"], "human": ["--quiet"], "markdown": ["--format", "markdown"],
                "out": ["--out", "plan.json", "--quiet"]}


def _runs(sizes: list[int], reports: list[str], no_human: bool) -> list[tuple[int, str]]:
    unknown = sorted(set(reports) - set(_REPORT_ARGS))
    if unknown:
        raise SystemExit(f"--reports: unknown {', '.join(unknown)} (choose from {', '.join(_REPORT_ARGS)})")
    runs = []
    for mode in (m for m in _REPORT_ARGS if m in reports):
        if mode == "human":
            runs += [] if no_human else [(sizes[-1], mode)]
        else:
            runs += [(n, mode) for n in sizes]
    return runs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n", type=int)
    p.add_argument("--tenants", type=int, default=50)
    p.add_argument("--sizes", help="comma-separated plan sizes (default N/4, N/2, N)")
    p.add_argument("--json-only", action="store_true")
    p.add_argument("--plans-only", action="store_true", help="skip the offline validate/render rows")
    p.add_argument("--no-human", action="store_true", help="skip the human-report plan at the largest N")
    p.add_argument("--reports", default="json,human", help="comma-separated: json, human, markdown, out (default json,human)")
    o = p.parse_args()
    o.n = o.n or (2000 if o.quick else 10_000)
    sizes = [int(s) for s in o.sizes.split(",")] if o.sizes else [o.n // 4, o.n // 2, o.n]

    offline: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wizsync-scale-") as tmp:
        work = Path(tmp)
        keys = {fleetgen.key_env(t): f"wpk_test_scale{t:04d}abcdefghijklmnop" for t in range(o.tenants)}
        env = fleetgen.base_env(keys)
        manifest = fleetgen.write_workspace(work, "http://127.0.0.1:9", o.n, o.tenants)
        for name, args in () if o.plans_only else (("validate", ["validate", manifest.name]),
                                                   ("render", ["render", manifest.name, "--env", fleetgen.ENV])):
            res = fleetgen.run_cli(args, cwd=work, env=env)
            if res.returncode != 0:
                raise SystemExit(f"{name} failed:\n{res.stderr[-2000:]}")
            offline.append({"command": name, "chatbots": o.n, "wall_s": round(res.wall, 3), "cpu_s": round(res.cpu, 3),
                            "peak_rss_mb": round(res.max_rss_mb, 1), "output_mb": round(len(res.stdout) / 2**20, 1)})

        seed = fleetgen.write_seed(work / "seed.json", o.n, o.tenants)
        with EmulatorProcess(["--seed", str(seed)]) as emu:
            env = fleetgen.base_env(emu.key_env)
            for n, mode in _runs(sizes, o.reports.split(","), o.no_human):
                d = work / f"plan-{n}-{mode}"
                m = fleetgen.write_workspace(d, emu.base_url, n, o.tenants)
                args = ["plan", m.name, "--env", fleetgen.ENV, "--journal", str(d / "journal.db"), "--concurrency", "32"]
                args += _REPORT_ARGS[mode]
                before = emu.stats()
                res = fleetgen.run_cli(args, cwd=d, env=env)
                if res.returncode != 0:
                    raise SystemExit(f"plan of {n} failed:\n{res.stderr[-2000:]}")
                requests = sum(s["requests"] for s in fleetgen.stats_delta(before, emu.stats()).values())
                output = (d / "plan.json").stat().st_size if mode == "out" else len(res.stdout)
                plans.append({"chatbots": n, "report": mode, "requests": requests, "wall_s": round(res.wall, 3),
                              "cpu_s": round(res.cpu, 3), "cpu_ms_per_chatbot": round(1000 * res.cpu / n, 3),
                              "peak_rss_mb": round(res.max_rss_mb, 1), "output_mb": round(output / 2**20, 2)})
    for mode in _REPORT_ARGS:
        same = [r for r in plans if r["report"] == mode]
        for a, b in zip(same, same[1:]):
            b["rss_kb_per_added_chatbot"] = round(1024 * (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["chatbots"] - a["chatbots"]), 2)
    total = sum(r["wall_s"] for r in offline)
    doc = {
        "bench": "scale",
        "settings": {"chatbots": o.n, "tenants": o.tenants, "plan_sizes": sizes},
        "targets": {"validate_plus_render_s": 5.0, "peak_rss_mb": 300},
        "validate_plus_render_s": round(total, 3),
        "offline": offline,
        "plans": plans,
    }
    print(json.dumps(doc, indent=2))
    if not o.json_only:
        print(f"\n{o.n} chatbots over {o.tenants} tenants; validate + render {total:.2f} s", file=sys.stderr)
        if offline:
            print(fleetgen.table(offline, list(offline[0])), file=sys.stderr)
        print(file=sys.stderr)
        cols = ["chatbots", "report", "requests", "wall_s", "cpu_s", "cpu_ms_per_chatbot", "peak_rss_mb", "output_mb",
                "rss_kb_per_added_chatbot"]
        print(fleetgen.table(plans, cols), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
