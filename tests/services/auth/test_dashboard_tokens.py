"""Dashboard bearer tokens: what they carry, and every way a token that is not one is refused."""

from __future__ import annotations

import grpc
import pytest

from services import errors
from services.auth import dashboard_tokens, live_tokens
from services.auth.signing import Signer
from services.auth.tokens import API_KEY_PREFIX, SESSION_PREFIX


def _refused(token: str, signer: Signer) -> grpc.StatusCode:
    with pytest.raises(errors.ApiError) as caught:
        dashboard_tokens.read(signer, token)
    return caught.value.code


def test_a_token_names_its_row_and_workspace() -> None:
    signer = Signer(b"s" * 32)
    token = dashboard_tokens.mint(signer, 12, 7, 60)
    assert token.startswith(dashboard_tokens.PREFIX)
    # Told apart from every other bearer credential by its prefix.
    others = (API_KEY_PREFIX, SESSION_PREFIX, live_tokens.PREFIX)
    assert not any(token.startswith(p) for p in others)
    assert dashboard_tokens.read(signer, token) == dashboard_tokens.DashboardClaims(12, 7)
    assert dashboard_tokens.actor(12) == "dashboard:12"
    assert dashboard_tokens.SCOPES == frozenset({"analytics:read"})


def test_expired_forged_and_foreign_tokens_are_unauthenticated() -> None:
    signer = Signer(b"s" * 32)
    good = dashboard_tokens.mint(signer, 12, 7, 60)
    body, _, tag = good.removeprefix(dashboard_tokens.PREFIX).partition(".")
    candidates = [
        dashboard_tokens.mint(signer, 12, 7, -1),  # expired
        dashboard_tokens.mint(Signer(b"t" * 32), 12, 7, 60),  # another deployment's
        dashboard_tokens.PREFIX + signer.sign("embed", {"did": 12, "ws": 7}, 60),
        dashboard_tokens.PREFIX + signer.sign("dashboard", {"did": "12", "ws": 7}, 60),
        dashboard_tokens.PREFIX + signer.sign("dashboard", {"ws": 7}, 60),
        dashboard_tokens.PREFIX + body + "." + tag[::-1],
        dashboard_tokens.PREFIX + "garbage",
    ]
    for token in candidates:
        assert _refused(token, signer) == grpc.StatusCode.UNAUTHENTICATED, token
