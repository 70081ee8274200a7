"""What peers do, as baselines for the benches (docs/benchmarks.md).

- ``sequential``: one loop over the sync SDK, one dry-run after another;
  a 429 waits the server's Retry-After and tries again.
- ``pool``: a fixed pool of 10 threads (decK / Terraform ``-parallelism=10``),
  each retrying its 429s after Retry-After; no pacing, no shared limiter.
- ``botocore``: botocore's adaptive retry mode, with botocore's own parts
  (``retries.adaptive.ClientRateLimiter``, ``RateClocker``,
  ``retries.throttling.CubicCalculator``, ``retries.bucket.TokenBucket``,
  wired as ``adaptive.register_retry_handler`` wires them): one limiter and
  a pool of 10 threads per key, as one boto3 client per key has. Throttles
  are retried with botocore's standard backoff ``rand()·min(2ⁱ, 20) s``
  (``retries.standard.ExponentialBackoff``; it reads no ``Retry-After``,
  only AWS's ``x-amz-retry-after``), until they succeed.

Both send exactly the documents wizsync sends (rendered by wizsync's own
render step), so the requests are the same and only the scheduling differs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizchat_management import WizChatApiError, WizChatClient, WizChatConnectionError

from wizsync.manifest import load_manifest, parse_selection, resolve_targets
from wizsync.render import render_target


@dataclass(frozen=True)
class Job:
    label: str  # key label tenant/env
    chatbot_id: str
    document: dict[str, Any]
    prune: bool


def jobs(manifest_path: Path, environment: str, environ: dict[str, str]) -> list[Job]:
    """The fleet as wizsync renders it (file sources only: no network needed)."""
    manifest = load_manifest(manifest_path)
    plan = resolve_targets(manifest, environment, select=parse_selection([], []))
    out = []
    for target in plan.targets:
        rendered = render_target(manifest, target, None)
        assert target.chatbot_id is not None, "the bench binds chatbots by id"
        out.append(Job(f"{target.tenant}/{environment}", target.chatbot_id, rendered.resolve(environ), target.prune))
    return out


@dataclass
class Counters:
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    failed: int = 0


def _one(client: WizChatClient, job: Job, counters: Counters, max_tries: int = 50) -> None:
    for _ in range(max_tries):
        counters.requests += 1
        try:
            client.apply_config(job.chatbot_id, job.document, dry_run=True, prune=job.prune)
            return
        except WizChatApiError as exc:
            if exc.status == 429:
                counters.throttled += 1
                time.sleep(exc.retry_after if exc.retry_after is not None else 1.0)
                continue
            if exc.status >= 500:
                counters.retries += 1
                time.sleep(0.5)
                continue
            counters.failed += 1
            return
        except WizChatConnectionError:
            counters.retries += 1
            time.sleep(0.5)
    counters.failed += 1


class _Throttling:
    """botocore's ThrottlingErrorDetector, for this API: a 429, or a 503 carrying Retry-After."""

    def is_throttling_error(self, status: int = 0, retry_after: float | None = None, **_: Any) -> bool:
        return status == 429 or (status == 503 and retry_after is not None)


def botocore_limiter() -> Any:
    """A ClientRateLimiter built exactly as ``botocore.retries.adaptive.register_retry_handler`` builds it."""
    from botocore.retries import adaptive, bucket, throttling

    clock = bucket.Clock()
    return adaptive.ClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
        rate_clocker=adaptive.RateClocker(clock),
        token_bucket=bucket.TokenBucket(max_rate=1, clock=clock),
        throttling_detector=_Throttling(),
        clock=clock,
    )


def _one_botocore(client: WizChatClient, job: Job, limiter: Any, counters: Counters, max_tries: int = 50) -> None:
    throttles = 0
    for _ in range(max_tries):
        limiter.on_sending_request(request=None)
        counters.requests += 1
        try:
            client.apply_config(job.chatbot_id, job.document, dry_run=True, prune=job.prune)
        except WizChatApiError as exc:
            limiter.on_receiving_response(status=exc.status, retry_after=exc.retry_after)
            if exc.status == 429 or exc.status >= 500:
                throttles += 1
                counters.throttled += exc.status == 429
                counters.retries += exc.status != 429
                time.sleep(random.random() * min(2.0 ** (throttles - 1), 20.0))  # standard.ExponentialBackoff
                continue
            counters.failed += 1
            return
        except WizChatConnectionError:
            limiter.on_receiving_response(status=0)
            counters.retries += 1
            throttles += 1
            time.sleep(random.random() * min(0.05 * 2.0 ** (throttles - 1), 20.0))
            continue
        limiter.on_receiving_response(status=200)
        return
    counters.failed += 1


def run_botocore(jobs_: Sequence[Job], clients: dict[str, WizChatClient], pool: int = 10) -> tuple[float, Counters]:
    """Every key's jobs on its own pool of ``pool`` threads with its own ClientRateLimiter, all keys at once."""
    by_key: dict[str, list[Job]] = {}
    for job in jobs_:
        by_key.setdefault(job.label, []).append(job)
    limiters = {label: botocore_limiter() for label in by_key}
    per_worker: list[Counters] = []
    start = time.perf_counter()

    def worker(label: str, todo: list[Job]) -> None:
        c = Counters()
        per_worker.append(c)
        while True:
            try:
                job = todo.pop()
            except IndexError:
                return
            _one_botocore(clients[label], job, limiters[label], c)

    queues = {label: list(reversed(js)) for label, js in by_key.items()}
    with ThreadPoolExecutor(pool * len(queues)) as executor:
        futures = [executor.submit(worker, label, q) for label, q in queues.items() for _ in range(pool)]
        for f in futures:
            f.result()
    return time.perf_counter() - start, _summed(per_worker)


def _summed(per_worker: Sequence[Counters]) -> Counters:
    """Each worker keeps its own counters (no lock on the hot path); the run's are their sum."""
    total = Counters()
    for c in per_worker:
        for f in ("requests", "throttled", "retries", "failed"):
            setattr(total, f, getattr(total, f) + getattr(c, f))
    return total


def run(kind: str, jobs_: Sequence[Job], clients: dict[str, WizChatClient], parallelism: int = 10) -> tuple[float, Counters]:
    """Run one baseline; (wall seconds, counters). Counter updates from threads are GIL-atomic enough
    for += on ints in CPython only approximately, so each worker keeps its own and they are summed."""
    if kind == "botocore":
        return run_botocore(jobs_, clients, pool=parallelism)
    start = time.perf_counter()
    if kind == "sequential":
        c = Counters()
        for job in jobs_:
            _one(clients[job.label], job, c)
        return time.perf_counter() - start, c
    per_worker: list[Counters] = []
    todo = list(jobs_)
    todo.reverse()

    def worker() -> None:
        c = Counters()
        per_worker.append(c)
        while True:
            try:
                job = todo.pop()  # list.pop is atomic under the GIL
            except IndexError:
                return
            _one(clients[job.label], job, c)

    with ThreadPoolExecutor(parallelism) as pool:
        for f in [pool.submit(worker) for _ in range(parallelism)]:
            f.result()
    return time.perf_counter() - start, _summed(per_worker)


def make_clients(keys: dict[str, str], base_url: str, labels: Sequence[str], env_name: Callable[[str], str]) -> dict[str, WizChatClient]:
    return {label: WizChatClient(keys[env_name(label)], base_url=base_url) for label in labels}
