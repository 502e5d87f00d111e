"""The visitor-id key of a deployment and the ids made under it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from pathlib import Path

import pytest

from services import config
from services.auth import signing
from services.live.visitors import VisitorIds, visitor_key


def _settings(run_dir: Path, **changes: str) -> config.Settings:
    unset = {"signing_key": "", "visitor_id_key": ""}
    return replace(config.load(), run_dir=run_dir, **{**unset, **changes})


def test_the_key_is_visitor_id_key_when_set(tmp_path: Path) -> None:
    assert visitor_key(_settings(tmp_path, visitor_id_key="a secret of 24 characters")) == (
        b"a secret of 24 characters"
    )
    with pytest.raises(ValueError, match="VISITOR_ID_KEY"):
        visitor_key(_settings(tmp_path, visitor_id_key="short"))


def test_unset_it_is_derived_from_the_signing_secret_and_is_not_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    key = visitor_key(settings)
    assert key == visitor_key(settings)  # every process of the machine agrees
    secret = signing.load_secret(settings)
    assert len(key) == 32 and secret not in key
    other = _settings(tmp_path / "elsewhere")
    assert visitor_key(other) != key  # another deployment, other ids
    assert visitor_key(replace(other, signing_key=secret.decode())) == key


def test_ids_are_hmac_sha256_of_address_and_agent() -> None:
    ids, ip = VisitorIds(b"k" * 20), "203.0.113.9"
    expected = hmac.new(b"k" * 20, f"{ip}|curl/8".encode(), hashlib.sha256).hexdigest()[:32]
    assert ids.of(ip, "curl/8", 5) == ids.of(ip, "curl/8", 6) == expected
    assert ids.of(ip, "curl/8", 5) != VisitorIds(b"j" * 20).of(ip, "curl/8", 5)
    assert ids.of("", "", 5) == "anon:5"
    with pytest.raises(ValueError):
        VisitorIds(b"short")
