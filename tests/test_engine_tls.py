"""The run's TLS context: the CA bundle is loaded only when a route reaches ``https://``.

Loading it costs every start tens of ms of CPU (issue 14's start-up); a run against the
emulator, or a plain-HTTP gateway on loopback, never opens TLS. What such a run holds instead
must fail closed: it trusts no CA, so no certificate would ever be accepted.
"""

from __future__ import annotations

import ssl

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
