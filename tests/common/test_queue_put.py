"""Put Message on urllib3: which path a queue takes, and each way a put can fail."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import HttpTransport
from azure.storage.queue import QueueClient

from common.azure_clients import ClientTimeouts
from common.azure_queue import AzureQueue
from common.queue import QueueUnavailable
from common.queue_put import PutRefused, PutUnreachable, SharedKey, rest_put_for
from common.settings import StorageSettings
from common.tokens import TokenUnavailable
from tests.storage_server import BUSY, GARBLED, OK, UNAUTHORIZED, storage_server
from tools.azurite import ACCOUNT_KEY, ACCOUNT_NAME, free_port

TIMEOUTS = ClientTimeouts(connection_timeout_s=1.0, read_timeout_s=1.0, retries=1)


@dataclass
class _Client:
    """What `rest_put_for` reads of a QueueClient."""

    url: str
    credential: Any
    api_version: str = "2026-10-06"


@dataclass
class _AccountKey:
    account_name: str
    account_key: str


class _FailingCredential:
    def get_token(self, *scopes: str) -> AccessToken:
        raise ClientAuthenticationError("the identity endpoint is unreachable")


def _queue_on(connection_string: str, caplog: pytest.LogCaptureFixture) -> AzureQueue:
    with caplog.at_level(logging.INFO, logger="common.azure_queue"):
        return AzureQueue(StorageSettings(connection_string, None, "hooks"), TIMEOUTS)


def test_an_account_key_puts_on_urllib3_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with storage_server(OK) as server:
        queue = _queue_on(server.connection_string, caplog)
        message_id = queue.send("text")
        queue.close()

    assert message_id == "stub-message"
    assert caplog.messages == [
        "queue hooks: messages are put on urllib3 (signed with the account key)"
    ]


def test_with_a_proxy_set_the_sdk_puts(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with storage_server(OK) as server:
        queue = _queue_on(server.connection_string, caplog)
        queue.close()

    assert caplog.messages == [
        "queue hooks: messages are put through the SDK "
        "(a proxy is set, which the SDK's transport honours)"
    ]


@pytest.mark.parametrize(
    ("client", "reason"),
    [
        (
            _Client("http://127.0.0.1:1/acct/hooks", _AccountKey("acct", "not base64!")),
            "the account key is not base64",
        ),
        (
            _Client("http://127.0.0.1:1/acct/hooks", _FailingCredential()),
            "the credential is neither an account key nor a token credential over HTTPS",
        ),
        (
            _Client("https://127.0.0.1:1/acct/hooks?sv=2024-01-01&sig=x", None),
            "the credential is neither an account key nor a token credential over HTTPS",
        ),
    ],
    ids=["key-not-base64", "token-over-http", "sas"],
)
def test_credentials_it_cannot_use_leave_the_put_to_the_sdk(client: _Client, reason: str) -> None:
    assert rest_put_for(client, TIMEOUTS, 1, environ={}) == (None, reason)


@pytest.mark.parametrize(
    "first",
    [BUSY, UNAUTHORIZED],
    ids=["busy-is-tried-again", "401-goes-through-the-sdk-which-answers-challenges"],
)
def test_a_first_answer_worth_another_attempt_then_succeeds(first: str) -> None:
    with storage_server(first, OK) as server:
        queue = AzureQueue(StorageSettings(server.connection_string, None, "hooks"), TIMEOUTS)
        message_id = queue.send("text")
        queue.close()

    assert (message_id, server.requests) == ("stub-message", 2)


def test_a_queue_busy_past_its_retries_is_unavailable_with_the_service_s_code() -> None:
    with storage_server(BUSY) as server:
        queue = AzureQueue(StorageSettings(server.connection_string, None, "hooks"), TIMEOUTS)
        with pytest.raises(QueueUnavailable) as raised:
            queue.send("text")
        queue.close()

    assert str(raised.value) == "queue hooks answered 503 ServerBusy"
    assert server.requests == 1 + TIMEOUTS.retries


def test_a_refusal_is_not_tried_again() -> None:
    # A 404 without an error code is no queue endpoint at all: asking again changes nothing.
    with storage_server("not_found") as server:
        queue = AzureQueue(StorageSettings(server.connection_string, None, "hooks"), TIMEOUTS)
        with pytest.raises(QueueUnavailable) as raised:
            queue.send("text")
        queue.close()

    assert str(raised.value) == "queue hooks answered 404 The specified resource does not exist."
    assert server.requests == 1


def test_an_unreadable_answer_is_a_refusal_naming_it() -> None:
    with storage_server(GARBLED) as server:
        put, _ = rest_put_for(_client_of(server.connection_string), TIMEOUTS, 1, environ={})
        assert put is not None
        with pytest.raises(PutRefused) as raised:
            put.put("text", -1)
        put.close()

    assert raised.value.status == 201
    assert raised.value.reason.startswith("unreadable answer")


def test_nothing_listening_is_unreachable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/{ACCOUNT_NAME}/hooks"
    put, _ = rest_put_for(_Client(url, _AccountKey(ACCOUNT_NAME, ACCOUNT_KEY)), TIMEOUTS, 1, {})
    assert put is not None

    with pytest.raises(PutUnreachable) as raised:
        put.put("text", -1)

    assert str(raised.value).startswith("NewConnectionError: ")


def test_a_credential_that_fails_is_described_as_the_sdk_describes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"https://127.0.0.1:{free_port()}/{ACCOUNT_NAME}/hooks"
    put, reason = rest_put_for(_Client(url, _FailingCredential()), TIMEOUTS, 1, environ={})
    assert put is not None
    assert reason == "signed with Entra ID tokens"
    with pytest.raises(TokenUnavailable):
        put.put("text", -1)

    with storage_server(OK) as server:
        queue = AzureQueue(StorageSettings(server.connection_string, None, "hooks"), TIMEOUTS)
        monkeypatch.setattr(queue, "_put", put)
        with pytest.raises(QueueUnavailable) as raised:
            queue.send("text")
        queue.close()

    assert str(raised.value).startswith("queue hooks failed: no usable Azure credential")
    assert server.requests == 0


def _client_of(connection_string: str) -> _Client:
    endpoint = connection_string.split("QueueEndpoint=")[1].rstrip(";")
    return _Client(f"{endpoint}/hooks", _AccountKey(ACCOUNT_NAME, ACCOUNT_KEY))


class _Recorded(Exception):
    """Stops the SDK's pipeline once its request is built and signed."""


