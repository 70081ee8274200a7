"""The engine's requests are the ones httpx's own client would build: same URL, headers and body.

The engine builds the SDK's requests without httpx's general parsing (engine/wire.py). Whatever
the URL (odd base URLs, escaped ids, dot segments, queries that need escaping), the request that
goes out must equal what ``httpx.AsyncClient.build_request`` makes of the same arguments.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from wizchat_management import AsyncWizChatClient
from wizsync.engine import Executor, KeySpec, run
from wizsync.engine.wire import RequestBuilder

SDK_HEADERS = {"Authorization": "Bearer wpk_test_" + "k" * 30, "Accept": "application/json",
               "User-Agent": "wizchat-management-python/1.0"}
DOC = {"apiVersion": "wizchat.com/v1", "kind": "ChatbotConfig",
       "spec": {"core": {"temperature": 0.5, "systemPrompt": "Grüße, \"quoted\" & <tags>"}}}

URLS = [
    "http://127.0.0.1:8080/api/v1/chatbots/cb_1/apply",
    "https://www.wizchat.com/api/v1/chatbots/cb_1/config",
    "https://WWW.WizChat.COM:443/api/v1/chatbots",
    "http://localhost/prefix/api/v1/chatbots/cb%2F1%20x/config",
    "http://[::1]:9000/api/v1/chatbots/a.b~c-d_e",
    "http://user:secret@example.test/api/v1/chatbots/x",
    "http://example.test/api/v1/chatbots/../config",  # dot segment: httpx normalizes it away
    "http://example.test/api/v1/chatbots/./x",
    "http://example.test/api/v1/chatbots/ü",
    "http://example.test/api/v1/chatbots/a b",
    "http://example.test/api/v1/chatbots/a?b",
    "http://example.test/api/v1/chatbots/%zz",
    "http://example.test",
]
PARAMS: list[Any] = [
    None, {}, {"limit": 200}, {"limit": 200, "cursor": "abc=="}, {"cursor": "a/b+c d&e=f"},
    {"dryRun": "true", "prune": "false"}, {"flag": True}, {"x": None}, {"n": 1.5},
]


_CLIENT = httpx.AsyncClient()  # builds requests only: nothing is sent


def _reference(method: str, url: str, **kwargs: Any) -> httpx.Request:
    return _CLIENT.build_request(method, url, **kwargs)


def _same(ours: httpx.Request, theirs: httpx.Request) -> None:
    assert ours.method == theirs.method
    assert ours.url == theirs.url and str(ours.url) == str(theirs.url)
    assert ours.url.raw_path == theirs.url.raw_path and ours.url.netloc == theirs.url.netloc
    assert sorted(ours.headers.multi_items()) == sorted(theirs.headers.multi_items())
    ours_body, theirs_body = ours.read(), theirs.read()
    if theirs.headers.get("content-type") == "application/json":  # the same document (httpx's spacing may differ)
        assert json.loads(ours_body) == json.loads(theirs_body)
    else:
        assert ours_body == theirs_body
    assert ours.extensions == theirs.extensions


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("params", PARAMS)
def test_a_get_equals_httpx_own(url: str, params: Any) -> None:
    builder = RequestBuilder(_CLIENT.headers)
    timeout = httpx.Timeout(5.0).as_dict()
    for _ in range(2):  # the first request of an origin and one after it (the origin's parse reused)
        _same(builder.build("GET", url, timeout=timeout, params=params, headers=SDK_HEADERS),
              _reference("GET", url, params=params, headers=SDK_HEADERS, timeout=5.0))


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("body", [{"json": DOC}, {"content": b"raw bytes"}, {}])
def test_a_post_equals_httpx_own(url: str, body: dict[str, Any]) -> None:
    builder = RequestBuilder(_CLIENT.headers)
    timeout = httpx.Timeout(5.0).as_dict()
    params = {"dryRun": "true", "prune": "false"}
    for _ in range(2):
        _same(builder.build("POST", url, timeout=timeout, params=params, headers=SDK_HEADERS, **body),
              _reference("POST", url, params=params, headers=SDK_HEADERS, timeout=5.0, **body))


def test_the_sdk_headers_replace_the_clients_own_and_none_is_sent_twice() -> None:
    """One Accept and one User-Agent (the SDK's), as a plain httpx client sends them."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"chatbotId": "cb_1", "dryRun": True, "revision": 1, "applied": [],
                                         "failed": None, "plan": {"summary": {"create": 0, "update": 0, "delete": 0,
                                                                               "noop": 0}, "operations": []}})

    async def main() -> None:
        async with Executor({"acme/staging": KeySpec(SDK_HEADERS["Authorization"][7:], "http://wizchat.test")},
                            transport=httpx.MockTransport(answer)) as ex:
            await ex.call("acme/staging", lambda c: c.apply_config("cb_1", DOC, dry_run=True))

    run(main())
    plain = AsyncWizChatClient(SDK_HEADERS["Authorization"][7:], base_url="http://wizchat.test")
    expected = plain._client.build_request("POST", "http://wizchat.test/api/v1/chatbots/cb_1/apply",
                                           params={"dryRun": "true"}, headers=plain._headers(), json=DOC)
    (request,) = seen
    assert [k for k, _ in request.headers.multi_items()].count("accept") == 1
    assert [k for k, _ in request.headers.multi_items()].count("user-agent") == 1
    _same(request, expected)


