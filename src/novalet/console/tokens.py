"""Console auth: issuing the short-lived tokens that open one guest's console, and
checking them for the proxies.

A token is random and kept only as its SHA-256, bound to one instance, the host
it ran on when the token was issued, and the address of its display there. It
is refused once expired ([consoleauth] token_ttl), once the instance is deleted
(its rows go with it) or has moved to another host. The proxies also ask the
compute host whether the display still listens where the token says
(conductor/manager.py), so a token outliving a guest's restart can't open what
another guest now serves on that port.

A native VNC token is the client's VNC password, so it is 8 characters, and VNC's
challenge needs it in the clear: it is kept sealed (Fernet, [consoleauth] key_file)
beside its hash, and only the conductor opens it, to answer a proxy's check.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import string
import time
from pathlib import Path
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken

from novalet import config
from novalet.common.urls import url_host
from novalet.console import vnc_auth
from novalet.console.types import NATIVE_VNC, ConsoleTarget
from novalet.console.types import Authorization as Authorization
from novalet.db import console_auth as db
from novalet.db.engine import Database
from novalet.db.models import ConsoleAuthToken

LOG = logging.getLogger(__name__)

_NATIVE_ALPHABET = string.ascii_letters + string.digits


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(console_type: str) -> str:
    if console_type == NATIVE_VNC:
        return "".join(secrets.choice(_NATIVE_ALPHABET) for _ in range(vnc_auth.PASSWORD_MAX))
    return secrets.token_urlsafe(24)


def key_path(conf: config.Config) -> Path:
    return Path(conf.get("consoleauth", "key_file") or conf.state_path / "keys" / "console-auth")


def _fernet(conf: config.Config) -> Fernet:
    """The sealing key, made on first use (readable by this user only). It is
    written aside and linked into place, so a process racing to make it too never
    reads a half-written file."""
    path = key_path(conf)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        with open(aside, "wb", opener=lambda p, flags: os.open(p, flags, 0o600)) as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            aside.unlink()
    return Fernet(path.read_bytes().strip())


class ConsoleAuth:
    """Issues tokens (the API) and checks them (the conductor, for the proxies)."""

    def __init__(self, conf: config.Config, database: Database) -> None:
        self.conf = conf
        self.db = database
        self._sealer: Fernet | None = None

    def _fernet(self) -> Fernet:
        if self._sealer is None:
            self._sealer = _fernet(self.conf)
        return self._sealer

    async def authorize(self, instance_uuid: str, compute_host: str, console_type: str,
                        target: ConsoleTarget) -> str:
        """A new token for the instance's console of `console_type` at `target`."""
        token = new_token(console_type)
        now = int(time.time())
        secret = (self._fernet().encrypt(token.encode()).decode()
                  if console_type == NATIVE_VNC else None)
        await db.add(self.db, ConsoleAuthToken(
            token_hash=token_hash(token), console_type=console_type, host=target.host,
            port=target.port, internal_access_path=target.internal_access_path,
            instance_uuid=instance_uuid, compute_host=compute_host, secret=secret,
            expires=now + int(self.conf.get("consoleauth", "token_ttl"))), now)
        return token

    async def show(self, token: str) -> ConsoleAuthToken | None:
        """The unexpired token's record (GET /os-console-auth-tokens/{token})."""
        return await db.find(self.db, token_hash(token), int(time.time()))

    async def check(self, token: str) -> Authorization | None:
        """What the token opens, if it is unexpired and its instance still exists on
        the host it was issued for."""
        row = await self.show(token)
        if row is None or row.console_type == NATIVE_VNC:
            return None  # a native VNC token is only good as a VNC password
        return await self._still_valid(row)

    async def check_vnc_auth(self, challenge: bytes, answer: bytes) -> Authorization | None:
        """The native VNC token whose password answers `challenge` with `answer`."""
        fernet = self._fernet()
        for row in await db.live_of_type(self.db, NATIVE_VNC, int(time.time())):
            try:
                password = fernet.decrypt((row.secret or "").encode()).decode()
            except InvalidToken:
                LOG.warning("native VNC token %s was sealed with another key; is "
                            "[consoleauth] key_file the same on every API and conductor "
                            "host?", row.id)
                continue
            if vnc_auth.matches(password, challenge, answer):
                return await self._still_valid(row)
        return None

    async def _still_valid(self, row: ConsoleAuthToken) -> Authorization | None:
        host = await db.instance_on(self.db, row.instance_uuid)
        if host is None or host != row.compute_host:
            LOG.info("console token for %s refused: the instance is %s", row.instance_uuid,
                     "gone" if host is None else f"on {host} now, not {row.compute_host}")
            return None
        return Authorization(row.instance_uuid, row.console_type, row.compute_host,
                             ConsoleTarget(row.host, row.port, row.internal_access_path))


def access_url(conf: config.Config, console_type: str, token: str) -> str:
    """The URL a client opens for the console, carrying the token."""
    if console_type == "novnc":
        # noVNC's page takes the websocket's path; ours carries the token.
        return _with_query(_base(conf, "vnc", "novncproxy", "http", "/vnc_lite.html"),
                           "path=" + quote(f"?token={token}", safe=""))
    if console_type == NATIVE_VNC:
        return _with_query(_base(conf, "vnc", "xvpvncproxy", "vnc", ""),
                           f"VncPassword={token}")  # RFC 7869's parameter
    if console_type == "spice-html5":
        return _with_query(_base(conf, "spice", "html5proxy", "http", "/spice_auto.html"),
                           f"token={token}")
    if console_type == "serial":
        return _with_query(_base(conf, "serial_console", "serialproxy", "ws", "/"),
                           f"token={token}")
    raise ValueError(f"no proxy serves {console_type} consoles")


def base_url_option(section: str, proxy: str) -> str:
    """The option naming a proxy's public URL ([serial_console] calls it base_url)."""
    return "base_url" if section == "serial_console" else f"{proxy}_base_url"


def _base(conf: config.Config, section: str, proxy: str, scheme: str, page: str) -> str:
    configured = conf.get(section, base_url_option(section, proxy))
    if configured:
        return str(configured)
    host = url_host(conf.get(section, f"{proxy}_host"))
    return f"{scheme}://{host}:{conf.get(section, f'{proxy}_port')}{page}"


def _with_query(base: str, query: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}{query}"
