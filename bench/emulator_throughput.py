"""Emulator throughput: dry-run applies/s (no latency, no limit) and the cost of a 429.

Runs the emulator as a real subprocess (its own process, as wizsync sees it),
then drives it from several concurrent async clients in this process.

    python bench/emulator_throughput.py [--seconds 5] [--clients 16] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time

import httpx

from wizchat_management.emulator import EmulatorProcess


async def _drive(base_url: str, key: str, bots: list[str], docs: dict[str, bytes], seconds: float,
                 clients: int) -> tuple[int, dict[int, int], list[float]]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30) as http:
        deadline = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            n = i
            while time.perf_counter() < deadline:
                bot = bots[n % len(bots)]
                n += clients
                t = time.perf_counter()
                r = await http.post(f"/api/v1/chatbots/{bot}/apply", params={"dryRun": "true"}, content=docs[bot])
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        await asyncio.gather(*(worker(i) for i in range(clients)))
    return sum(statuses.values()), statuses, latencies


def _client_process(args: tuple[str, str, list[str], dict[str, bytes], float, int]) -> tuple[int, dict[int, int], list[float]]:
    return asyncio.run(_drive(*args))


def run(base_url: str, key: str, seconds: float, clients: int, processes: int) -> tuple[float, dict[int, int], list[float]]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        bots = [b["id"] for b in http.get("/api/v1/chatbots", params={"limit": 200}).json()["data"]]
        docs = {b: json.dumps(http.get(f"/api/v1/chatbots/{b}/config").json()).encode() for b in bots}
    job = (base_url, key, bots, docs, seconds, clients)
    start = time.perf_counter()
    if processes <= 1:
        results = [_client_process(job)]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = pool.map(_client_process, [job] * processes)
    elapsed = time.perf_counter() - start
    total = sum(r[0] for r in results)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    for _, s, lat in results:
        latencies += lat
        for k, v in s.items():
            statuses[k] = statuses.get(k, 0) + v
    return total / min(elapsed, seconds + 0.5), statuses, latencies


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), so the figure holds on a busy machine."""
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=16, help="concurrent requests per client process")
    p.add_argument("--processes", type=int, default=1, help="client processes")
    a = p.parse_args()
    with EmulatorProcess(["--seed", "demo"]) as emu:
        key = emu.keys["acme/staging"]
        cpu0 = _cpu_seconds(emu.pid)
        rps, statuses, lat = run(emu.base_url, key, a.seconds, a.clients, a.processes)
        cpu = (_cpu_seconds(emu.pid) - cpu0) / sum(statuses.values())
        print(f"dry-run applies: {rps:,.0f} requests/s  ({a.processes} process(es) x {a.clients} clients, "
              f"statuses {statuses}, median latency {statistics.median(lat) * 1000:.1f} ms)")
        print(f"  emulator CPU per dry-run: {cpu * 1e6:,.0f} µs -> capacity {1 / cpu:,.0f} dry-runs/s per core")
        # The same load when every request is refused: what a 429 costs the emulator.
        emu.set_limits(rate=0.001, burst=1, key="acme/staging")
        cpu0 = _cpu_seconds(emu.pid)
        rps429, statuses, lat = run(emu.base_url, key, a.seconds, a.clients, a.processes)
        cpu429 = (_cpu_seconds(emu.pid) - cpu0) / sum(statuses.values())
        print(f"429 answers:     {rps429:,.0f} requests/s  (statuses {statuses}, "
              f"median latency {statistics.median(lat) * 1000:.2f} ms)")
        print(f"  emulator CPU per 429: {cpu429 * 1e6:,.0f} µs ({cpu429 / cpu:.0%} of a dry-run)")


if __name__ == "__main__":
    main()
