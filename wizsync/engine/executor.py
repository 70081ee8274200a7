"""The concurrent runner every API-calling command shares (export, plan, apply, resume, rollback).

Shape of one HTTP request, in order (field notes, "httpx under concurrency"):

1. a rate token from the key's own ``KeyLimiter`` — only this key's callers
   queue there, so a throttled tenant never delays another;
2. a slot of the global in-flight cap (``concurrency``) — taken *after* the
   token, so a task parked on a slow key holds no slot other keys need;
3. send, on the key's own ``httpx.AsyncClient`` whose pool is at least the
   cap: in-flight ≤ pool, so httpx never raises ``PoolTimeout`` however many
   tasks are queued (encode/httpx #1171);
4. the answer's ``X-RateLimit-*`` headers feed the key's limiter; the slot
   is given back when the body is closed (when the connection is free again).

Steps 1-4 live in ``_PacedTransport``, an httpx transport wrapper: the SDK
returns models, not headers, and a transport sees every request (each page
of ``list_chatbots`` too) and every failure, which a response hook cannot.

Above that, ``Executor.call`` retries with tenacity: transient errors with
exponential backoff and jitter (bounded attempts), 429s through the
limiter (their own bound), permanent errors never (``retry.classify``).

API keys stay inside each ``AsyncWizChatClient``; everything else (stats,
events, errors) names a key by its label, e.g. ``"acme/production"``.
"""

from __future__ import annotations

import asyncio
import contextvars
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from wizchat_management import AsyncWizChatClient, WizChatApiError, WizChatConnectionError
from wizchat_management._base_client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT

from .limiter import KeyLimiter
from .retry import MAX_THROTTLE_WAIT, backoff_delay, classify, is_retryable, throttle_delay

__all__ = [
    "KeySpec",
    "Executor",
    "Outcome",
    "Stopped",
    "OnEvent",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_THROTTLES",
    "run",
]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

# Terraform and decK run a fixed parallelism of 10 (field notes); the spec's
# manifest example uses 16, and our pacing is per key, so 16 is the default.
DEFAULT_CONCURRENCY = 16
# Attempts in all for a transient error (5xx, no answer): 1 try + 3 retries,
# with 0.5/1/2 s backoff ≈ 3.5 s worst case per call (Stainless timing).
DEFAULT_MAX_ATTEMPTS = 4
# 429s are expected under load and are paced by the limiter, so they get a
# budget of their own; bounded so a key that only ever says 429 still ends.
DEFAULT_MAX_THROTTLES = 20

#: ``on_event(key_label, context, kind, detail)``; kinds: attempt, retry,
#: throttled, ok, failed, stopped. ``detail`` is a JSON-able dict, never a key.
OnEvent = Callable[[str, "str | None", str, "dict[str, Any]"], None]


class Stopped(Exception):
    """The executor was asked to stop before this call sent anything."""

    def __init__(self) -> None:
        super().__init__("not started: the run is stopping")


@dataclass(frozen=True)
class KeySpec:
    """How to reach the API with one key. ``api_key`` never shows in a repr."""

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    rate_hint: float | None = None  # manifest tenants.<t>.rateLimit.perSecond
    burst_hint: int | None = None  # manifest tenants.<t>.rateLimit.burst


@dataclass
class Outcome(Generic[I, T]):
    """What ``Executor.map`` returns per item: the value, or the error it ended with."""

    item: I
    value: T | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _KeyStats:
    calls: int = 0  # Executor.call invocations that sent at least one request
    requests: int = 0  # HTTP requests sent
    responses: dict[str, int] = field(default_factory=dict)  # status -> count
    throttled: int = 0  # 429 answers
    retries: int = 0  # retries after a transient error (5xx, no answer)
    connection_errors: int = 0  # attempts that got no answer
    failed: int = 0  # calls that ended in an error
    limiter_wait_seconds: float = 0.0  # time requests spent waiting for a rate token
    latency_seconds: float = 0.0  # sum over requests, send -> response headers


@dataclass
class _CallState:
    started: bool = False
    attempts: int = 0
    transient: int = 0
    throttles: int = 0
    refused: bool = False  # the server asked for a wait beyond MAX_THROTTLE_WAIT


_CURRENT_CALL: contextvars.ContextVar[_CallState | None] = contextvars.ContextVar(
    "wizsync_engine_call", default=None
)


