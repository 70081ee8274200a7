"""The concurrent runner every API-calling command shares (export, plan, apply, resume, rollback).

Shape of one HTTP request, in order (docs/rate-limits.md, "The shape of one request"; https://github.com/encode/httpx/issues/1171):

1. a rate token from the key's own ``KeyLimiter`` — only this key's callers
   queue there, so a throttled tenant never delays another;
2. a slot of the global in-flight cap (``concurrency``, ``slots.Slots``) — taken
   *after* the token, so a task parked on a slow key holds no slot other keys need;
   the ticket is re-stamped when the slot is won (``KeyLimiter.sending``): the
   server counts the request from then, not from the take;
3. send, on the key's own ``httpx.AsyncClient`` whose pool is at least the
   cap: in-flight ≤ pool, so httpx never raises ``PoolTimeout`` however many
   tasks are queued (encode/httpx #1171);
4. the answer's ``X-RateLimit-*`` headers feed the key's limiter; the slot
   is given back when the body is closed (when the connection is free again).

Steps 1-4 live in ``_PacedTransport``, an httpx transport wrapper: the SDK
returns models, not headers, and a transport sees every request (each page
of ``list_chatbots`` too) and every failure, which a response hook cannot.
It also reads the body, so that one deadline covers connect, headers and
body (``--request-timeout``), and an answer over the size cap is refused
before it is read whole (``transport.Transport``). Under it, one network
transport for all keys (connections carry no key): aiohttp's by default,
httpx's own with ``--http-backend httpx`` (``transport.py``).

Stopping (first Ctrl-C): no new call starts and no call is tried again;
requests already sent get ``STOP_GRACE`` seconds to answer, then are
abandoned — a read ends ``Stopped``, a write ends with a timeout (it may
have been applied: the caller records it as uncertain). So a stop never
waits on a stuck request.

Above that, ``Executor.call`` retries (with tenacity, once a first attempt failed): transient errors with
exponential backoff and jitter (bounded attempts), 429s through the
limiter (their own bound), permanent errors never (``retry.classify``).

API keys stay inside each ``AsyncWizChatClient``; everything else (stats,
events, errors) names a key by its label, e.g. ``"acme/production"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import os
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from wizchat_management import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, AsyncWizChatClient, WizChatApiError, WizChatConnectionError

from .dryrun_gate import DryRunGate
from .grant import SharedClimb
from .limiter import KeyLimiter, KeyRefused, Ticket
from .retry import (
    MAX_THROTTLE_WAIT, backoff_delay, classify, halts_run, is_retryable, precision_of_retry_after, throttle_delay,
)
from .transport import (Transport, is_read_only, make_network_transport, pacing_headers, proxy_for, read_capped,
                        tls_context)
from .slots import Slots
from .wire import RequestBuilder

if TYPE_CHECKING:
    from tenacity import RetryCallState

if sys.version_info >= (3, 11):
    from asyncio import Timeout as _Timeout
    from asyncio import timeout as _timeout

    def _when(cm: _Timeout) -> float | None:
        return cm.when()

    def _reschedule(cm: _Timeout, when: float) -> None:
        cm.reschedule(when)

    def _expired(cm: _Timeout) -> bool:
        return cm.expired()

else:  # pragma: no cover - Python 3.10 (aiohttp brings async-timeout there)
    from async_timeout import Timeout as _Timeout
    from async_timeout import timeout as _timeout

    def _when(cm: _Timeout) -> float | None:
        return cm.deadline

    def _reschedule(cm: _Timeout, when: float) -> None:
        cm.update(when)

    def _expired(cm: _Timeout) -> bool:
        return bool(cm.expired() if callable(cm.expired) else cm.expired)

__all__ = [
    "KeySpec",
    "Executor",
    "Outcome",
    "Stopped",
    "OnEvent",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_THROTTLES",
    "STOP_GRACE",
    "run",
]

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

_LOG = logging.getLogger("wizsync.engine")

# Terraform and decK run a fixed parallelism of 10 (their docs); the spec's
# manifest example uses 16, and our pacing is per key, so 16 is the default.
DEFAULT_CONCURRENCY = 16
# Attempts in all for a transient error (5xx, no answer): 1 try + 3 retries,
# with 0.5/1/2 s backoff ≈ 3.5 s worst case per call (Stainless timing).
DEFAULT_MAX_ATTEMPTS = 4
# 429s are expected under load and are paced by the limiter, so they get a
# budget of their own; bounded so a key that only ever says 429 still ends.
DEFAULT_MAX_THROTTLES = 20
# A key nothing is known of yet sends one request and learns its limit from the
# answer's headers. Two would save one round trip per key, but on a key whose
# burst is 1 the second is a certain 429 and a Retry-After wait of 1/rate: in a
# wide fleet (200 keys x 5 chatbots at 1 req/s) that cost ~280 429s and a
# second per key at start (bench/rate_limit_floor.py --wide).
PROBE_IN_FLIGHT = 1
# After a stop, requests already sent get this long to answer: a healthy
# server answers in well under a second, a stuck one is abandoned.
STOP_GRACE = 5.0

#: ``on_event(key_label, context, kind, detail)``; kinds: attempt, retry,
#: throttled, ok, failed, stopped, and (context None) waiting {reason, seconds}
#: when a key holds all its requests for a second or more, wait_capped
#: {source, asked, capped_to} when the server asked for more than we wait.
#: ``detail`` is a JSON-able dict, never a key.
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


_STATS_FIELDS = fields(_KeyStats)


@dataclass
class _CallState:
    started: bool = False
    attempts: int = 0
    transient: int = 0
    throttles: int = 0
    refused: bool = False  # the server asked for a wait beyond MAX_THROTTLE_WAIT
    wrote: bool = False  # a request that changes state (not a read, not a dry-run) was sent
    uncertain: BaseException | None = None  # the last transient failure of such a request
    probe: bytes | None = None  # the origin whose first dry-run this attempt sends (dryrun_gate)


_CURRENT_CALL: contextvars.ContextVar[_CallState | None] = contextvars.ContextVar(
    "wizsync_engine_call", default=None
)


class _NoCookies:
    """The API sets no cookies: skip httpx's per-answer cookie extraction (urllib request/response
    wrappers built for every answer, ~10 % of the client's CPU per request)."""

    def __bool__(self) -> bool:
        return False

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


