"""Signature verification against GitHub's published test vector and malformed headers."""

from __future__ import annotations

import hmac

import pytest
from pytest_mock import MockerFixture

from frontend.signature import SignatureError, sign, verify_signature

# https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_PAYLOAD = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_published_test_vector_verifies() -> None:
    verify_signature(GITHUB_PAYLOAD, GITHUB_SIGNATURE, [GITHUB_SECRET])


def test_sign_signs_like_github() -> None:
    assert sign(GITHUB_PAYLOAD, GITHUB_SECRET) == GITHUB_SIGNATURE


def test_uppercase_hex_digits_verify() -> None:
    verify_signature(GITHUB_PAYLOAD, "sha256=" + GITHUB_SIGNATURE[7:].upper(), [GITHUB_SECRET])


def test_the_second_of_two_secrets_verifies() -> None:
    verify_signature(GITHUB_PAYLOAD, GITHUB_SIGNATURE, ["new-secret", GITHUB_SECRET])


@pytest.mark.parametrize("position", [0, 1, 2])
def test_every_secret_is_compared_whichever_one_matches(
    mocker: MockerFixture, position: int
) -> None:
    # Stopping at the first match would let the response time tell which secret is current.
    secrets = ["old-secret", "other-secret", "newer-secret"]
    secrets[position] = GITHUB_SECRET
    compare = mocker.spy(hmac, "compare_digest")

    verify_signature(GITHUB_PAYLOAD, GITHUB_SIGNATURE, secrets)

    assert compare.call_count == len(secrets)
    assert [call.args[0] for call in compare.call_args_list] == [
        bytes.fromhex(GITHUB_SIGNATURE[7:])
    ] * len(secrets)


@pytest.mark.parametrize(
    ("body", "header", "secrets", "message"),
    [
        (b"Hello, World?", GITHUB_SIGNATURE, [GITHUB_SECRET], "does not match the body"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE, ["another secret"], "does not match the body"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE, [], "does not match the body"),
        (GITHUB_PAYLOAD, None, [GITHUB_SECRET], "missing X-Hub-Signature-256 header"),
        (GITHUB_PAYLOAD, "", [GITHUB_SECRET], "missing X-Hub-Signature-256 header"),
        (GITHUB_PAYLOAD, "sha1=" + GITHUB_SIGNATURE[7:], [GITHUB_SECRET], "malformed"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE[7:], [GITHUB_SECRET], "malformed"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE[:-1], [GITHUB_SECRET], "malformed"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE + "0", [GITHUB_SECRET], "malformed"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE + " ", [GITHUB_SECRET], "malformed"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE[:-1] + "é", [GITHUB_SECRET], "malformed"),
        (GITHUB_PAYLOAD, GITHUB_SIGNATURE[:-1] + "٣", [GITHUB_SECRET], "malformed"),
        (GITHUB_PAYLOAD, "sha256=" + "zz" * 32, [GITHUB_SECRET], "malformed"),
    ],
    ids=[
        "tampered-body",
        "wrong-secret",
        "no-secrets",
        "missing-header",
        "empty-header",
        "wrong-prefix",
        "no-prefix",
        "short-digest",
        "long-digest",
        "trailing-space",
        "non-ascii-latin",
        "non-ascii-digit",
        "not-hex",
    ],
)
def test_bad_signatures_raise_signature_error(
    body: bytes, header: str | None, secrets: list[str], message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_signature(body, header, secrets)
