"""The HTTP sessions of every client the product builds: pooled, with the environment read once.

With `trust_env` on, requests looks up the proxy variables, `~/.netrc` and the CA-bundle
variables again on every request: about a tenth of a worker's CPU per queue call. Unless a
proxy variable is set, a session here reads the CA bundle once and turns those per-request
lookups off; with a proxy variable set, requests keeps its own handling (proxies, `NO_PROXY`).
`.netrc` credentials are never wanted: every call authenticates with a shared key or a token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.util.retry import Retry

# Where requests itself looks for a CA bundle when trust_env is on, in its order.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def uses_proxy(environ: Mapping[str, str]) -> bool:
    """True if the environment names a proxy (`HTTPS_PROXY`, `http_proxy`, ...).

    `NO_PROXY` alone names none: it only exempts hosts from a proxy named elsewhere.
    """
    named = {name.lower() for name, value in environ.items() if value}
    return any(name.endswith("_proxy") and name != "no_proxy" for name in named)


def ca_bundle(environ: Mapping[str, str]) -> str | None:
    """The CA bundle the environment names, as requests would pick it, or None."""
    return next((environ[name] for name in CA_BUNDLE_VARIABLES if environ.get(name)), None)


def session(
    connections: int = DEFAULT_POOLSIZE,
    environ: Mapping[str, str] | None = None,
    max_retries: Retry | int = 0,
) -> requests.Session:
    """A session keeping up to `connections` connections per host.

    `max_retries` as requests' HTTPAdapter takes it: 0 (its default) never retries and
    raises requests' own errors.
    """
    environ = os.environ if environ is None else environ
    result = requests.Session()
    adapter = HTTPAdapter(pool_maxsize=connections, max_retries=max_retries)
    for prefix in ("http://", "https://"):
        result.mount(prefix, adapter)
    if not uses_proxy(environ):
        result.trust_env = False
        bundle = ca_bundle(environ)
        if bundle is not None:
            result.verify = bundle
    return result


def transport(
    connection_timeout_s: float,
    read_timeout_s: float,
    connections: int = DEFAULT_POOLSIZE,
    environ: Mapping[str, str] | None = None,
) -> RequestsTransport:
    """azure-core's requests transport over `session(connections)`, with its socket timeouts.

    A client given a transport does not pass its own timeouts on, so the transport holds them.
    As in azure-core's own session, urllib3 never retries: the SDK's retry policy does.
    https://learn.microsoft.com/python/api/azure-core/azure.core.pipeline.transport.requeststransport
    """
    environ = os.environ if environ is None else environ
    no_retries = Retry(total=False, redirect=False, raise_on_status=False)
    return RequestsTransport(
        session=session(connections, environ, no_retries),
        session_owner=True,  # closing the client closes the session
        connection_timeout=connection_timeout_s,
        read_timeout=read_timeout_s,
        # The transport passes `verify` on every request, which beats the session's own.
        connection_verify=ca_bundle(environ) or True,
    )
