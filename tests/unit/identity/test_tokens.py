"""Fernet tokens: what they carry, and when they stop being valid."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from novalet.identity.tokens import TokenNotValid, TokenProvider

FIELDS: dict[str, Any] = {
    "user_id": "u1", "user_name": "alice", "user_domain_id": "default", "project_id": "p1",
    "project_name": "proj", "project_domain_id": "default",
    "roles": [{"id": "r1", "name": "member"}]}


def test_a_token_carries_user_scope_and_roles(tmp_path: Path) -> None:
    provider = TokenProvider(tmp_path / "keys", 3600)
    token_id, issued = provider.issue(**FIELDS)
    data = provider.validate(token_id)
    assert data == issued
    assert (data.user_id, data.project_id, data.role_names) == ("u1", "p1", ["member"])
    assert data.expires_at > data.issued_at


def test_garbled_and_foreign_tokens_are_refused(tmp_path: Path) -> None:
    provider = TokenProvider(tmp_path / "keys", 3600)
    other = TokenProvider(tmp_path / "other-keys", 3600)
    token_id, _ = other.issue(**FIELDS)
    for bad in ("garbage", token_id, token_id[:-4]):
        with pytest.raises(TokenNotValid):
            provider.validate(bad)


def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    provider = TokenProvider(tmp_path / "keys", -1)
    token_id, _ = provider.issue(**FIELDS)
    with pytest.raises(TokenNotValid, match="expired"):
        provider.validate(token_id)


def test_the_newest_key_seals_and_every_key_opens(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    old_id, _ = TokenProvider(keys, 3600).issue(**FIELDS)
    only_old = tmp_path / "only-old"
    only_old.mkdir()
    (only_old / "0").write_bytes((keys / "0").read_bytes())
    (keys / "1").write_bytes(Fernet.generate_key())
    rotated = TokenProvider(keys, 3600)
    new_id, _ = rotated.issue(**FIELDS)
    assert rotated.validate(old_id).user_id == "u1"
    with pytest.raises(TokenNotValid):
        TokenProvider(only_old, 3600).validate(new_id)


def test_the_first_key_is_private_to_its_owner(tmp_path: Path) -> None:
    TokenProvider(tmp_path / "keys", 3600)
    key = tmp_path / "keys" / "0"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_token_made_from_another_keeps_its_expiry_and_audit_chain(tmp_path: Path) -> None:
    provider = TokenProvider(tmp_path, ttl_seconds=3600)
    _, parent = provider.issue(**FIELDS)
    short = TokenProvider(tmp_path, ttl_seconds=7200)
    _, child = short.issue(parent, **{**FIELDS, "project_id": "p2"})
    assert child.expires_at == parent.expires_at
    assert child.audit_id == parent.audit_id
    assert child.project_id == "p2"