class _Recorder(HttpTransport[Any, Any]):
    def __init__(self) -> None:
        self.request: Any = None

    def send(self, request: Any, **kwargs: Any) -> Any:
        self.request = request
        raise _Recorded

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *args: object) -> None: ...


@pytest.mark.parametrize(
    "url",
    ["https://acct.queue.core.windows.net", f"http://127.0.0.1:10001/{ACCOUNT_NAME}"],
    ids=["azure", "emulator-path-style"],
)
def test_the_signature_is_the_one_the_sdk_computes(url: str) -> None:
    # Given the request the SDK builds and signs for a put on Azure's URL style and Azurite's,
    account = "acct" if "windows" in url else ACCOUNT_NAME
    recorder = _Recorder()
    client = QueueClient(
        url,
        "my-queue",
        credential={"account_name": account, "account_key": ACCOUNT_KEY},
        transport=recorder,
    )
    with pytest.raises(_Recorded):
        client.send_message("text", time_to_live=-1)
    sent = recorder.request
    ms_headers = {k.lower(): v for k, v in sent.headers.items() if k.lower().startswith("x-ms-")}
    query = urlsplit(sent.url).query
    path = urlsplit(sent.url).path

    # when the same request is signed here,
    ours = SharedKey(account, ACCOUNT_KEY).authorization(len(sent.body), ms_headers, path, query)

    # then the two Authorization values are the same.
    assert ours == sent.headers["Authorization"]


def test_a_key_with_whitespace_signs_as_the_sdk_decodes_it() -> None:
    wrapped = ACCOUNT_KEY[:40] + "\n" + ACCOUNT_KEY[40:]
    args = (100, {"x-ms-date": "d", "x-ms-version": "v"}, "/acct/q/messages", "messagettl=-1")

    assert SharedKey("acct", wrapped).authorization(*args) == SharedKey(
        "acct", ACCOUNT_KEY
    ).authorization(*args)


def test_a_ca_bundle_folder_is_used_as_a_folder(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("")
    url = f"https://127.0.0.1:1/{ACCOUNT_NAME}/hooks"
    client = _Client(url, _AccountKey(ACCOUNT_NAME, ACCOUNT_KEY))

    for where, expected in ((tmp_path, "ca_cert_dir"), (bundle, "ca_certs")):
        put, _ = rest_put_for(client, TIMEOUTS, 1, {"REQUESTS_CA_BUNDLE": str(where)})
        assert put is not None
        assert getattr(put._pool, expected) == str(where)