class _ReleasingStream(httpx.AsyncByteStream):
    """Gives the in-flight slot back once the body is closed (connection free again)."""

    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class _Key:
    """Everything that belongs to one API key: limiter, client, counters."""

    def __init__(self, label: str, limiter: KeyLimiter) -> None:
        self.label = label
        self.limiter = limiter
        self.stats = _KeyStats()
        self.client: AsyncWizChatClient
        self.http: httpx.AsyncClient


class _PacedTransport(httpx.AsyncBaseTransport):
    """Token, then slot, then send; headers back to the limiter (see module docstring)."""

    def __init__(self, executor: Executor, key: _Key, inner: httpx.AsyncBaseTransport, owns_inner: bool) -> None:
        self._executor = executor
        self._key = key
        self._inner = inner
        self._owns_inner = owns_inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ex, key = self._executor, self._key
        call = _CURRENT_CALL.get()
        fresh = call is not None and not call.started  # a stop may still cancel it
        t0 = time.monotonic()
        if fresh:
            ticket = await ex._unless_stopped(key.limiter.acquire, lambda t: key.limiter.on_failure(t))
        else:
            ticket = await key.limiter.acquire()
        key.stats.limiter_wait_seconds += time.monotonic() - t0
        try:
            if fresh:
                await ex._unless_stopped(ex._slots.acquire, lambda _: ex._slots.release())
            else:
                await ex._slots.acquire()
        except BaseException:
            key.limiter.on_failure(ticket)
            raise
        if call is not None and not call.started:
            call.started = True
            key.stats.calls += 1
        key.stats.requests += 1
        sent = time.monotonic()
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            key.limiter.on_failure(ticket)
            ex._slots.release()
            raise
        key.stats.latency_seconds += time.monotonic() - sent
        status = response.status_code
        key.stats.responses[str(status)] = key.stats.responses.get(str(status), 0) + 1
        if status == 429:
            key.stats.throttled += 1
        key.limiter.on_response(ticket, status, response.headers)
        if response.is_closed:  # body already in memory (e.g. MockTransport): nothing holds a connection
            ex._slots.release()
        else:
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = _ReleasingStream(response.stream, ex._slots.release)
        return response

    async def aclose(self) -> None:
        if self._owns_inner:
            await self._inner.aclose()


def _describe(exc: BaseException) -> str:
    """A short, key-free description for events (the SDK's messages carry no key)."""
    if isinstance(exc, WizChatApiError):
        return f"{exc.status} {exc.code}"
    return f"{type(exc).__name__}: {exc}"


