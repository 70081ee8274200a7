"""A key's chatbot listing while loading the fleet: page by page, against servers we did not write.

Each page is one engine call with its own retries (a 5xx on page 4 sends page 4 again, not 1-3);
a chatbot shown on two pages (a server paging by offset while a chatbot is created) is one
chatbot; a server that repeats a cursor fails the listing instead of looping. The storm runs
against the emulator over real HTTP; the hostile pagers are ``httpx.MockTransport`` servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import generated_fleet as fleet
import httpx
from test_fleet_load_faults import write_manifest

from wizchat_management.emulator import EmulatorServer
from wizsync.engine import Executor, KeySpec
from wizsync.fleet.load import FetchFailed, tolerant_listing
from wizsync.manifest import Listed, Manifest, find_chatbot_id, load_manifest

KEY = "wpk_test_" + "l" * 32
BASE = "http://127.0.0.1:9"  # never dialled: the MockTransport answers


def listing(manifest: Manifest, specs: dict[str, KeySpec], **kw: Any) -> list[Listed] | FetchFailed:
    async def main() -> list[Listed] | FetchFailed:
        async with Executor(specs, **kw) as ex:
            return await tolerant_listing(ex, manifest, fleet.tenant(0), fleet.ENV)

    return asyncio.run(main())


def test_a_long_listing_through_a_storm_asks_for_each_page_until_it_answers_and_never_again(
    fast_backoff: None, tmp_path: Path
) -> None:
    """A listing is one engine call per page: a 5xx on page 4 of 5 sends page 4 again, not 1-3.

    Retried as one call, a listing of 10,000 chatbots (50 pages) through 5 % of 5xx answers failed
    92 % of its attempts, and every 429 on a late page sent the pages before it again."""
    n, pages = 1000, 5  # the SDK asks for pages of 200
    with EmulatorServer(seed=fleet.seed(n, 1), error_rate=0.4, fault_seed=3) as emu:
        write_manifest(tmp_path, emu.base_url, n, 1)
        manifest = load_manifest(tmp_path / "wizsync.yaml")
        listed = listing(manifest, {fleet.label(0): KeySpec(emu.keys[fleet.label(0)], emu.base_url)})
        statuses = [e["status"] for e in emu.requests(limit=100_000) if e["path"] == "/api/v1/chatbots"]
    assert not isinstance(listed, FetchFailed), listed
    assert sorted(c.id for c in listed) == sorted(fleet.chatbot_id(0, i) for i in range(n))
    assert statuses.count(200) == pages, statuses  # no page that answered was asked for again
    # The storm did hit the listing, after its first page had answered.
    assert any(s >= 500 for s in statuses[statuses.index(200):]), statuses


def chatbot(cid: str, name: str, revision: int = 1) -> dict[str, Any]:
    stamp = "2026-01-01T00:00:00Z"
    return {"id": cid, "name": name, "status": "active", "revision": revision, "createdAt": stamp, "updatedAt": stamp}


def pager(pages: dict[str | None, tuple[list[dict[str, Any]], str | None]]) -> Callable[[httpx.Request], httpx.Response]:
    """A server whose pages are ``pages[cursor] = (chatbots, next cursor)``."""
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/chatbots"
        data, after = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"data": data, "nextCursor": after})

    return handle


def mock_manifest(tmp_path: Path) -> Manifest:
    write_manifest(tmp_path, BASE, 2, 1)
    return load_manifest(tmp_path / "wizsync.yaml")


def test_a_chatbot_on_two_pages_of_a_shifting_listing_is_one_chatbot(tmp_path: Path) -> None:
    # Paging by offset, the server shifted "beta" onto page 2 (a chatbot was created at the front
    # between the two requests) and it was renamed in between: one chatbot, as the later page says.
    server = pager({None: ([chatbot("cb_a", "alpha"), chatbot("cb_b", "beta")], "p2"),
                    "p2": ([chatbot("cb_b", "beta-2", revision=2), chatbot("cb_c", "gamma")], None)})
    manifest = mock_manifest(tmp_path)
    listed = listing(manifest, {fleet.label(0): KeySpec(KEY, BASE)}, transport=httpx.MockTransport(server))
    assert not isinstance(listed, FetchFailed), listed
    assert [(c.id, c.name, c.revision) for c in listed] == [("cb_a", "alpha", 1), ("cb_b", "beta-2", 2), ("cb_c", "gamma", 1)]
    # Bound by name, the chatbot is found once (not "2 chatbots named ...").
    assert find_chatbot_id(manifest, listed, "gamma", fleet.tenant(0), fleet.ENV, ("chatbots", 0)) == "cb_c"


def test_a_server_that_repeats_a_cursor_fails_the_listing_instead_of_looping(tmp_path: Path) -> None:
    server = pager({None: ([chatbot("cb_a", "alpha")], "p2"), "p2": ([chatbot("cb_b", "beta")], "p2")})
    listed = listing(mock_manifest(tmp_path), {fleet.label(0): KeySpec(KEY, BASE)}, transport=httpx.MockTransport(server))
    assert isinstance(listed, FetchFailed), listed
    assert listed.error["code"] == "invalid_response" and "repeated cursor 'p2'" in listed.error["message"], listed


def test_a_server_whose_paging_never_ends_fails_the_listing_instead_of_looping(tmp_path: Path) -> None:
    """Every page a cursor never seen, never a chatbot not listed before (a cursor that embeds the
    time): the listing fails as a broken answer, after 100 such pages, instead of running forever."""
    sent: list[str | None] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params.get("cursor"))
        return httpx.Response(200, json={"data": [chatbot("cb_a", "alpha")], "nextCursor": f"t{len(sent)}"})

    listed = listing(mock_manifest(tmp_path), {fleet.label(0): KeySpec(KEY, BASE)}, transport=httpx.MockTransport(server))
    assert isinstance(listed, FetchFailed), listed
    assert listed.error["code"] == "invalid_response" and "paging does not end" in listed.error["message"], listed
    assert len(sent) == 101 and len(set(sent)) == 101  # each page asked for once: no retry of a broken answer
