"""The HTTP layer under the engine: which backend sends, and the limits every answer is held to.

``httpx.AsyncClient`` stays the interface (the SDK's ``http_client=`` is
httpx-typed); only the transport under it changes. Two backends:

* ``aiohttp`` (default): ``httpx-aiohttp``'s ``AiohttpTransport``, aiohttp's
  C-accelerated HTTP/1.1 client under httpx — about a quarter of httpcore's
  client CPU per request (docs/benchmarks.md, "Client CPU per request");
* ``httpx``: httpx's own ``AsyncHTTPTransport`` (httpcore), pure Python.

Every request the engine sends is held to two limits, whatever the backend
(``Transport``): an overall deadline from the first byte sent to the last
byte of the body (httpx's timeouts are per read, so a server that trickles
one byte every 20 s never trips them), and a cap on the answer's size,
checked against ``Content-Length`` before the body and while it is read, so
an oversize answer is never read whole.

Proxies come from the environment, as curl, httpx and the SDK's own default
client read them (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``):
an explicit transport would otherwise ignore them, and a run behind a
corporate proxy would fail to connect (``proxy_for``).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import httpx

from wizchat_management import WizChatApiError

__all__ = [
    "HttpBackend",
    "HTTP_BACKENDS",
    "DEFAULT_HTTP_BACKEND",
    "DEFAULT_REQUEST_TIMEOUT",
    "MAX_RESPONSE_BYTES",
    "Transport",
    "ResponseTooLarge",
    "make_network_transport",
    "tls_context",
    "proxy_for",
    "UnsupportedProxy",
    "read_capped",
    "WholeBody",
    "is_read_only",
    "pacing_headers",
]

HttpBackend = Literal["aiohttp", "httpx"]
HTTP_BACKENDS: tuple[str, ...] = get_args(HttpBackend)
DEFAULT_HTTP_BACKEND: HttpBackend = "aiohttp"

# Apply runs every section server-side (the SDK allows 60 s per read); two of
# those is past anything a healthy server needs for one document, and short
# enough that a stuck request is retried within a run.
DEFAULT_REQUEST_TIMEOUT = 120.0
# A list page of 200 chatbots is ~100 KB and a full config document tens of
# KB: 16 MiB is two orders of magnitude of headroom, and still bounded.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Transport:
    """How the engine talks HTTP: backend, overall deadline per request, answer size cap."""

    backend: HttpBackend = DEFAULT_HTTP_BACKEND
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_response_bytes: int = MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        if self.backend not in HTTP_BACKENDS:
            raise ValueError(f"unknown HTTP backend {self.backend!r} (one of: {', '.join(HTTP_BACKENDS)})")
        if not self.request_timeout > 0:
            raise ValueError("request_timeout must be a positive number of seconds")
        if self.max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")

    def httpx_timeout(self, timeout: httpx.Timeout) -> httpx.Timeout:
        """httpx's per-phase timeouts, none longer than the overall deadline."""

        def cap(value: float | None) -> float:
            return self.request_timeout if value is None else min(value, self.request_timeout)

        return httpx.Timeout(connect=cap(timeout.connect), read=cap(timeout.read), write=cap(timeout.write),
                             pool=cap(timeout.pool))


class ResponseTooLarge(WizChatApiError):
    """The answer was larger than ``Transport.max_response_bytes``; the rest was not read."""


class UnsupportedProxy(ValueError):
    """The environment names a proxy wizsync cannot go through (only http:// and https:// proxies)."""


