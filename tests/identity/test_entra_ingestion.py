"""Entra ID ingestion: the authentication string, the token cache, the sink on a strict stand-in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential

from backend.settings import EntraAuthentication, load_backend_settings, parse_authentication
from backend.sinks.appinsights import AppInsightsSink
from backend.sinks.base import ExportResult
from backend.sinks.entra import PURPOSE, scope_for
from backend.telemetry.item import TelemetryItem
from common.settings import EXIT_CONFIG, SettingsError
from common.tokens import RETRY_INTERVAL_S, BearerToken, TokenUnavailable
from tests.identity.fixtures import BACKEND_CLIENT_ID, FRONTEND_CLIENT_ID, IDENTITIES
from tests.identity.token_server import ISSUER, TokenServer, claims_of, unsecured_jwt
from tools.azurite import PROJECT_ROOT
from tools.ingestion_server import IngestionServer

GUID = "b7e2c8a4-3f61-4d0b-8e95-6a2f1c9d4e73"
MONITOR_RESOURCE = "https://monitor.azure.com/"


@pytest.mark.parametrize(
    ("value", "client_id"),
    [
        ("Authorization=AAD", None),
        ("Authorization=AAD;", None),
        (" authorization=aad ", None),
        (f"Authorization=AAD;ClientId={GUID}", GUID),
        (f"Authorization=AAD;ClientId={GUID.upper()};", GUID),
    ],
)
def test_the_authentication_string_is_read_as_application_insights_spells_it(
    value: str, client_id: str | None
) -> None:
    assert parse_authentication(value) == EntraAuthentication(client_id)


@pytest.mark.parametrize(
    "value",
    [
        "AAD",
        "Authorization=Key",
        "Authorization=AAD;ClientId=",
        "Authorization=AAD;ClientId=not-a-guid",
        f"Authorization=AAD;ClientId={GUID};Extra=1",
        f"ClientId={GUID};Authorization=AAD",
    ],
)
def test_a_malformed_authentication_string_stops_the_backend_naming_the_variable(
    value: str,
) -> None:
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "BACKEND_APPLICATIONINSIGHTS_AUTHENTICATION_STRING": value,
    }

    with pytest.raises(SettingsError) as caught:
        load_backend_settings(env)

    assert str(caught.value) == (
        "BACKEND_APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be 'Authorization=AAD' "
        "or 'Authorization=AAD;ClientId=<guid>'"
    )


def test_the_settings_carry_the_identity_of_the_authentication_string() -> None:
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"Authorization=AAD;ClientId={GUID}",
    }

    assert load_backend_settings(env).appinsights_authentication == EntraAuthentication(GUID)
    assert (
        load_backend_settings({"AZURE_STORAGE_ACCOUNT_NAME": "acct"}).appinsights_authentication
        is None
    )


def test_python_m_backend_exits_78_with_one_line_on_a_malformed_authentication_string(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if "APPLICATIONINSIGHTS" not in key and "AZURE_STORAGE" not in key
    }
    env |= {
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "TELEMETRY_SINK": "file",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=Entra",
    }

    done = subprocess.run(
        [sys.executable, "-m", "backend"],
        cwd=str(tmp_path),
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == EXIT_CONFIG
    assert done.stderr.splitlines() == [
        "github-telemetry backend cannot start: APPLICATIONINSIGHTS_AUTHENTICATION_STRING must "
        "be 'Authorization=AAD' or 'Authorization=AAD;ClientId=<guid>'"
    ]


class Credential:
    """A credential that hands out numbered tokens living `lifetime_s`, or fails when told."""

    def __init__(self, clock: Clock, lifetime_s: float = 3600.0) -> None:
        self.clock = clock
        self.lifetime_s = lifetime_s
        self.scopes: list[tuple[str, ...]] = []
        self.failing = False

    def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.append(scopes)
        if self.failing:
            raise ClientAuthenticationError("the identity endpoint is unreachable\nmore detail")
        return AccessToken(f"t{len(self.scopes)}", int(self.clock.now + self.lifetime_s))


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_is_reused_until_five_minutes_before_it_expires() -> None:
    clock = Clock()
    credential = Credential(clock)
    token = BearerToken(credential, scope_for(None), PURPOSE, clock=clock)

    first = [token.header() for _ in range(3)]
    clock.now += 3600 - 300 - 1
    still = token.header()
    clock.now += 1
    refreshed = token.header()

    assert first == ["Bearer t1"] * 3
    assert (still, refreshed) == ("Bearer t1", "Bearer t2")
    assert credential.scopes == [("https://monitor.azure.com//.default",)] * 2


def test_a_short_lived_token_is_refreshed_half_way_through_its_life() -> None:
    clock = Clock()
    credential = Credential(clock, lifetime_s=120)
    token = BearerToken(credential, scope_for(None), PURPOSE, clock=clock)

    token.header()
    clock.now += 59
    before = token.header()
    clock.now += 1

    assert (before, token.header()) == ("Bearer t1", "Bearer t2")


def test_a_failed_refresh_keeps_the_valid_token_and_is_tried_again_after_an_interval() -> None:
    clock = Clock()
    credential = Credential(clock)
    token = BearerToken(credential, scope_for(None), PURPOSE, clock=clock)
    token.header()
    clock.now += 3400
    credential.failing = True

    kept = [token.header(), token.header()]
    clock.now += RETRY_INTERVAL_S
    again = token.header()
    credential.failing = False
    clock.now += RETRY_INTERVAL_S

    assert (kept, again) == (["Bearer t1"] * 2, "Bearer t1")
    assert token.header() == "Bearer t4"
    assert len(credential.scopes) == 4  # the first fetch, two failed refreshes, the good one


def test_without_a_valid_token_a_failure_is_token_unavailable_with_its_cause() -> None:
    clock = Clock()
    credential = Credential(clock)
    credential.failing = True

    with pytest.raises(TokenUnavailable) as caught:
        BearerToken(credential, scope_for(None), PURPOSE, clock=clock).header()

    assert str(caught.value) == (
        "no Entra ID token for Application Insights "
        "(ClientAuthenticationError: the identity endpoint is unreachable)"
    )


def test_a_connection_string_s_audience_makes_the_scope() -> None:
    assert scope_for(None) == "https://monitor.azure.com//.default"
    assert scope_for("https://monitor.azure.us/") == "https://monitor.azure.us//.default"


def events(count: int) -> list[TelemetryItem]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return [
        TelemetryItem(name="WorkflowJob", timestamp=at, measurements={"n": float(n)})
        for n in range(count)
    ]


@pytest.fixture
def entra_ingestion() -> Iterator[IngestionServer]:
    """The stand-in with local authentication off, where only the backend's identity publishes."""
    server = IngestionServer().start()
    server.require_entra_id([IDENTITIES[BACKEND_CLIENT_ID]])
    try:
        yield server
    finally:
        server.stop()


