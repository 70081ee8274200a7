"""No rate limit: `wizsync plan` throughput against Little's law, and client CPU per chatbot and per request.

The same generated fleet as bench/rate_limit_floor.py, on an emulator
subprocess with no limit and an added latency L. By default the fleet is
*discovered* (one discover rule per tenant, each chatbot its own live config
plus an override): plan lists every tenant, fetches every config and
dry-runs every chatbot, the case issue 14 measures. ``--fleet bound`` binds
chatbots by id with a file source (one dry-run per chatbot).

With C requests in flight, throughput cannot exceed C / latency (Little's
law); the latency per request is taken from a sequential probe.

    cpu_ms/bot   = CPU of the plan process / N   (interpreter start, journal, report included)
    cpu_ms/req   = CPU of the plan process / requests it sent
    peer rows    = the same requests (list, get_config, dry-run) from AsyncWizChatClient alone, 16 in
                   flight, over a plain httpx.AsyncClient and over httpx + AiohttpTransport: what the
                   HTTP layer itself costs (CPU of this process around the requests); and from a bare
                   aiohttp.ClientSession (no httpx, no SDK; answers validated into the same pydantic
                   models): the floor of any client that keeps typed answers

CPU is user + system time from the kernel (os.wait4 for the CLI child,
getrusage for the peers), never wall time: the machine is shared.

Target: ≤ 1.5 ms of client CPU per discovered chatbot for plan (issue 14).

    python bench/no_limit.py                      # N=1000, L=20 ms, concurrency 16, both HTTP backends
    python bench/no_limit.py --quick              # N=300
    python bench/no_limit.py --backend aiohttp --concurrency 16 --concurrency 64 --fleet bound
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

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


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


async def peer_requests(backend: str, base_url: str, keys: dict[str, str], concurrency: int) -> tuple[float, int]:
    """list + get_config + dry-run of every chatbot with the SDK alone; (CPU seconds, requests)."""
    from wizchat_management import AsyncWizChatClient

    transport: Any = None
    if backend == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=httpx.Limits(max_connections=concurrency))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(transport=transport, limits=limits, timeout=60) as http:
        clients = [AsyncWizChatClient(key, base_url=base_url, http_client=http) for key in keys.values()]
        gate = asyncio.Semaphore(concurrency)
        cpu0 = _cpu()
        listings = await asyncio.gather(*(c.list_chatbots() for c in clients))
        requests = sum(len(lst) // 200 + 1 for lst in listings)

        async def one(client: Any, chatbot_id: str) -> None:
            async with gate:
                doc = await client.get_config(chatbot_id)
                body = doc.model_dump(mode="json", by_alias=True, exclude_unset=True)
                body["spec"]["core"] = {**(body["spec"].get("core") or {}), "temperature": 0.5}
                await client.apply_config(chatbot_id, body, dry_run=True)

        await asyncio.gather(*(one(c, b.id) for c, lst in zip(clients, listings) for b in lst))
        requests += 2 * sum(len(lst) for lst in listings)
        return _cpu() - cpu0, requests


async def bare_aiohttp(base_url: str, keys: dict[str, str], concurrency: int) -> tuple[float, int]:
    """The same requests from aiohttp alone, answers validated into the SDK's models; (CPU seconds, requests)."""
    import aiohttp

    from wizchat_management.models import ApplyResult, ChatbotConfigDocument, ChatbotList

    url = f"{base_url}/api/v1/chatbots"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        auth = [{"Authorization": f"Bearer {key}", "Accept": "application/json"} for key in keys.values()]
        cpu0 = _cpu()
        requests = 0
        ids: list[tuple[dict[str, str], str]] = []
        for headers in auth:
            cursor: str | None = None
            while True:
                params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
                async with session.get(url, params=params, headers=headers) as r:
                    page = ChatbotList.model_validate_json(await r.read())
                requests += 1
                ids += [(headers, b.id) for b in page.data]
                cursor = page.nextCursor
                if not cursor:
                    break
        gate = asyncio.Semaphore(concurrency)

        async def one(headers: dict[str, str], chatbot_id: str) -> None:
            async with gate:
                async with session.get(f"{url}/{chatbot_id}/config", headers=headers) as r:
                    doc = ChatbotConfigDocument.model_validate_json(await r.read())
                body = doc.model_dump(mode="json", by_alias=True, exclude_unset=True)
                body["spec"]["core"] = {**(body["spec"].get("core") or {}), "temperature": 0.5}
                async with session.post(f"{url}/{chatbot_id}/apply", params={"dryRun": "true"}, json=body,
                                        headers=headers) as r:
                    ApplyResult.model_validate_json(await r.read())

        await asyncio.gather(*(one(h, c) for h, c in ids))
        return _cpu() - cpu0, requests + 2 * len(ids)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="N=300")
    p.add_argument("--n", type=int)
    p.add_argument("--keys", type=int, default=4)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--concurrency", type=int, action="append", help="repeatable (default: 16)")
    p.add_argument("--backend", action="append", choices=["aiohttp", "httpx"], help="repeatable (default: both)")
    p.add_argument("--fleet", choices=["discovered", "bound"], default="discovered")
    p.add_argument("--skip-peers", action="store_true", help="no SDK-alone rows")
    p.add_argument("--json-only", action="store_true")
    o = p.parse_args()
    o.n = o.n or (300 if o.quick else 1000)
    concurrencies = o.concurrency or [16]
    backends = o.backend or ["aiohttp", "httpx"]

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wizsync-nolimit-") as tmp:
        work = Path(tmp)
        seed = fleetgen.write_seed(work / "seed.json", o.n, o.keys)
        with EmulatorProcess(["--seed", str(seed), "--latency-ms", str(o.latency_ms)]) as emu:
            manifest = fleetgen.write_workspace(work, emu.base_url, o.n, o.keys)
            env = fleetgen.base_env(emu.key_env)
            jobs = baselines.jobs(manifest, fleetgen.ENV, env)
            clients = baselines.make_clients(env, emu.base_url, sorted({j.label for j in jobs}),
                                             lambda lb: f"WIZCHAT_{lb.split('/')[0].upper()}_STAGING_KEY")
            latency = probe_latency(jobs, clients)
            for c in clients.values():
                c.close()
            if o.fleet == "discovered":
                manifest = work / "discovered.yaml"
                manifest.write_text(fleetgen.manifest(emu.base_url, o.n, o.keys, discover=True))
            startup = fleetgen.run_cli(["validate", manifest.name], cwd=work, env=env)
            for backend, conc in [(b, c) for b in backends for c in concurrencies]:
                before = emu.stats()
                res = fleetgen.run_cli(["plan", manifest.name, "--env", fleetgen.ENV, "--json", "--concurrency", str(conc),
                                        "--http-backend", backend, "--journal", str(work / f"journal-{backend}-{conc}.db")],
                                       cwd=work, env=env)
                if res.returncode != 0:
                    raise SystemExit(f"plan failed:\n{res.stderr[-3000:]}")
                per_key = fleetgen.stats_delta(before, emu.stats())
                requests = sum(s["requests"] for s in per_key.values())
                window = max(res.wall - startup.wall, 1e-6)
                bound = conc / latency
                rows.append({
                    "run": f"wizsync plan --http-backend {backend}",
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
                    "cpu_ms_per_request": round(1000 * res.cpu / requests, 3),
                    "peak_rss_mb": round(res.max_rss_mb, 1),
                })
            if not o.skip_peers and o.fleet == "discovered":
                keys = {k: v for k, v in env.items() if k.startswith("WIZCHAT_")}
                for backend in backends:
                    before = emu.stats()
                    cpu, sent = asyncio.run(peer_requests(backend, emu.base_url, keys, 16))
                    seen = sum(s["requests"] for s in fleetgen.stats_delta(before, emu.stats()).values())
                    rows.append({"run": f"SDK alone, httpx.AsyncClient{' + AiohttpTransport' if backend == 'aiohttp' else ''}",
                                 "concurrency": 16, "chatbots": o.n, "requests": seen, "cpu_s": round(cpu, 3),
                                 "cpu_ms_per_chatbot": round(1000 * cpu / o.n, 3),
                                 "cpu_ms_per_request": round(1000 * cpu / max(seen, sent), 3)})
                before = emu.stats()
                cpu, sent = asyncio.run(bare_aiohttp(emu.base_url, keys, 16))
                seen = sum(s["requests"] for s in fleetgen.stats_delta(before, emu.stats()).values())
                rows.append({"run": "aiohttp.ClientSession alone (no httpx, no SDK)", "concurrency": 16, "chatbots": o.n,
                             "requests": seen, "cpu_s": round(cpu, 3), "cpu_ms_per_chatbot": round(1000 * cpu / o.n, 3),
                             "cpu_ms_per_request": round(1000 * cpu / max(seen, sent), 3)})

    doc = {
        "bench": "no_limit",
        "settings": {"chatbots": o.n, "keys": o.keys, "latency_ms": o.latency_ms, "fleet": o.fleet},
        "measured_latency_ms": round(1000 * latency, 2),
        "startup": {"wall_s": round(startup.wall, 3), "cpu_s": round(startup.cpu, 3)},
        "targets": {"cpu_ms_per_chatbot": 1.5},
        "runs": rows,
    }
    print(json.dumps(doc, indent=2))
    if not o.json_only:
        print(f"\nN={o.n} K={o.keys} L={o.latency_ms} ms (measured {1000 * latency:.1f} ms); "
              f"startup (validate) {startup.wall:.2f} s wall, {startup.cpu:.2f} s CPU", file=sys.stderr)
        columns = ["run", "concurrency", "requests", "wall_s", "requests_per_s", "of_bound", "cpu_s",
                   "cpu_ms_per_chatbot", "cpu_ms_per_chatbot_net", "cpu_ms_per_request", "peak_rss_mb"]
        print(fleetgen.table(rows, columns), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
