"""The clients' HTTP sessions: the environment read once, unless a proxy needs its own rules."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.http import session, transport, uses_proxy


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"PATH": "/bin", "HTTPS_PROXY": ""}, False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, True),
        ({"http_proxy": "http://proxy:3128"}, True),
        ({"ALL_PROXY": "socks5://proxy:1080"}, True),
        ({"NO_PROXY": "localhost"}, False),
        ({"NO_PROXY": "localhost", "HTTP_PROXY": "http://proxy:3128"}, True),
    ],
)
def test_a_proxy_variable_is_recognised_in_either_case(
    environ: dict[str, str], expected: bool
) -> None:
    assert uses_proxy(environ) is expected


def test_without_a_proxy_the_environment_is_not_read_per_request() -> None:
    plain = session(environ={})

    assert plain.trust_env is False
    assert plain.verify is True


def test_without_a_proxy_a_ca_bundle_variable_is_still_honoured() -> None:
    environ = {"CURL_CA_BUNDLE": "/etc/curl.pem", "REQUESTS_CA_BUNDLE": "/etc/requests.pem"}

    assert session(environ=environ).verify == "/etc/requests.pem"
    assert session(environ={"CURL_CA_BUNDLE": "/etc/curl.pem"}).verify == "/etc/curl.pem"


def test_the_transport_verifies_with_the_ca_bundle_of_the_environment() -> None:
    # azure-core passes `verify` on each request, which would override the session's.
    built = transport(1, 1, environ={"REQUESTS_CA_BUNDLE": "/etc/private-ca.pem"})

    assert built.connection_config.verify == "/etc/private-ca.pem"
    assert transport(1, 1, environ={}).connection_config.verify is True


def test_with_a_proxy_requests_keeps_its_own_rules() -> None:
    proxied = session(environ={"HTTPS_PROXY": "http://proxy:3128"})

    assert proxied.trust_env is True


def test_the_pool_holds_as_many_connections_as_asked_and_never_retries() -> None:
    adapter = session(16, environ={}).get_adapter("https://account.queue.core.windows.net/")

    assert adapter._pool_maxsize == 16  # type: ignore[attr-defined]
    assert adapter.max_retries.total == 0  # type: ignore[attr-defined]


def test_the_transport_carries_the_timeouts_and_leaves_retries_to_the_sdk() -> None:
    built = transport(1.5, 2.5, 4, environ={})

    assert built.connection_config.timeout == 1.5
    assert built.connection_config.read_timeout == 2.5
    assert built.session is not None and built.session.trust_env is False
    adapter = built.session.get_adapter("https://account.table.core.windows.net/")
    assert adapter.max_retries.total is False


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None


@pytest.fixture
def proxy() -> Iterator[str]:
    """A local HTTP server standing in for a proxy: it records the request targets it gets."""
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_proxy_in_the_environment_is_used(proxy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a proxy variable in the process environment, as an operator would set it
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    # When a session built from that environment calls a host
    response = session().get("http://storage.example.invalid/queue", timeout=5)

    # Then the call went through the proxy (absolute-form target)
    assert response.status_code == 200
    assert _Recorder.seen == ["http://storage.example.invalid/queue"]
