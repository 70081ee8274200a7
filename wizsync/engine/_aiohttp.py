"""``httpx-aiohttp``'s transport, with aiohttp's errors told apart the way httpx tells them.

``httpx_aiohttp`` maps every ``aiohttp.ClientConnectionError`` to
``httpx.ConnectTimeout`` (a dropped keep-alive connection would read "connect
timeout") and lets some aiohttp errors through unmapped (a malformed status
line), which the SDK would not see as "no answer". Here each aiohttp error
becomes the httpx error of the same meaning, so both backends fail alike.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx


@contextmanager
def _no_default_cas() -> Iterator[None]:
    # aiohttp builds two default TLS contexts when it is imported, each loading the
    # system's CA store (~0.1 s of CPU together on the project machine, at every run
    # on the default backend). wizsync never uses them: every connection is
    # handed the run's own context (transport.tls_context, given to the connector
    # below). While aiohttp is imported, the default CAs are not loaded, so those two
    # contexts trust no CA (were they ever used, they would refuse, never accept); every
    # context made after the import loads its CAs as usual.
    load_default_certs = ssl.SSLContext.load_default_certs
    set_default_verify_paths = ssl.SSLContext.set_default_verify_paths
    ssl.SSLContext.load_default_certs = lambda self, purpose=None: None  # type: ignore[method-assign]
    ssl.SSLContext.set_default_verify_paths = lambda self: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        ssl.SSLContext.load_default_certs = load_default_certs  # type: ignore[method-assign]
        ssl.SSLContext.set_default_verify_paths = set_default_verify_paths  # type: ignore[method-assign]


with _no_default_cas():
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

from .transport import WholeBody  # noqa: E402

__all__ = ["AiohttpBackend", "httpx_error"]

# Most specific first: the first isinstance match wins.
_MAP: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientError, httpx.RemoteProtocolError),
)


def httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx error for an aiohttp one (None: not an aiohttp error)."""
    for aiohttp_type, httpx_type in _MAP:
        if isinstance(exc, aiohttp_type):
            return httpx_type(str(exc) or type(exc).__name__, request=request)
    return None


class _Body(WholeBody):
    """The answer's body as aiohttp holds it: read whole in one call (``read_whole``), or streamed."""

    CHUNK = 64 * 1024

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def read_whole(self, limit: int) -> bytes | None:
        content = self._response.content
        try:
            declared = self._response.content_length
            if declared is not None and declared <= limit:
                return await content.read()  # aiohttp's parser stops at Content-Length
            chunks: list[bytes] = []
            size = 0
            while chunk := await content.readany():
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
        except aiohttp.ClientError as exc:
            raise _remapped(exc, self._request) from exc

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(self.CHUNK):
                yield chunk
        except aiohttp.ClientError as exc:
            raise _remapped(exc, self._request) from exc

    async def aclose(self) -> None:
        try:
            await self._response.__aexit__(None, None, None)  # releases the connection
        except aiohttp.ClientError as exc:
            raise _remapped(exc, self._request) from exc


def _remapped(exc: BaseException, request: httpx.Request) -> BaseException:
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None else exc
    return httpx_error(cause, request) or exc


_AIOHTTP_DEFAULT_LIMIT = 100


class _Unretried(Exception):
    """Carries a dropped-connection error past aiohttp's own resend (it resends only its own types)."""

    def __init__(self, error: aiohttp.ClientError) -> None:
        super().__init__(str(error))
        self.error = error


async def _no_silent_resend(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
    # aiohttp sends an idempotent request again when a kept-alive connection turns
    # out closed (RFC 9112 §9.3.1.1). The engine retries itself and journals every
    # attempt, so an attempt it cannot see must not happen. aiohttp has no public
    # switch for it; a client middleware (public since aiohttp 3.12) sees the error
    # first, and one that is not ClientOSError/ServerDisconnectedError is not resent.
    try:
        return await handler(request)
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise _Unretried(exc) from exc


class AiohttpBackend(AiohttpTransport):
    """``AiohttpTransport`` whose failures are the httpx errors the SDK turns into "no answer"."""

    def get_client(self) -> aiohttp.ClientSession:
        # The base class's connector (pool size, keep-alive, TLS), plus the middleware above.
        connector = aiohttp.TCPConnector(
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
            local_addr=(self.local_address, 0) if self.local_address else None,
            # No cap given: aiohttp's own default, as the base class leaves it.
            limit=_AIOHTTP_DEFAULT_LIMIT if self.limits.max_connections is None else self.limits.max_connections,
        )
        return aiohttp.ClientSession(connector=connector, middlewares=(_no_silent_resend,))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The base class's conversion, without its per-request costs: headers go over as
        # decoded pairs (not through httpx.Headers' mapping view), the body as bytes.
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        timeout = request.extensions.get("timeout") or {}
        pool, connect = timeout.get("pool"), timeout.get("connect")
        if pool is not None and connect is not None:
            # aiohttp's ``connect`` spans waiting for a pooled connection *and* opening
            # one; httpx's pool timeout is the wait alone. Allow both, as httpx would.
            pool += connect
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream
            request.headers.pop("transfer-encoding", None)  # aiohttp frames the body itself
        proxy = self.proxy
        try:
            response = await self.client.request(
                request.method, str(request.url),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=data, allow_redirects=False, auto_decompress=False, compress=False,
                timeout=aiohttp.ClientTimeout(sock_connect=connect, sock_read=timeout.get("read"), connect=pool),
                server_hostname=request.extensions.get("sni_hostname"),
                proxy=str(proxy.url) if proxy else None,
                proxy_auth=aiohttp.BasicAuth(*proxy.auth) if proxy and proxy.auth else None,
                proxy_headers=proxy.headers if proxy else None,
            ).__aenter__()
        except _Unretried as exc:
            raise _remapped(exc.error, request) from exc.error
        except (httpx.TransportError, aiohttp.ClientError) as exc:
            raise _remapped(exc, request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(response.status, headers=response.raw_headers, stream=_Body(response, request),
                              request=request, extensions=extensions)
