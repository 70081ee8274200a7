"""Bad answers from the server: a tiny HTTP server on 127.0.0.1 that breaks the contract in one way
per chatbot (malformed JSON, wrong types, a huge body, 3xx, persistent 5xx, a Retry-After of an
hour, a truncated body, HTML, an empty 200...). `wizsync plan` (a real process) must, for every
one of them: fail that chatbot with a clear, short message naming what was wrong, plan the
well-behaved chatbot beside them, exit 1, print no traceback and never show the API key.

A listing (`discover`) that answers garbage fails the run before any dry-run, naming the tenant.
The input-side corpus (manifests, templates, file sources, arguments) lives in
test_manifest_corpus.py, test_bad_input_no_requests.py and test_bad_cli_input.py.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

KEY = "wpk_test_badserver0123456789abcdef"
KEY_GLOBEX = "wpk_test_badserverglobex456789abcd"  # each tenant its own key (targets are pinned)
GOOD_RESULT = {
    "chatbotId": "cb_good", "dryRun": True, "revision": 3,
    "plan": {"summary": {"create": 0, "update": 0, "delete": 0, "noop": 1},
             "operations": [{"op": "noop", "section": "core", "key": None, "changes": []}]},
    "applied": [], "failed": None,
}
HUGE = 40 * 1024 * 1024  # a 40 MB answer

# chatbot id -> (what the server does, fragments the chatbot's error must contain)
CASES: dict[str, tuple[str, list[str]]] = {
    "cb_malformed_json": ("200 with a body that is not JSON", ["not a valid ApplyResult"]),
    "cb_wrong_types": ("200 with JSON of the wrong types", ["not a valid ApplyResult"]),
    "cb_json_array": ("200 with a JSON array", ["not a valid ApplyResult"]),
    "cb_empty_200": ("200 with an empty body", ["not a valid ApplyResult"]),
    "cb_html_502": ("502 with an HTML page", ["502"]),
    "cb_persistent_500": ("500 every time", ["internal_error"]),
    "cb_redirect_301": ("301 to another host", ["301"]),
    "cb_redirect_307": ("307 to the same path", ["307"]),
    "cb_retry_after_hour": ("429 with Retry-After: 3600", ["rate_limited"]),
    "cb_huge_body": ("200 with a 40 MB JSON body", ["larger than the 16 MiB", "not read"]),
    "cb_huge_chunked": ("200 with a 40 MB chunked body (no Content-Length)", ["larger than the 16 MiB"]),
    "cb_gzip_bomb": ("200 with 40 KB of gzip that inflates to 40 MB", ["larger than the 16 MiB"]),
    "cb_truncated": ("200 whose body is shorter than its Content-Length", ["no answer"]),
    "cb_error_wrong_shape": ("400 whose error body has the wrong types", ["400"]),
    "cb_204": ("204 No Content", ["not a valid ApplyResult"]),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: dict[str, str] | None = None,
              length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/api/v1/chatbots?") or self.path == "/api/v1/chatbots":
            if not self.server.good_listing:  # type: ignore[attr-defined]
                self._send(200, b'{"data": "not a list", "nextCursor": 7}')
                return
            # A run lists each tenant to check its key owns the chatbots (targets are pinned).
            globex = self.headers.get("Authorization") == f"Bearer {KEY_GLOBEX}"
            ids = [i for i in ["cb_good", *CASES] if (tenant_of(i) == "globex") == globex]
            data = [{"id": i, "name": f"bot-{i[3:].replace('_', '-')}", "status": "active", "revision": 3,
                     "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"} for i in ids]
            self._send(200, json.dumps({"data": data, "nextCursor": None}).encode())
        else:
            self._send(404, json.dumps({"error": {"code": "not_found", "message": "no such chatbot"}}).encode())

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        chatbot = self.path.split("/")[4] if self.path.count("/") >= 4 else ""
        err = lambda code, msg: json.dumps({"error": {"code": code, "message": msg, "details": None}}).encode()  # noqa: E731
        if chatbot == "cb_good":
            self._send(200, json.dumps(GOOD_RESULT).encode())
        elif chatbot == "cb_malformed_json":
            self._send(200, b'{"chatbotId": "cb_malformed_json", "plan": {')
        elif chatbot == "cb_wrong_types":
            self._send(200, json.dumps({**GOOD_RESULT, "revision": "three", "plan": {"summary": [1, 2]}}).encode())
        elif chatbot == "cb_json_array":
            self._send(200, b"[1, 2, 3]")
        elif chatbot == "cb_empty_200":
            self._send(200, b"")
        elif chatbot == "cb_html_502":
            self._send(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        elif chatbot == "cb_persistent_500":
            self._send(500, err("internal_error", "the server broke"))
        elif chatbot == "cb_redirect_301":
            self._send(301, b"", headers={"Location": "http://198.51.100.1/elsewhere"})
        elif chatbot == "cb_redirect_307":
            self._send(307, b"", headers={"Location": self.path})
        elif chatbot == "cb_retry_after_hour":
            self._send(429, json.dumps({"error": {"code": "rate_limited", "message": "slow down",
                                                  "details": {"retryAfterMs": 3_600_000}}}).encode(),
                       headers={"Retry-After": "3600"})
        elif chatbot == "cb_huge_body":
            self._send(200, b'{"junk": "' + b"x" * HUGE + b'"}')
        elif chatbot in ("cb_huge_chunked", "cb_gzip_bomb"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            if chatbot == "cb_gzip_bomb":
                self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            body = gzip.compress(b"x" * HUGE) if chatbot == "cb_gzip_bomb" else b"x" * HUGE
            try:
                for i in range(0, len(body), 1 << 20):
                    chunk = body[i : i + (1 << 20)]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:  # wizsync stops reading at its cap and drops the connection
                self.close_connection = True
        elif chatbot == "cb_truncated":
            self._send(200, json.dumps(GOOD_RESULT).encode()[:40], length=len(json.dumps(GOOD_RESULT)))
            self.close_connection = True
        elif chatbot == "cb_error_wrong_shape":
            self._send(400, json.dumps({"error": {"code": 42, "message": ["not", "a", "string"]}}).encode())
        elif chatbot == "cb_204":
            self.send_response(204)
            self.end_headers()
        else:
            self._send(404, err("not_found", "no such chatbot"))


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up on a truncated answer is the point: no traceback on the test process's
        # stderr, where an in-process wizsync run (tests/inprocess.py) would take it for its own.
        pass


def _serve(good_listing: bool) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.good_listing = good_listing  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def bad_server() -> Iterator[str]:
    """Every chatbot's answer is bad in its own way; the tenants' listings are good."""
    yield from _serve(good_listing=True)


@pytest.fixture(scope="module")
def bad_listing_server() -> Iterator[str]:
    yield from _serve(good_listing=False)


def tenant_of(chatbot_id: str) -> str:
    # A Retry-After beyond what wizsync waits (60 s) fails that call and holds its KEY for 60 s:
    # that chatbot gets a key of its own, so the others are not held up.
    return "globex" if chatbot_id == "cb_retry_after_hour" else "acme"


def manifest(base: str, ids: list[str], *, discover: bool = False) -> str:
    lines = ["version: 1", "environments:", f'  staging: {{baseUrl: "{base}"}}', "tenants:",
             "  acme: {keys: {staging: {env: WIZCHAT_ACME_STAGING_KEY}}}",
             "  globex: {keys: {staging: {env: WIZCHAT_GLOBEX_STAGING_KEY}}}",
             "defaults:", "  sections: [core]", "chatbots:"]
    if discover:
        lines += ["  - discover: {tenant: acme}", "    source: {self: true}"]
    lines += [f"  - {{name: bot-{i[3:].replace('_', '-')}, tenant: {tenant_of(i)}, ids: {{staging: {i}}}, "
              "source: {file: bot.yaml}}" for i in ids]
    return "\n".join(lines) + "\n"


def check_clean(proc: Any) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    assert KEY not in proc.stdout + proc.stderr and KEY_GLOBEX not in proc.stdout + proc.stderr


def test_every_bad_answer_fails_its_chatbot_clearly_and_the_good_one_is_planned(
    bad_server: str, fast_backoff: None, secret_scan: Any, tmp_path: Path
) -> None:
    secret_scan.register("api key", KEY)
    secret_scan.register("globex api key", KEY_GLOBEX)
    (tmp_path / "bot.yaml").write_text("spec:\n  core: {temperature: 0.5}\n")
    (tmp_path / "wizsync.yaml").write_text(manifest(bad_server, ["cb_good", *CASES]))
    journal = tmp_path / "journal.db"
    secret_scan.watch_journal(journal)
    env = {"WIZCHAT_ACME_STAGING_KEY": KEY, "WIZCHAT_GLOBEX_STAGING_KEY": KEY_GLOBEX}
    proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--json", "--journal", str(journal)],
                           cwd=tmp_path, env=env, timeout=90)
    check_clean(proc)
    doc = json.loads(proc.stdout)
    by_id = {c["chatbot_id"]: c for c in doc["chatbots"]}
    assert by_id["cb_good"]["error"] is None and by_id["cb_good"]["summary"]["noop"] == 1
    for chatbot_id, (what, fragments) in CASES.items():
        error = by_id[chatbot_id]["error"]
        assert error is not None, f"{what}: reported as success"
        message = f"{error['code']} {error['message']}"
        for fragment in fragments:
            assert fragment in message, f"{what}: {fragment!r} not in {message!r}"
        assert len(message) < 600, f"{what}: the message is not short: {len(message)} chars"
        assert "x" * 100 not in message
    # the human report says the same without a traceback
    human = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--no-color", "--journal", str(journal)],
                            cwd=tmp_path, env=env, timeout=90)
    check_clean(human)
    for chatbot_id in CASES:
        assert f"bot-{chatbot_id[3:].replace('_', '-')}" in human.stdout + human.stderr, chatbot_id
    secret_scan.check()


def test_a_listing_of_the_wrong_shape_fails_that_keys_chatbots_naming_the_tenant(bad_listing_server: str, secret_scan: Any, tmp_path: Path) -> None:
    secret_scan.register("api key", KEY)
    secret_scan.register("globex api key", KEY_GLOBEX)
    (tmp_path / "bot.yaml").write_text("spec:\n  core: {temperature: 0.5}\n")
    (tmp_path / "wizsync.yaml").write_text(manifest(bad_listing_server, ["cb_good"], discover=True))
    proc = secret_scan.run(["plan", "wizsync.yaml", "--env", "staging", "--journal", str(tmp_path / "j.db")],
                           cwd=tmp_path, env={"WIZCHAT_ACME_STAGING_KEY": KEY, "WIZCHAT_GLOBEX_STAGING_KEY": KEY_GLOBEX}, timeout=60)
    check_clean(proc)
    # The listing that proves acme's key is unusable: that key is unproven, so each of its
    # chatbots (the discover entry and the one listed by id) fails with the server's error.
    failed = [line for line in proc.stderr.splitlines() if " failed loading the fleet: " in line]
    assert len(failed) == 2 and any("discover:acme/*" in line for line in failed), proc.stderr
    assert all("proving the target acme/staging (list_chatbots" in line and "not a valid ChatbotList" in line
               for line in failed), proc.stderr
