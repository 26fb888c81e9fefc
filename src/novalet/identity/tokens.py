"""Tokens: Fernet-sealed JSON, so validating one reads no database.

The payload names the user, the project (or system) scope, the roles at issue
time, the expiry and an audit id. Revocation (identity/revocations.py) is checked
on top of this, by the identity service. Keys live in the state dir; the first key seals, every
key opens (so keys can be rotated). Every API process (workers, hosts) must hold the
same keys: a process rereads the directory when a token fails to open and the
directory changed since it read it, so a key added there (by another worker on its
first start, or copied in by an operator) counts without a restart.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from novalet import exceptions
from novalet.common import timeutils


class TokenNotValid(exceptions.Unauthorized):
    msg_fmt = "The request you have made requires authentication."


class TokenNotFound(exceptions.NotFound):
    msg_fmt = "Could not find token: %(token)s."


@dataclass
class TokenData:
    user_id: str
    user_name: str
    user_domain_id: str
    project_id: str | None
    project_name: str | None
    project_domain_id: str | None
    roles: list[dict[str, str]]
    expires_at: str
    issued_at: str
    methods: list[str] = field(default_factory=lambda: ["password"])
    audit_id: str = field(default_factory=lambda: base64.urlsafe_b64encode(
        secrets.token_bytes(16)).decode().rstrip("="))
    app_cred_id: str | None = None
    # "all" for a system-scoped token (then project_id is None).
    system: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str | None = None

    @property
    def role_names(self) -> list[str]:
        return [r["name"] for r in self.roles]

    def expired(self, now: dt.datetime | None = None) -> bool:
        return timeutils.parse_isotime(self.expires_at) <= (now or timeutils.utcnow())


class TokenProvider:
    def __init__(self, key_dir: Path, ttl_seconds: int) -> None:
        self.ttl = ttl_seconds
        self.key_dir = key_dir
        self._load_keys()

    def _load_keys(self) -> None:
        keys = _load_keys(self.key_dir)
        self._keys_seen = _key_dir_signature(self.key_dir)
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def _decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            if _key_dir_signature(self.key_dir) == self._keys_seen:
                raise
            self._load_keys()  # keys changed under us: try once more with them
            return self._fernet.decrypt(token.encode())

    def issue(self, parent: TokenData | None = None, *,
              not_after: dt.datetime | None = None, **fields: object
              ) -> tuple[str, TokenData]:
        """Seal a new token; one made from a `parent` token keeps its expiry and
        audit chain, so re-scoping can't extend a session. `not_after` caps the
        expiry (the expiry of the application credential the token is made from)."""
        now = timeutils.utcnow()
        expires = parent.expires_at if parent else _iso(
            min(now + dt.timedelta(seconds=self.ttl), not_after or dt.datetime.max))
        if parent:
            fields.setdefault("audit_id", parent.audit_id)
        data = TokenData(issued_at=_iso(now), expires_at=expires,
                         **fields)  # type: ignore[arg-type]
        return self._fernet.encrypt(orjson.dumps(asdict(data))).decode(), data

    def validate(self, token: str) -> TokenData:
        """The token's payload; TokenNotValid when it is forged, garbled or expired."""
        try:
            payload = orjson.loads(self._decrypt(token))
            data = TokenData(**payload)
        except (InvalidToken, ValueError, TypeError):
            raise TokenNotValid() from None
        if data.expired():
            raise TokenNotValid("The token has expired.")
        return data


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _key_dir_signature(key_dir: Path) -> list[tuple[str, int, int]]:
    try:
        return sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                      for p in key_dir.iterdir() if not p.name.startswith("."))
    except OSError:
        return []


def _load_keys(key_dir: Path) -> list[bytes]:
    """Keys from key_dir (newest name sorts first), making the first one if there is none."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = sorted((p for p in key_dir.iterdir() if not p.name.startswith(".")),
                   key=lambda p: p.name, reverse=True)
    if not files:
        path = key_dir / "0"
        # Written under a temporary name and linked into place, so a process starting
        # at the same moment never reads a half-written key, and exactly one key wins.
        tmp = key_dir / f".0.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made the first key: use that one
        finally:
            tmp.unlink()
        files = [path]
    return [p.read_bytes().strip() for p in files]
