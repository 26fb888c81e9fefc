"""Password hashes: scrypt, salted, self-describing."""

from __future__ import annotations

from novalet.identity import passwords


def test_a_hash_checks_against_its_password_only() -> None:
    stored = passwords.hash_password("s3cret")
    assert passwords.check_password("s3cret", stored)
    assert not passwords.check_password("s3cret ", stored)
    assert not passwords.check_password("", stored)


def test_the_hash_names_its_scheme_and_never_holds_the_password() -> None:
    stored = passwords.hash_password("s3cret")
    assert stored.startswith("scrypt$")
    assert "s3cret" not in stored


def test_each_hash_has_its_own_salt() -> None:
    assert passwords.hash_password("same") != passwords.hash_password("same")


def test_missing_or_foreign_hashes_never_match() -> None:
    assert not passwords.check_password("x", None)
    assert not passwords.check_password("x", "")
    assert not passwords.check_password("x", "not-a-hash")
    foreign = passwords.hash_password("x").replace("scrypt$", "bcrypt$", 1)
    assert not passwords.check_password("x", foreign)
