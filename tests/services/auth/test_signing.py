"""Signed tokens: round trip, purpose binding, tampering, expiry, the shared secret file."""

from __future__ import annotations

import dataclasses
import time

import pytest

from services import errors
from services.auth.signing import SignatureError, Signer, load_secret
from services.config import Settings


def test_round_trip_carries_claims_and_expiry() -> None:
    signer = Signer(b"s" * 32)
    token = signer.sign("embed", {"workspace": 7}, ttl_seconds=60)
    claims = signer.claims("embed", token)
    assert claims["workspace"] == 7
    assert time.time() < claims["exp"] <= time.time() + 61


def test_a_token_for_one_purpose_is_refused_for_another() -> None:
    signer = Signer(b"s" * 32)
    token = signer.sign("live", {"workspace": 7}, ttl_seconds=60)
    with pytest.raises(SignatureError):
        signer.claims("download", token)


def test_tampered_claims_and_another_secret_are_refused() -> None:
    signer = Signer(b"s" * 32)
    token = signer.sign("live", {"workspace": 7}, ttl_seconds=60)
    body, _, tag = token.partition(".")
    forged = Signer(b"s" * 32).sign("live", {"workspace": 8}, ttl_seconds=60)
    with pytest.raises(SignatureError):
        signer.claims("live", forged.partition(".")[0] + "." + tag)
    with pytest.raises(SignatureError):
        Signer(b"t" * 32).claims("live", token)
    with pytest.raises(SignatureError):
        signer.claims("live", "not-a-token")


def test_expired_token_is_refused_with_401() -> None:
    signer = Signer(b"s" * 32)
    token = signer.sign("live", {}, ttl_seconds=10)
    with pytest.raises(SignatureError, match="expired"):
        signer.claims("live", token, now=time.time() + 11)
    with pytest.raises(errors.ApiError) as caught:
        signer.verify("live", signer.sign("live", {}, ttl_seconds=-1))
    assert caught.value.reason == "unauthorized"


def test_secret_file_is_created_once_and_shared(tmp_path) -> None:
    settings = dataclasses.replace(Settings(), run_dir=tmp_path, signing_key="")
    first = load_secret(settings)
    assert load_secret(settings) == first
    assert (tmp_path / "signing.key").stat().st_mode & 0o777 == 0o600
    explicit = dataclasses.replace(settings, signing_key="x" * 20)
    assert load_secret(explicit) == b"x" * 20
