"""Key pairs: users' SSH public keys (and x509 certificates) that servers are booted with."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from novalet import exceptions, policy
from novalet.common.context import RequestContext
from novalet.compute.quotas import KeypairLimitExceeded, QuotaEngine
from novalet.db import keypairs as db_keypairs
from novalet.db.engine import Database
from novalet.db.keypairs import KeyPairExists, KeypairNotFound, MarkerNotFound
from novalet.db.models import KeyPair

__all__ = ["KEYPAIR_TYPES", "InvalidKeypair", "KeyPair",
           "KeyPairExists", "KeypairLimitExceeded", "KeypairNotFound", "KeypairService",
           "MarkerNotFound", "ssh_fingerprint", "x509_fingerprint"]

KEYPAIR_TYPES = ("ssh", "x509")
_RSA_BITS = 2048


def _owner(ctx: RequestContext, user_id: str | None) -> str:
    """Whose key pairs a call reads: ctx's user's; another user's only with
    os_compute_api:os-keypairs:other_user (403 otherwise), whatever front-end asks."""
    if user_id is None or user_id == ctx.user_id:
        return ctx.user_id or ""
    policy.enforce(ctx, "os_compute_api:os-keypairs:other_user")
    return user_id


class InvalidKeypair(exceptions.Invalid):
    msg_fmt = "Keypair data is invalid: %(reason)s"


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def ssh_fingerprint(public_key: str) -> str:
    """Nova's fingerprint of an OpenSSH public key: MD5 of the key blob, colon hex.

    The key must parse (ssh-rsa, ssh-ed25519, ecdsa-sha2-*); InvalidKeypair if not.
    """
    try:
        key = serialization.load_ssh_public_key(public_key.strip().encode())
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm):
        raise InvalidKeypair(reason="failed to generate fingerprint") from None
    blob = key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).split()[1]
    return _colon_hex(hashlib.md5(base64.b64decode(blob), usedforsecurity=False).digest())


def x509_fingerprint(pem: str) -> str:
    """SHA-1 of a PEM certificate's DER form, colon hex (as Nova shows x509 keys)."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidKeypair(reason="failed to generate X509 fingerprint. "
                             f"Error message: {exc}") from None
    return _colon_hex(cert.fingerprint(hashes.SHA1()))


def generate_ssh_key() -> tuple[str, str]:
    """A new RSA key: (private key PEM, OpenSSH public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} Generated-by-Novalet"


def generate_x509_cert(user_id: str) -> tuple[str, str]:
    """A self-signed client certificate for user_id, valid ten years:
    (base64 PKCS#12 bundle with the private key, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    bundle = pkcs12.serialize_key_and_certificates(None, key, cert, None,
                                                   serialization.NoEncryption())
    return (base64.b64encode(bundle).decode(),
            cert.public_bytes(serialization.Encoding.PEM).decode())


class KeypairService:
    """Per-user key pairs, within the user's key_pairs quota. Returned KeyPairs are
    detached database rows."""

    def __init__(self, db: Database, quotas: QuotaEngine | None = None) -> None:
        self.db = db
        self.quotas = quotas or QuotaEngine(db)

    async def import_key(self, user_id: str, name: str, public_key: str,
                         key_type: str = "ssh", project_id: str = "") -> KeyPair:
        """Store a public key (OpenSSH line, or PEM certificate for x509).
        KeypairLimitExceeded (403) when the user has key_pairs key pairs already
        (project_id: whose quota limits apply)."""
        return await self._store(user_id, name, public_key, key_type, project_id)

    async def generate(self, user_id: str, name: str, key_type: str = "ssh",
                       project_id: str = "") -> tuple[KeyPair, str]:
        """Make a new key pair and store its public half; (keypair, private key).
        The private key is never stored: this is the only time anyone sees it."""
        await self._precheck_quota(user_id, project_id)
        private, public = (generate_x509_cert(user_id) if key_type == "x509"
                           else generate_ssh_key())
        return await self._store(user_id, name, public, key_type, project_id), private

    async def _store(self, user_id: str, name: str, public_key: str, key_type: str,
                     project_id: str) -> KeyPair:
        fingerprint = (x509_fingerprint(public_key) if key_type == "x509"
                       else ssh_fingerprint(public_key))
        return await db_keypairs.create(self.db, {
            "user_id": user_id, "name": name, "type": key_type,
            "public_key": public_key, "fingerprint": fingerprint},
            admit=self.quotas.admit_keypair(), project_id=project_id)

    async def get(self, ctx: RequestContext, name: str, user_id: str | None = None
                  ) -> KeyPair:
        """ctx's user's key pair (or user_id's, see _owner), or KeypairNotFound (404)."""
        return await db_keypairs.get(self.db, _owner(ctx, user_id), name)

    async def list_for_user(self, ctx: RequestContext, user_id: str | None = None,
                            limit: int | None = None, marker: str | None = None
                            ) -> list[KeyPair]:
        """ctx's user's key pairs (or user_id's, see _owner) sorted by name;
        MarkerNotFound (400) for a marker that is not one of them."""
        return await db_keypairs.list_for_user(self.db, _owner(ctx, user_id), limit, marker)

    async def delete(self, ctx: RequestContext, name: str, user_id: str | None = None
                     ) -> None:
        await db_keypairs.destroy(self.db, _owner(ctx, user_id), name)

    async def _precheck_quota(self, user_id: str, project_id: str) -> None:
        """Refuse before generating a key nobody could store (the insert checks again
        under the quota lock)."""
        limit = (await self.quotas.limits(project_id, user_id))["key_pairs"]
        used = (await self.quotas.usage(project_id, user_id)).get("key_pairs", 0)
        if limit != -1 and used >= limit:
            raise KeypairLimitExceeded()