def test_the_backend_s_identity_gets_a_monitor_token_once_and_every_item_is_accepted(
    managed_identity: TokenServer, entra_ingestion: IngestionServer
) -> None:
    credential = ManagedIdentityCredential(client_id=BACKEND_CLIENT_ID)
    sink = AppInsightsSink(entra_ingestion.connection_string, credential=credential)

    results = [sink.export(events(2)), sink.export(events(3))]
    sink.close()

    assert results == [ExportResult.all_accepted(2), ExportResult.all_accepted(3)]
    monitor = [issued for issued in managed_identity.issued if issued.resource == MONITOR_RESOURCE]
    assert [issued.client_id for issued in monitor] == [BACKEND_CLIENT_ID]
    assert len(entra_ingestion.events()) == 5


def test_an_identity_without_the_role_is_held_on_403_until_the_role_is_granted(
    managed_identity: TokenServer, entra_ingestion: IngestionServer
) -> None:
    credential = ManagedIdentityCredential(client_id=FRONTEND_CLIENT_ID)
    sink = AppInsightsSink(entra_ingestion.connection_string, credential=credential)

    refused = sink.export(events(2))
    entra_ingestion.grant(IDENTITIES[FRONTEND_CLIENT_ID])
    accepted = sink.export(events(2))
    sink.close()

    assert (refused.retryable, refused.rejected) == ((0, 1), ())
    assert refused.detail.startswith("HTTP 403: ")
    assert accepted == ExportResult.all_accepted(2)