class Executor:
    """Runs API calls for many keys concurrently, paced per key, capped globally.

    ``async with Executor({"acme/production": KeySpec(key, url)}) as ex:``
    then ``await ex.call("acme/production", lambda c: c.get_config(id))``.
    ``transport`` (tests only) replaces the network for every key.
    """

    def __init__(
        self,
        keys: Mapping[str, KeySpec],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_throttles: int = DEFAULT_MAX_THROTTLES,
        on_event: OnEvent | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.max_throttles = max_throttles
        self._on_event = on_event
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._slots = asyncio.Semaphore(concurrency)
        self._stop = asyncio.Event()
        self._keys: dict[str, _Key] = {}
        # Every key's pool holds the whole cap: in-flight <= cap <= pool, so a
        # request never waits for a connection, whatever the mix of keys.
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        # One TLS context for all keys: building one loads the CA bundle (~20 ms of CPU each).
        tls = httpx.create_ssl_context() if transport is None else None
        for label, spec in keys.items():
            key = _Key(label, KeyLimiter(rate_hint=spec.rate_hint, burst_hint=spec.burst_hint, clock=clock))
            inner = transport if transport is not None else httpx.AsyncHTTPTransport(limits=limits, verify=tls)
            key.http = httpx.AsyncClient(
                transport=_PacedTransport(self, key, inner, owns_inner=transport is None),
                timeout=timeout,
            )
            key.client = AsyncWizChatClient(spec.api_key, base_url=spec.base_url, http_client=key.http)
            self._keys[label] = key

    def __repr__(self) -> str:
        return f"Executor(keys={sorted(self._keys)!r}, concurrency={self.concurrency})"

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for key in self._keys.values():
            await key.http.aclose()

    def stop(self) -> None:
        """Start no new call; calls that already sent a request finish (with their retries)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop_on_signals(self, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        """First Ctrl-C (or SIGTERM) stops gracefully; a second one interrupts as usual.

        Call from inside the running loop (e.g. at the top of the command's coroutine).
        """
        loop = asyncio.get_running_loop()

        def handler(signum: int) -> None:
            self.stop()
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - platform
                pass

        for signum in signals:
            try:
                loop.add_signal_handler(signum, handler, signum)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                signal.signal(signum, lambda s, _f: loop.call_soon_threadsafe(self.stop))

    async def _unless_stopped(self, acquire: Callable[[], Awaitable[Any]], undo: Callable[[Any], None]) -> Any:
        """``await acquire()`` unless a stop comes first: then raise Stopped (and undo a late win)."""
        if self._stop.is_set():
            raise Stopped()
        task = asyncio.ensure_future(acquire())
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
        if not task.done():
            await asyncio.wait({task})  # let the cancellation settle
        if task.cancelled():
            raise Stopped()
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        result = task.result()
        if self._stop.is_set():
            undo(result)
            raise Stopped()
        return result

    # -- calls ---------------------------------------------------------------

    @property
    def labels(self) -> list[str]:
        return list(self._keys)

    def _emit(self, label: str, context: str | None, kind: str, detail: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(label, context, kind, detail)

    async def call(
        self,
        label: str,
        fn: Callable[[AsyncWizChatClient], Awaitable[T]],
        *,
        context: str | None = None,
    ) -> T:
        """Run ``fn(client)`` on ``label``'s client with pacing and retries; its result or final error.

        Raises ``Stopped`` if ``stop()`` came before the call sent anything.
        """
        try:
            key = self._keys[label]
        except KeyError:
            raise ValueError(f"unknown key label {label!r}") from None
        if self._stop.is_set():
            self._emit(label, context, "stopped", {})
            raise Stopped()
        state = _CallState()

        async def attempt() -> T:
            state.attempts += 1
            self._emit(label, context, "attempt", {"attempt": state.attempts})
            try:
                return await fn(key.client)
            except Exception as exc:
                self._count_failure(key, state, exc)
                raise

        def stop(rs: RetryCallState) -> bool:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            if exc is None or self._stop_retrying(state, exc):
                return True
            return False

        def wait(rs: RetryCallState) -> float:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            return self._retry_wait(state, exc)

        def before_sleep(rs: RetryCallState) -> None:
            exc = rs.outcome.exception() if rs.outcome is not None else None
            delay = rs.next_action.sleep if rs.next_action is not None else 0.0
            assert exc is not None
            if classify(exc) == "throttled":
                retry_after = exc.retry_after if isinstance(exc, WizChatApiError) else None
                self._emit(label, context, "throttled",
                           {"attempt": state.attempts, "retry_after": retry_after, "wait": round(key.limiter.snapshot().blocked_for, 3)})
            else:
                key.stats.retries += 1
                self._emit(label, context, "retry",
                           {"attempt": state.attempts, "error": _describe(exc), "wait": round(delay, 3)})

        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        token = _CURRENT_CALL.set(state)
        try:
            result: T = await retrying(attempt)
        except Stopped:
            self._emit(label, context, "stopped", {})
            raise
        except Exception as exc:
            key.stats.failed += 1
            self._emit(label, context, "failed",
                       {"attempts": state.attempts, "error": _describe(exc), "kind": classify(exc)})
            raise
        finally:
            _CURRENT_CALL.reset(token)
        self._emit(label, context, "ok", {"attempts": state.attempts})
        return result

    def _count_failure(self, key: _Key, state: _CallState, exc: BaseException) -> None:
        kind = classify(exc)
        if isinstance(exc, WizChatConnectionError):
            key.stats.connection_errors += 1
        if kind == "transient":
            state.transient += 1
        elif kind == "throttled":
            state.throttles += 1
            retry_after = exc.retry_after if isinstance(exc, WizChatApiError) else None
            delay = throttle_delay(retry_after, attempt=state.throttles - 1)
            if delay is None:
                # The server wants more than we will wait: fail this call, and
                # hold the key's other calls for the longest wait we accept.
                state.refused = True
                delay = MAX_THROTTLE_WAIT
            # Every caller of this key waits, not only this one: the limiter is shared.
            key.limiter.block(delay)

    def _stop_retrying(self, state: _CallState, exc: BaseException) -> bool:
        kind = classify(exc)
        if kind == "throttled":
            return state.refused or state.throttles > self.max_throttles
        if kind == "transient":
            return state.transient >= self.max_attempts
        return True

    def _retry_wait(self, state: _CallState, exc: BaseException | None) -> float:
        if exc is None or classify(exc) == "throttled":
            return 0.0  # the key's limiter holds the next attempt until Retry-After
        retry_after = exc.retry_after if isinstance(exc, WizChatApiError) else None
        if retry_after is not None:  # a 503 that says when to come back
            delay = throttle_delay(retry_after, attempt=state.transient - 1)
            if delay is not None:
                return delay
        return backoff_delay(state.transient - 1, base=self._backoff_base, cap=self._backoff_cap)

    async def map(
        self,
        items: Iterable[I],
        fn: Callable[[I], Awaitable[T]],
        *,
        on_outcome: Callable[[Outcome[I, T]], None] | None = None,
        key: Callable[[I], str] | None = None,
    ) -> list[Outcome[I, T]]:
        """Run ``fn(item)`` for every item concurrently; one Outcome per item, in input order.

        A failure never cancels the others. ``on_outcome`` is called as each
        item finishes (progress, journal).

        With ``key`` (the item's key label) each key gets its own workers, as
        many as the in-flight cap (a key can never have more in flight): the
        number of suspended calls stays bounded whatever the fleet's size (a
        10,000-chatbot plan held one suspended call, body built, per chatbot:
        ~27 KB each, bench/scale.py), and one slow key's queue never makes
        another key wait. Without ``key`` every item is scheduled at once.
        """
        items = list(items)
        results: list[Outcome[I, T] | None] = [None] * len(items)

        async def one(index: int) -> None:
            item = items[index]
            try:
                outcome: Outcome[I, T] = Outcome(item, value=await fn(item))
            except Exception as exc:
                outcome = Outcome(item, error=exc)
            results[index] = outcome
            if on_outcome is not None:
                on_outcome(outcome)

        if key is None:
            await asyncio.gather(*(one(i) for i in range(len(items))))
        else:
            queues: dict[str, list[int]] = {}
            for index, item in enumerate(items):
                queues.setdefault(key(item), []).append(index)

            async def worker(queue: list[int]) -> None:
                while queue:
                    await one(queue.pop())

            for queue in queues.values():
                queue.reverse()  # pop() from the end: input order within a key
            await asyncio.gather(*(worker(q) for q in queues.values() for _ in range(min(self.concurrency, len(q)))))
        return [r for r in results if r is not None]

    # -- reporting -----------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-label counters and limiter state, JSON-able (see the report/README for keys)."""
        out: dict[str, dict[str, Any]] = {}
        for label, key in self._keys.items():
            data = asdict(key.stats)
            data["responses"] = dict(sorted(data["responses"].items()))
            data["limiter_wait_seconds"] = round(data["limiter_wait_seconds"], 3)
            data["latency_seconds"] = round(data["latency_seconds"], 3)
            snap = key.limiter.snapshot()
            data["rate"] = None if snap.rate is None else round(snap.rate, 3)
            data["server_rate"] = None if snap.server_rate is None else round(snap.server_rate, 3)
            data["capacity"] = snap.capacity
            out[label] = data
        return out

    def estimate_seconds(self, requests: Mapping[str, int]) -> float | None:
        """Lower bound on the time to send ``requests[label]`` more requests per key.

        Field notes, "Floor": max_k (n_k − b_k)/r_k over the keys' known rates,
        and Little's law: total / (in-flight cap / mean latency seen so far).
        None when a key with requests has no known rate yet.
        """
        floor = 0.0
        total = 0
        latency_sum = 0.0
        sent = 0
        for label, n in requests.items():
            if n <= 0:
                continue
            key = self._keys[label]
            seconds = key.limiter.estimate_seconds(n)
            if seconds is None:
                return None
            floor = max(floor, seconds)
            total += n
        for key in self._keys.values():
            latency_sum += key.stats.latency_seconds
            sent += key.stats.requests
        if sent:
            floor = max(floor, total * (latency_sum / sent) / self.concurrency)
        return floor


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run the engine from a sync click command."""
    return asyncio.run(coro)
