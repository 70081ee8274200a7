"""The SDK's requests as ``httpx.Request``s, built without httpx's general URL and header parsing.

The SDK sends absolute URLs it built itself (``base_url`` plus percent-encoded
segments, ``wizchat_management/_base_client.py``) with the same few headers
on every request of a key. httpx parses and validates every URL character by
character and normalizes and merges every header, per request: ~100 µs of
client CPU to build an apply (bench/no_limit.py), more than aiohttp spends
sending it. Here each origin (scheme, host, port) is parsed by httpx once and
each request's URL reuses that parse with its own path and query; a key's
headers are normalized once; the body is encoded as httpx encodes ``json=``.

The URL is built from httpx's own parse result (``httpx.URL._uri_reference``,
not public API), so it is used only where it provably equals what
``httpx.URL(url, params=params)`` gives: a path of unreserved and
percent-encoded characters with no dot segment, and the first URL of each
origin compared with httpx's own parse. Anything else is httpx's own
``httpx.Request``, as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from json import dumps
from typing import Any

import httpx

__all__ = ["RequestBuilder"]

# What httpx leaves as it is in a path: unreserved, sub-delims, ":@/" and complete
# percent-escapes. No "?", "#", space or anything non-ASCII.
_PLAIN_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_DOT_SEGMENT = re.compile(r"(?:^|/)\.{1,2}(?:/|$)")
_PLAIN_PARAM = re.compile(r"[A-Za-z0-9\-._~]*")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _plain(path: str) -> bool:
    return path.startswith("/") and _PLAIN_PATH.fullmatch(path) is not None and _DOT_SEGMENT.search(path) is None


def _query(params: Mapping[str, Any] | None) -> str | None:
    """The query httpx makes of ``params`` (``str(httpx.QueryParams(params))``); plain pairs joined directly."""
    if not params:
        return None
    pairs = []
    for name, value in params.items():
        text = value if isinstance(value, str) else str(value) if type(value) is int else None
        if text is None or _PLAIN_PARAM.fullmatch(name) is None or _PLAIN_PARAM.fullmatch(text) is None:
            return str(httpx.QueryParams(params))
        pairs.append(f"{name}={text}")
    return "&".join(pairs)


class _Origin:
    """httpx's parse of one origin, and the Host header its requests carry."""

    def __init__(self, reference: Any, host: bytes) -> None:
        self.reference = reference
        self.host = host

    def url(self, path: str, params: Mapping[str, Any] | None) -> httpx.URL:
        built = httpx.URL.__new__(httpx.URL)
        built._uri_reference = self.reference._replace(path=path, query=_query(params))
        return built


def _origin_of(origin: str, path: str, params: Mapping[str, Any] | None) -> _Origin | None:
    """``origin``'s parse, if a URL built on it equals httpx's own parse of ``origin + path``."""
    try:
        parsed = httpx.URL(origin + "/")
        reference: Any = getattr(parsed, "_uri_reference", None)
        if getattr(reference, "_replace", None) is None or reference.query is not None or reference.fragment is not None:
            return None
        candidate = _Origin(reference, parsed.netloc)
        built, expected = candidate.url(path, params), httpx.URL(origin + path, params=params)
        return candidate if built == expected and str(built) == str(expected) and built.netloc == expected.netloc else None
    except (httpx.InvalidURL, TypeError, ValueError, AttributeError):
        return None


class RequestBuilder:
    """Builds ``httpx.Request``s for one client: ``default_headers`` under each request's own."""

    def __init__(self, default_headers: httpx.Headers) -> None:
        self._defaults = default_headers
        self._origins: dict[str, _Origin | None] = {}
        self._heads: dict[tuple[Any, ...], list[tuple[bytes, bytes]]] = {}

    def build(self, method: str, url: str, *, timeout: dict[str, Any], params: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None, json: Any = None, content: Any = None) -> httpx.Request:
        """As ``httpx.AsyncClient.build_request`` builds it (``timeout``: the request's timeout extension)."""
        origin, path = self._split(url)
        if origin is None or not (content is None or isinstance(content, bytes)) or (json is not None and content is not None):
            return httpx.Request(method, url, params=params, headers=self._merged(headers), json=json, content=content,
                                 extensions={"timeout": timeout})
        if json is not None:
            # As httpx encodes ``json=`` (httpx._content.encode_json).
            content = dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        raw = self._head(origin, headers, json is not None)
        if content or method.upper() in _BODY_METHODS:  # what httpx adds: a length for a body, 0 for an empty POST
            raw = [*raw, (b"Content-Length", str(len(content or b"")).encode("ascii"))]
        # ``stream=``: httpx adds no header of its own (all of them are in ``raw`` already).
        request = httpx.Request(method, origin.url(path, params), headers=raw, stream=httpx.ByteStream(content or b""),
                                extensions={"timeout": timeout})
        request.read()  # in memory already: ``request.content`` as with ``content=``
        return request

    def _merged(self, headers: Mapping[str, str] | None) -> httpx.Headers:
        merged = httpx.Headers(self._defaults)
        merged.update(headers or {})  # the request's own replace the client's (case-insensitive), as httpx merges
        return merged

    def _split(self, url: str) -> tuple[_Origin | None, str]:
        start = url.find("//")
        cut = url.find("/", start + 2) if start > 0 else -1
        if cut < 0 or not _plain(url[cut:]):
            return None, url
        origin, path = url[:cut], url[cut:]
        if origin not in self._origins:
            if len(self._origins) >= 64:  # one base URL per key in practice; bounded all the same
                self._origins.clear()
            self._origins[origin] = _origin_of(origin, path, None)
        return self._origins[origin], path

    def _head(self, origin: _Origin, headers: Mapping[str, str] | None, json: bool) -> list[tuple[bytes, bytes]]:
        key = (origin.host, json, *headers.items()) if headers else (origin.host, json)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= 64:  # a key's headers never change; bounded all the same
                self._heads.clear()
            merged = self._merged(headers)
            if json:
                merged.setdefault("Content-Type", "application/json")
            host = [] if "host" in merged else [(b"Host", origin.host)]  # first, as httpx puts it
            head = self._heads[key] = [*host, *merged.raw]
        return head
