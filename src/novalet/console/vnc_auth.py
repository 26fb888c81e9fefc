"""VNC authentication (RFB security type 2): the server sends 16 random bytes and
the client answers them DES-encrypted under its password. The password is at most
8 bytes, NUL-padded, and VNC reverses the bits of each key byte (RFB 3.8, 7.2.2)."""

from __future__ import annotations

import hmac
import os

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

CHALLENGE_BYTES = 16
PASSWORD_MAX = 8


def challenge() -> bytes:
    return os.urandom(CHALLENGE_BYTES)


def response(password: str, challenge_bytes: bytes) -> bytes:
    """The client's answer to `challenge_bytes` for `password`."""
    key = password.encode()[:PASSWORD_MAX].ljust(PASSWORD_MAX, b"\0")
    key = bytes(int(f"{byte:08b}"[::-1], 2) for byte in key)
    # Triple DES with one key three times over is single DES.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge_bytes) + encryptor.finalize()


def matches(password: str, challenge_bytes: bytes, answer: bytes) -> bool:
    return hmac.compare_digest(response(password, challenge_bytes), answer)
