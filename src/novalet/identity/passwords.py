"""Password hashing: scrypt from the standard library, self-describing hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return (f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def check_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                              r=int(r), p=int(p))
    return hmac.compare_digest(computed, base64.b64decode(digest))