@pytest.mark.parametrize("url", URLS[:6])
def test_the_sdks_urls_take_the_built_path_the_comparisons_above_cover(url: str) -> None:
    """Plain URLs (every URL the SDK builds) reuse the origin's parse; the rest are httpx's own."""
    origin, _ = RequestBuilder(_CLIENT.headers)._split(url)
    assert origin is not None


@pytest.mark.parametrize("url", URLS[6:])
def test_urls_httpx_would_rewrite_are_left_to_httpx(url: str) -> None:
    origin, _ = RequestBuilder(_CLIENT.headers)._split(url)
    assert origin is None


@pytest.mark.parametrize(("method", "query", "read_only"), [
    ("GET", "limit=200", True), ("POST", "dryRun=true", True), ("POST", "prune=false&dryRun=true", True),
    ("POST", "dryRun=false&dryRun=true", False), ("POST", "xdryRun=true", False), ("POST", "", False),
    ("POST", "dryRun=True", False),
])
def test_a_request_is_read_only_as_its_first_dry_run_parameter_says(method: str, query: str, read_only: bool) -> None:
    from wizsync.engine.transport import is_read_only

    request = httpx.Request(method, "http://wizchat.test/api/v1/chatbots/cb_1/apply" + (f"?{query}" if query else ""))
    assert is_read_only(request) is read_only
    if method == "POST" and query.count("dryRun") == 1:  # httpx's own reading of the same query agrees
        assert read_only is (request.url.params.get("dryRun") == "true")


def test_the_limiter_is_given_the_pacing_headers_as_httpx_reads_them() -> None:
    from wizsync.engine.transport import pacing_headers

    headers = httpx.Headers([(b"Content-Type", b"application/json"), (b"X-RateLimit-Limit", b"100"),
                             (b"x-ratelimit-remaining", b"99"), (b"X-RateLimit-Reset", b"1.5"), (b"Retry-After", b"2"),
                             (b"retry-after", b"3"), (b"X-Request-Id", b"req_1")])
    expected = {k: v for k, v in headers.items()
                if k in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after")}
    assert pacing_headers(headers) == expected == {"x-ratelimit-limit": "100", "x-ratelimit-remaining": "99",
                                                   "x-ratelimit-reset": "1.5", "retry-after": "2, 3"}


def test_the_drafts_rate_limit_headers_reach_the_limiter_too() -> None:
    from wizsync.engine.transport import pacing_headers

    headers = httpx.Headers([(b"RateLimit-Limit", b"10, 10;w=1"), (b"RateLimit-Remaining", b"4"),
                             (b"RateLimit-Reset", b"1"), (b"RateLimit", b"limit=10, remaining=4, reset=1"),
                             (b"RateLimit-Policy", b"10;w=1"), (b"Server", b"gateway")])
    assert pacing_headers(headers) == {"ratelimit-limit": "10, 10;w=1", "ratelimit-remaining": "4",
                                       "ratelimit-reset": "1", "ratelimit": "limit=10, remaining=4, reset=1"}