def _jwt(audience: str, expires_in_s: float, not_before_in_s: float = -60) -> str:
    now = time.time()
    return unsecured_jwt(
        {
            "aud": audience,
            "iss": ISSUER,
            "iat": int(now),
            "nbf": int(now + not_before_in_s),
            "exp": int(now + expires_in_s),
            "oid": IDENTITIES[BACKEND_CLIENT_ID],
        }
    )


class FixedCredential:
    """A credential handing out one given token, valid for an hour as far as the sink knows."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.mark.parametrize(
    "token",
    [
        _jwt("https://storage.azure.com/", 3600),
        _jwt(MONITOR_RESOURCE, -10),
        _jwt(MONITOR_RESOURCE, 3600, not_before_in_s=600),
        "not-a-jwt",
    ],
    ids=["another-audience", "expired", "not-yet-valid", "malformed"],
)
def test_the_stand_in_answers_401_to_a_token_the_service_would_refuse(
    entra_ingestion: IngestionServer, token: str
) -> None:
    sink = AppInsightsSink(entra_ingestion.connection_string, credential=FixedCredential(token))

    result = sink.export(events(2))
    sink.close()

    assert result.retryable == (0, 1)
    assert result.detail.startswith("HTTP 401: ")
    assert entra_ingestion.events() == []


def test_without_a_token_the_stand_in_answers_401_and_with_a_good_one_accepts(
    entra_ingestion: IngestionServer,
) -> None:
    plain = AppInsightsSink(entra_ingestion.connection_string)
    good = FixedCredential(_jwt(MONITOR_RESOURCE.rstrip("/"), 3600))
    entra = AppInsightsSink(entra_ingestion.connection_string, credential=good)

    assert plain.export(events(1)).detail.startswith("HTTP 401: ")
    assert entra.export(events(1)) == ExportResult.all_accepted(1)
    assert claims_of(good.token)["aud"] == "https://monitor.azure.com"


def test_no_token_at_all_holds_the_batch_with_the_cause(entra_ingestion: IngestionServer) -> None:
    credential = Credential(Clock())
    credential.failing = True
    sink = AppInsightsSink(entra_ingestion.connection_string, credential=credential)

    result = sink.export(events(2))
    sink.close()

    assert (result.retryable, result.accepted, result.rejected) == ((0, 1), (), ())
    assert result.detail.startswith("no Entra ID token for Application Insights")
    assert entra_ingestion.received == 0


def test_a_token_is_never_sent_in_clear_text_to_another_machine() -> None:
    connection = f"InstrumentationKey={GUID};IngestionEndpoint=http://ingest.example/"

    with pytest.raises(ValueError, match="needs an https IngestionEndpoint"):
        AppInsightsSink(connection, credential=FixedCredential("x"))


def test_a_redirect_to_another_host_keeps_the_token(entra_ingestion: IngestionServer) -> None:
    # Given the endpoint redirecting to a regional one under another host name
    regional = IngestionServer().start()
    regional.location = f"http://localhost:{entra_ingestion.port}"
    connection = regional.connection_string_with(entra_ingestion.instrumentation_key)
    good = FixedCredential(_jwt(MONITOR_RESOURCE, 3600))
    sink = AppInsightsSink(connection, credential=good)

    result = sink.export(events(2))
    sink.close()
    regional.stop()

    assert result == ExportResult.all_accepted(2)
    assert entra_ingestion.requests == [("/v2.1/track", 200)]