_NO_COOKIES = _NoCookies()


class _ApiClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` as the engine uses it, its general machinery cut to what this API needs.

    The SDK sends absolute URLs with its own headers, and this API sets no
    cookies, uses no client-level auth or params and never redirects (a 3xx is
    an error to report, not to follow). So a request is built once
    (``wire.RequestBuilder``: the client's default headers under the SDK's, the
    origin parsed once), and goes straight to the paced transport (which reads
    the body and enforces the deadline and cap). Building and sending through
    the full client cost ~25 % of the client CPU per request (bench/no_limit.py).
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        super().__init__(transport=transport, timeout=timeout)
        self._paced = transport
        self._timeout_ext = timeout.as_dict()
        self._builder = RequestBuilder(self.headers)

    @property
    def cookies(self) -> Any:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        pass

    def build_request(  # type: ignore[override]
        self,
        method: str,
        url: httpx.URL | str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        **unused: Any,
    ) -> httpx.Request:
        if unused or not isinstance(url, str):  # data/files/cookies/extensions, a relative URL: not this SDK's requests
            return super().build_request(method, url, params=params, headers=headers, json=json, content=content,
                                         timeout=timeout, **unused)
        ext = self._timeout_ext if timeout is httpx.USE_CLIENT_DEFAULT else httpx.Timeout(timeout).as_dict()
        return self._builder.build(method, url, timeout=ext, params=params, headers=headers, json=json, content=content)

    async def send(self, request: httpx.Request, *, stream: bool = False, **unused: Any) -> httpx.Response:
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = await self._paced.handle_async_request(request)
        response.request = request
        await response.aread()  # in memory already: the paced transport read it
        return response


class _Key:
    """Everything that belongs to one API key: limiter, client, counters."""

    def __init__(self, label: str, limiter: KeyLimiter) -> None:
        self.label = label
        self.limiter = limiter
        self.stats = _KeyStats()
        self.client: AsyncWizChatClient
        self.http: httpx.AsyncClient
        # The server's 401 for this key: the key itself was refused, so every other call on it would be.
        self.unauthorized: WizChatApiError | None = None


class _Refused(WizChatApiError):
    """A call on a key the server refuses (for long, or its key at all), failed unsent: no server answer."""


def _unauthorized(key: _Key, answer: WizChatApiError) -> _Refused:
    return _Refused(
        401, answer.code,
        f"not sent: the server refused {key.label}'s API key (401 {answer.code}: {answer.message}) on an "
        "earlier request of this run; the key's other calls would be refused the same way",
        request_id=answer.request_id,
    )


def _refusal(key: _Key, seconds: float) -> _Refused:
    back = time.strftime("%H:%M UTC", time.gmtime(time.time() + seconds))
    return _Refused(
        429, "rate_limited",
        f"not sent: the server refuses {key.label}'s requests for {seconds:.0f} s more, beyond the "
        f"{MAX_THROTTLE_WAIT:.0f} s wizsync waits; try again after {back}",
        retry_after=seconds,
    )


class _PacedTransport(httpx.AsyncBaseTransport):
    """Token, then slot, then send and read within the deadline; headers back to the limiter."""

    def __init__(self, executor: Executor, key: _Key, inner: httpx.AsyncBaseTransport) -> None:
        self._executor = executor
        self._key = key
        self._inner = inner

    async def _token(self, call: _CallState | None) -> Ticket:
        try:
            return await self._token_unless_refused(call)
        except KeyRefused as refused:
            raise _refusal(self._key, refused.seconds) from None

    async def _token_unless_refused(self, call: _CallState | None) -> Ticket:
        ex, limiter = self._executor, self._key.limiter
        limiter.check_refused()
        if not ex._stop.is_set() and not limiter._lock.locked() and limiter.poll() <= 0:
            return limiter.take()  # a token is there: no task, no wait
        if call is None:
            return await limiter.acquire()
        return await ex._unless_stopped(limiter.acquire, lambda t: limiter.on_failure(t))  # type: ignore[no-any-return]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ex, key = self._executor, self._key
        if key.unauthorized is not None:
            raise _unauthorized(key, key.unauthorized)
        call = _CURRENT_CALL.get()
        t0 = time.monotonic()
        ticket = await self._token(call)
        key.stats.limiter_wait_seconds += time.monotonic() - t0
        read_only = is_read_only(request)
        try:
            if call is not None and read_only and request.method == "POST":  # a dry-run
                # The first dry-run to a server goes alone: it proves the server only plans (dryrun_gate).
                # After the token (the probe is the first one ready, not one its key holds back), before
                # the slot (a dry-run waiting here holds none another request could use).
                origin = DryRunGate.origin(request)
                if await ex._dry_runs.enter(origin, lambda probe: ex._unless_stopped(probe.wait, lambda _: None)):
                    call.probe = origin
            await ex._slots.acquire(stoppable=call is not None)
        except BaseException:
            key.limiter.on_failure(ticket)
            raise
        try:
            return await self._exchange(request, call, key.limiter.sending(ticket), read_only)
        finally:
            ex._slots.release()

    async def _exchange(self, request: httpx.Request, call: _CallState | None, ticket: Ticket,
                        read_only: bool) -> httpx.Response:
        """Send and read the whole answer, within the request deadline (shortened by a stop).

        ``read_only``: ``transport.is_read_only(request)``, read once by the caller."""
        ex, key = self._executor, self._key
        if call is not None:
            if not call.started:
                call.started = True
                key.stats.calls += 1
            if not read_only:
                call.wrote = True
        key.stats.requests += 1
        answered = False
        deadline = ex._loop_time() + ex.http.request_timeout
        try:
            async with _timeout(None) as cm:
                _reschedule(cm, deadline)
                if ex._stop.is_set():
                    _reschedule(cm, min(deadline, ex._loop_time() + ex.stop_grace))
                ex._in_flight.add(cm)
                try:
                    sent = time.monotonic()
                    response = await self._inner.handle_async_request(request)
                    answered = True
                    key.stats.latency_seconds += time.monotonic() - sent
                    status = response.status_code
                    key.stats.responses[str(status)] = key.stats.responses.get(str(status), 0) + 1
                    if status == 429:
                        key.stats.throttled += 1
                    key.limiter.on_response(ticket, status, pacing_headers(response.headers))
                    return await read_capped(response, request, ex.http.max_response_bytes)
                finally:
                    ex._in_flight.discard(cm)
        except TimeoutError:
            if not answered:
                key.limiter.on_failure(ticket)
            if not _expired(cm):
                raise  # a TimeoutError of the backend's own, not our deadline
            if ex._stop.is_set() and ex._loop_time() < deadline:
                if read_only:
                    raise Stopped() from None
                raise httpx.ReadTimeout(
                    f"abandoned: the run is stopping and no complete answer came within {ex.stop_grace:g} s",
                    request=request,
                ) from None
            raise httpx.ReadTimeout(
                f"no complete answer within the {ex.http.request_timeout:g} s request deadline (--request-timeout)",
                request=request,
            ) from None
        except BaseException:
            if not answered:
                key.limiter.on_failure(ticket)
            raise

    async def aclose(self) -> None:
        pass  # the network transport is the executor's, shared by every key


def _describe(exc: BaseException) -> str:
    """A short, key-free description for events (the SDK's messages carry no key)."""
    if isinstance(exc, WizChatApiError):
        return f"{exc.status} {exc.code}"
    return f"{type(exc).__name__}: {exc}"


class Executor:
    """Runs API calls for many keys concurrently, paced per key, capped globally.

    ``async with Executor({"acme/production": KeySpec(key, url)}) as ex:``
    then ``await ex.call("acme/production", lambda c: c.get_config(id))``.
    ``http`` picks the backend, the request deadline and the answer size cap;
    ``timeout`` is httpx's per-phase timeouts (each capped by the deadline).
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
        http: Transport | None = None,
        stop_grace: float = STOP_GRACE,
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
        self.http = http if http is not None else Transport()
        self.stop_grace = stop_grace
        self._slots = Slots(concurrency, Stopped)
        self._stop = asyncio.Event()
        self._dry_runs = DryRunGate()
        self._halted: tuple[str | None, BaseException] | None = None
        self._in_flight: set[_Timeout] = set()  # the deadlines of requests being sent or read
        self._keys: dict[str, _Key] = {}
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        timeout = self.http.httpx_timeout(timeout)
        # One pool for every key, as large as the cap: in-flight <= cap <= pool,
        # so a request never waits for a connection, whatever the mix of keys;
        # and a wide fleet opens connections for the cap, not for each key.
        # A transport given by the caller is used as is (and closed by the caller); the
        # run's own are one per proxy route, nearly always a single one.
        self._networks: dict[str | None, httpx.AsyncBaseTransport] = {}
        self._routes: dict[str, str | None] = {}  # base URL -> its proxy (None: direct)
        self._tls: ssl.SSLContext | None = None  # built with the first route, shared by all
        self._base_urls = {spec.base_url or DEFAULT_BASE_URL for spec in keys.values()}
        # The keys of one server learn a limit it does not announce with one climb between them.
        climbs: dict[str, SharedClimb] = {}
        for label, spec in keys.items():
            limiter = KeyLimiter(rate_hint=spec.rate_hint, burst_hint=spec.burst_hint, clock=clock,
                                 on_wait=self._wait_notice(label), probe=PROBE_IN_FLIGHT,
                                 shared=climbs.setdefault(spec.base_url, SharedClimb()))
            key = _Key(label, limiter)
            network = transport if transport is not None else self._network_for(spec.base_url, concurrency)
            key.http = _ApiClient(transport=_PacedTransport(self, key, network), timeout=timeout)
            key.client = AsyncWizChatClient(spec.api_key, base_url=spec.base_url, http_client=key.http)
            self._keys[label] = key

    def __repr__(self) -> str:
        return f"Executor(keys={sorted(self._keys)!r}, concurrency={self.concurrency})"

    def _route(self, base_url: str) -> str | None:
        # One route per base URL, not per key: reading the environment's proxies walks every
        # variable, and a wide fleet's environment holds a key variable per tenant.
        if base_url not in self._routes:
            self._routes[base_url] = proxy_for(base_url, os.environ)
        return self._routes[base_url]

    def _network_for(self, base_url: str, concurrency: int) -> httpx.AsyncBaseTransport:
        proxy = self._route(base_url or DEFAULT_BASE_URL)
        if proxy not in self._networks:
            if self._tls is None:
                # One for the run, for every route it will have (pools are per proxy, not per URL).
                proxies = [p for p in map(self._route, self._base_urls) if p is not None]
                self._tls = tls_context([*self._base_urls, *proxies])
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            self._networks[proxy] = make_network_transport(self.http.backend, limits, self._tls, proxy)
        return self._networks[proxy]

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
        for network in self._networks.values():
            await network.aclose()

    def stop(self) -> None:
        """Start no new call and retry none; requests in flight get ``stop_grace`` seconds to answer."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._slots.stop()
        try:
            cutoff = self._loop_time() + self.stop_grace
        except RuntimeError:  # no running loop: nothing is in flight
            return
        for cm in list(self._in_flight):
            when = _when(cm)
            if when is None or when > cutoff:
                _reschedule(cm, cutoff)

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def halted(self) -> tuple[str | None, BaseException] | None:
        """(the call's context, the answer) that stopped the run (``retry.halts_run``), if one did."""
        return self._halted

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

    def _wait_notice(self, label: str) -> Callable[[str, dict[str, Any]], None]:
        def notice(kind: str, detail: dict[str, Any]) -> None:
            if kind == "paced":  # the log's alone: what a blind key learnt
                ceiling = detail["ceiling"]
                _LOG.info("%s: paced blind, %s: %.2f requests/s (ceiling %s)", label, detail["phase"], detail["pace"],
                          "unknown" if ceiling is None else f"{ceiling:.2f}/s")
                return
            if kind == "windowed":  # the log's alone too
                _LOG.info("%s: the rate-limit headers describe a window: %d requests, then a wait for its end "
                          "(%.1f s left at the first 429)", label, detail["limit"], detail["reset"])
                return
            if kind == "wait_capped":
                _LOG.warning("%s: the server asked to wait %s s (%s); waiting %s s at most",
                             label, detail["asked"], detail["source"], detail["capped_to"])
            else:
                _LOG.info("%s: waiting %.1f s (%s)", label, detail["seconds"], detail["reason"])
            self._emit(label, None, kind, detail)

        return notice

    def _halt(self, label: str, context: str | None, exc: BaseException) -> None:
        """An answer no further request may follow (``retry.halts_run``): stop the run, say why, once."""
        if self._halted is not None:
            return
        self._halted = (context, exc)
        _LOG.error("%s%s: %s; the run is stopped: no further request is sent", label,
                   f" {context}" if context else "", _describe(exc))
        self._emit(label, context, "halted", {"error": _describe(exc)})
        self.stop()

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
            if state.attempts and self._stop.is_set():
                # No retry once stopping. A write that may have reached the server
                # ends with that failure (the caller records it as uncertain).
                raise state.uncertain if state.uncertain is not None else Stopped()
            state.attempts += 1
            self._emit(label, context, "attempt", {"attempt": state.attempts})
            planned = False
            try:
                result = await fn(key.client)
                planned = True  # a dry-run's answer the SDK took for a plan (else dry_run_applied)
                return result
            except Exception as exc:
                self._count_failure(key, state, exc)
                if halts_run(exc):
                    self._halt(label, context, exc)  # before the gate opens: no dry-run follows it
                raise
            finally:
                if state.probe is not None:
                    self._dry_runs.settle(state.probe, planned)
                    state.probe = None

        def before_sleep(exc: BaseException, delay: float) -> None:
            if classify(exc) == "throttled":
                retry_after = exc.retry_after if isinstance(exc, WizChatApiError) else None
                snap = key.limiter.snapshot()
                self._emit(label, context, "throttled",
                           {"attempt": state.attempts, "retry_after": retry_after, "wait": round(snap.blocked_for, 3),
                            "reason": snap.waiting or "rate"})
            else:
                key.stats.retries += 1
                self._emit(label, context, "retry",
                           {"attempt": state.attempts, "error": _describe(exc), "wait": round(delay, 3)})

        def should_retry(exc: BaseException) -> bool:
            return is_retryable(exc) and not self._stop.is_set() and not self._stop_retrying(state, exc)

        async def attempts() -> T:
            # Most calls succeed at once and pay for no retry machinery (building
            # tenacity's AsyncRetrying per call cost ~8 % of the client CPU per
            # request, docs/benchmarks.md). Only a failed first attempt enters
            # tenacity, with the same decisions: retry.classify, _stop_retrying, _retry_wait.
            try:
                return await attempt()
            except Exception as exc:
                if not should_retry(exc):
                    raise
                first_delay = self._retry_wait(state, exc)
                before_sleep(exc, first_delay)
                await self._nap(first_delay)
            # Imported by the first call that retries: a run without one never loads tenacity.
            from tenacity import AsyncRetrying, retry_if_exception

            def outcome_of(rs: RetryCallState) -> BaseException:
                exc = rs.outcome.exception() if rs.outcome is not None else None
                assert exc is not None  # tenacity asks only after a failed attempt
                return exc

            def wait(rs: RetryCallState) -> float:
                return self._retry_wait(state, outcome_of(rs))

            def sleep_note(rs: RetryCallState) -> None:
                before_sleep(outcome_of(rs), rs.next_action.sleep if rs.next_action is not None else 0.0)

            retrying = AsyncRetrying(
                retry=retry_if_exception(is_retryable),
                stop=lambda rs: not should_retry(outcome_of(rs)),
                wait=wait,
                before_sleep=sleep_note,
                sleep=self._nap,
                reraise=True,
            )
            return await retrying(attempt)

        token = _CURRENT_CALL.set(state)
        try:
            try:
                result: T = await attempts()
            except Stopped:
                if state.uncertain is None:
                    raise
                raise state.uncertain from None
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

    async def _nap(self, seconds: float) -> None:
        """The sleep between attempts, cut short by a stop (no retry follows one)."""
        if seconds <= 0 or self._stop.is_set():
            return
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _count_failure(self, key: _Key, state: _CallState, exc: BaseException) -> None:
        kind = classify(exc)
        if isinstance(exc, WizChatConnectionError):
            key.stats.connection_errors += 1
        if kind == "transient":
            state.transient += 1
            if state.wrote:
                state.uncertain = exc
        elif isinstance(exc, _Refused):
            state.refused = True  # nothing was sent: nothing to learn, no wait to hold
        elif isinstance(exc, WizChatApiError) and exc.status == 401:
            # Authentication, not a chatbot's permission (403/404): the key's other calls fail unsent.
            key.unauthorized = key.unauthorized or exc
        elif kind == "throttled":
            state.throttles += 1
            retry_after = exc.retry_after if isinstance(exc, WizChatApiError) else None
            delay = throttle_delay(retry_after, attempt=state.throttles - 1)
            reason = "retry-after"
            precision = precision_of_retry_after(exc)
            if delay is None:
                # The server wants more than we will wait: fail this call, and
                # hold the key's other calls for the longest wait we accept
                # (block caps it at MAX_THROTTLE_WAIT and reports the cap).
                state.refused = True
                delay = float(retry_after) if retry_after is not None else MAX_THROTTLE_WAIT
                key.limiter.refuse(delay)  # the key's other calls fail unsent, not one a minute
            elif retry_after is None or delay != retry_after:
                # A bare 429: one request's worth of the learnt rate first, then backoff.
                reason = "backoff"
                hint = key.limiter.wait_hint() if state.throttles == 1 else None
                delay = hint if hint is not None else delay
            # Every caller of this key waits, not only this one: the limiter is shared.
            key.limiter.block(delay, reason, precision if delay == retry_after else None)

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
        keep: bool = True,
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

        ``keep=False`` returns no outcomes and lets go of each item once done: each outcome is
        ``on_outcome``'s alone, so a fleet's results (and, if the caller holds none, its items) are
        never all in memory at once.
        """
        todo = dict(enumerate(items))
        del items  # only ``todo`` holds them now
        results: list[Outcome[I, T] | None] = [None] * len(todo)

        async def one(index: int) -> None:
            item = todo[index] if keep else todo.pop(index)  # not kept: let go of it once done
            try:
                outcome: Outcome[I, T] = Outcome(item, value=await fn(item))
            except Exception as exc:
                outcome = Outcome(item, error=exc)
            if keep:
                results[index] = outcome
            if on_outcome is not None:
                on_outcome(outcome)

        if key is None:
            await asyncio.gather(*(one(i) for i in range(len(todo))))
        else:
            queues: dict[str, list[int]] = {}
            for index, item in todo.items():
                queues.setdefault(key(item), []).append(index)

            async def worker(queue: list[int]) -> None:
                while queue:
                    await one(queue.pop())

            for queue in queues.values():
                queue.reverse()  # pop() from the end: input order within a key
            # Started round the keys: every key's first worker, then every key's second...
            # Key by key, a key's extra workers (each preparing its call, then waiting for a
            # token) would run before the next key's first call went out.
            depth = min(self.concurrency, max(map(len, queues.values()), default=0))
            await asyncio.gather(*(worker(q) for i in range(depth) for q in queues.values() if i < len(q)))
        return [r for r in results if r is not None]

    # -- reporting -----------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per-label counters and limiter state, JSON-able (see the report/README for keys)."""
        out: dict[str, dict[str, Any]] = {}
        for label, key in self._keys.items():
            # Field by field, not dataclasses.asdict (it deep-copies): the live view reads every key twice a second.
            data: dict[str, Any] = {f.name: getattr(key.stats, f.name) for f in _STATS_FIELDS}
            data["responses"] = dict(sorted(data["responses"].items()))
            data["limiter_wait_seconds"] = round(data["limiter_wait_seconds"], 3)
            data["latency_seconds"] = round(data["latency_seconds"], 3)
            snap = key.limiter.snapshot()
            data["rate"] = None if snap.rate is None else round(snap.rate, 3)
            data["server_rate"] = None if snap.server_rate is None else round(snap.server_rate, 3)
            data["capacity"] = snap.capacity
            data["mode"] = snap.mode
            # Why the key sends nothing now, and for how long (progress and -v show it).
            data["waiting"] = None if snap.waiting is None else {
                "reason": snap.waiting, "seconds": round(snap.wait_seconds, 3)}
            out[label] = data
        return out

    def estimate_seconds(self, requests: Mapping[str, int]) -> float | None:
        """Lower bound on the time to send ``requests[label]`` more requests per key.

        docs/rate-limits.md, "The floor": max_k (n_k − b_k)/r_k over the keys' known rates,
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


# A run allocates ~600 objects per request (answers, models, futures) that refcounting frees, and
# few cycles. At CPython's default threshold (700) the cycle collector ran ~300 times in a
# 1,000-chatbot plan, each pass also walking what start-up left (modules, schemas, the fleet):
# ~0.2 ms of client CPU per chatbot (bench/no_limit.py). 50,000 young objects (a few MB at
# most) between passes, and start-up's objects frozen out of them, keep cycles collected.
_RUN_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def _collector_for_a_run() -> Iterator[None]:
    old = gc.get_threshold()
    caller_froze = gc.get_freeze_count() > 0  # the CLI freezes its imports and unfreezes on return
    gc.freeze()  # what is alive now is never traversed during the run (refcounting still frees it)
    gc.set_threshold(max(old[0], _RUN_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if not caller_froze:  # the heap as the caller had it; a freezing caller unfreezes itself
            gc.unfreeze()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run the engine from a sync click command.

    The result is handed over outside the main task: at exit ``asyncio.run``
    looks its SIGINT handler up through ``signal`` (``getsignal``), which
    builds the repr of that handler, main task and result included — for a
    1,000-chatbot plan, every ``ApplyResult`` model (~0.2 s of CPU).
    The cycle collector runs less often meanwhile (``_collector_for_a_run``).
    """
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    with _collector_for_a_run():
        asyncio.run(main())
    return box[0]