def proxy_for(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy that requests to ``url`` go through, from ``environ``; None: connect directly.

    ``<scheme>_PROXY`` then ``ALL_PROXY``, the lower-case name first (curl's
    rule); ``NO_PROXY`` takes host names (their sub-domains too), ``.domain``
    suffixes, ``host:port`` and ``*``, as curl reads it. Loopback
    is never proxied (Go's net/http rule): a corporate proxy cannot reach the
    emulator on 127.0.0.1, and ``wizsync demo`` must work behind one.
    """
    proxies: dict[str, str] = {}
    for name in sorted(environ, key=lambda n: n.islower()):  # lower-case names win, as in urllib
        if name.lower().endswith("_proxy") and environ[name]:
            proxies[name.lower()[: -len("_proxy")]] = environ[name]
    parsed = httpx.URL(url)
    if not parsed.host or _is_loopback(parsed.host) or _bypassed(parsed.host, parsed.port, proxies.get("no", "")):
        return None
    proxy = proxies.get(parsed.scheme) or proxies.get("all")
    if proxy is None:
        return None
    scheme = httpx.URL(proxy).scheme if "://" in proxy else ""
    if scheme not in ("http", "https"):
        # Only the scheme is named: a proxy URL may carry a password.
        raise UnsupportedProxy(
            f"the environment's proxy for {parsed.scheme}://{parsed.host} is a {scheme or 'scheme-less'} proxy; "
            f"wizsync goes through http:// and https:// proxies only (NO_PROXY={parsed.host} connects directly)"
        )
    return proxy


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_context(urls: Iterable[str]) -> ssl.SSLContext:
    """The run's one TLS context, for the base URLs and proxies its routes reach.

    Loading the CA bundle costs ~20-40 ms of CPU at every start; a run that reaches only
    ``http://`` (the emulator, a plain-HTTP gateway on loopback) never uses it. Such a run
    gets a context that trusts no CA at all: were it ever asked for TLS, it would refuse
    every certificate, never accept one.
    """
    if any(httpx.URL(url).scheme == "https" for url in urls):
        return httpx.create_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies hostnames and certificates, against no CA


def make_network_transport(
    backend: HttpBackend, limits: httpx.Limits, tls: ssl.SSLContext, proxy: str | None = None
) -> httpx.AsyncBaseTransport:
    """One pool for every key of a run that shares a route: connections carry no key (it travels per request)."""
    route = httpx.Proxy(proxy) if proxy else None
    if backend == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, verify=tls, proxy=route)
    from ._aiohttp import AiohttpBackend  # aiohttp is imported only when it is used

    return AiohttpBackend(limits=limits, verify=tls, proxy=route)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"


def _too_large(response: httpx.Response, request: httpx.Request, limit: int, seen: str) -> ResponseTooLarge:
    return ResponseTooLarge(
        response.status_code,
        "response_too_large",
        f"{request.method} {request.url.copy_with(query=None)}: the answer is larger than the "
        f"{_size(limit)} wizsync accepts ({seen}); the rest was not read",
        None,
        request_id=response.headers.get("x-request-id"),
    )


_DROPPED = ("content-encoding", "content-length", "transfer-encoding")


class WholeBody(httpx.AsyncByteStream):
    """A network stream that can also read its whole body in one call, at most ``limit`` bytes.

    httpx's own path (``aiter_raw``: a chunker and an async generator per layer) costs
    more client CPU than the read itself for the API's small answers.
    """

    async def read_whole(self, limit: int) -> bytes | None:
        """The body, or None once more than ``limit`` bytes came (the rest is not read)."""
        raise NotImplementedError


async def read_capped(response: httpx.Response, request: httpx.Request, limit: int) -> httpx.Response:
    """The answer with its body read (decoded) into memory, or ``ResponseTooLarge``.

    Always closes the network stream, so the connection goes back to the pool
    (or is dropped, when the body was not read to its end).
    """
    if response.is_stream_consumed:  # in memory already (e.g. httpx.MockTransport): nothing left to read
        if len(response.content) > limit:
            raise _too_large(response, request, limit, f"{len(response.content)} bytes")
        return response
    try:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(response, request, limit, f"Content-Length {declared}")
        encoded = "content-encoding" in response.headers
        if not encoded and isinstance(response.stream, WholeBody):
            whole = await response.stream.read_whole(limit)
            if whole is None:
                raise _too_large(response, request, limit, f"more than {limit} bytes")
            return _in_memory(response, request, whole)
        chunks: list[bytes] = []
        size = 0
        # aiter_bytes decodes gzip/deflate/brotli: the cap holds for what is
        # decoded too (a small compressed answer can inflate without bound).
        async for chunk in response.aiter_bytes() if encoded else response.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _too_large(response, request, limit, f"more than {limit} bytes")
            chunks.append(chunk)
    finally:
        await response.aclose()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if encoded:  # now decoded: the headers must not say otherwise
        headers: Any = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROPPED]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request,
                              extensions=response.extensions)
    return _in_memory(response, request, body)


def _in_memory(response: httpx.Response, request: httpx.Request, body: bytes) -> httpx.Response:
    answer = httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body),
                            request=request, extensions=response.extensions)
    # What ``aread()`` would store, without its generic path (chunker, decoders: ~20 µs an
    # answer). Were httpx to rename it, ``aread()`` reads the ByteStream: same bytes.
    answer._content = body
    return answer


_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_read_only(request: httpx.Request) -> bool:
    """Whether the request changes nothing on the server: a GET, or an apply with ``dryRun=true``.

    Read from the raw query (parsing it into ``QueryParams`` costs more than the rest of this
    check): the first ``dryRun`` pair decides, as ``params.get`` would; a spelling other than
    the SDK's own (``dryRun=true``) counts as a write, the cautious side.
    """
    if request.method in _READ_ONLY_METHODS:
        return True
    first = next((p for p in request.url.query.split(b"&") if p.startswith(b"dryRun=")), None)
    return first == b"dryRun=true"


_PACING = frozenset({b"x-ratelimit-limit", b"x-ratelimit-remaining", b"x-ratelimit-reset", b"retry-after",
                     # the IETF draft's names (limiter.rate_limit_headers)
                     b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset", b"ratelimit",
                     b"date"})  # the server's clock, for a Retry-After that is an HTTP-date


def pacing_headers(headers: httpx.Headers) -> dict[str, str]:
    """The answer's headers a limiter reads (``X-RateLimit-*`` or ``RateLimit-*``, ``Retry-After``, ``Date``), as httpx reads them.

    Lower-cased names, repeated values joined with ", " (``httpx.Headers.items``). A dict of a
    few: the limiter lower-cases the names it is given, and over httpx.Headers' mapping
    view that decoded every header of every answer.
    """
    out: dict[str, str] = {}
    for key, value in headers.raw:
        name = key.lower()
        if name in _PACING:
            text, name_text = value.decode(headers.encoding), name.decode("ascii")
            out[name_text] = f"{out[name_text]}, {text}" if name_text in out else text
    return out
