"""The run's TLS context: the CA bundle is loaded only when a route reaches ``https://``.

Loading it costs every start tens of ms of CPU (issue 14's start-up); a run against the
emulator, or a plain-HTTP gateway on loopback, never opens TLS. What such a run holds instead
must fail closed: it trusts no CA, so no certificate would ever be accepted.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys

import pytest

from wizsync.engine.transport import tls_context


@pytest.mark.parametrize(("urls", "loads_cas"), [
    (["http://127.0.0.1:8080"], False),
    (["http://127.0.0.1:8080", "http://localhost:9"], False),
    (["https://api.wizchat.io"], True),
    (["http://127.0.0.1:8080", "https://api.wizchat.io"], True),  # one pool per proxy: any https needs it
    (["http://api.test:8080", "https://proxy.corp:3128"], True),  # TLS to the proxy itself
])
def test_the_ca_bundle_is_loaded_only_for_a_run_that_reaches_https(urls: list[str], loads_cas: bool) -> None:
    context = tls_context(urls)
    assert (context.cert_store_stats()["x509_ca"] > 0) is loads_cas
    # Either way it verifies: certificates required, host names checked.
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


_IMPORT_ALONE = """
import json, ssl
before = ssl.create_default_context().cert_store_stats()["x509_ca"]
import wizsync.engine._aiohttp  # the aiohttp backend, imported as a run imports it
import aiohttp.connector
print(json.dumps({
    "before": before,
    "after": ssl.create_default_context().cert_store_stats()["x509_ca"],
    "aiohttp_default": aiohttp.connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
    "aiohttp_default_verifies": aiohttp.connector._SSL_CONTEXT_VERIFIED.verify_mode == ssl.CERT_REQUIRED,
}))
"""


def test_importing_the_aiohttp_backend_loads_no_ca_store_and_leaves_tls_as_it_was() -> None:
    # A fresh interpreter: aiohttp's import-time contexts are built once per process.
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALONE], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    # The contexts aiohttp makes for itself (wizsync never hands them a connection) trust no
    # CA, and still require a certificate: unused, and closed were they used ...
    assert seen["aiohttp_default"] == 0 and seen["aiohttp_default_verifies"]
    # ... while every context made after the import loads the system's CAs as before it.
    assert seen["after"] == seen["before"]
