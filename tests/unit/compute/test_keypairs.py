"""KeypairService: importing and generating keys, Nova's fingerprints, per-user lists."""

import base64
import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from novalet import config
from novalet.common.context import RequestContext
from novalet.compute import keypairs
from novalet.compute.keypairs import (
    InvalidKeypair,
    KeyPairExists,
    KeypairLimitExceeded,
    KeypairNotFound,
    KeypairService,
    MarkerNotFound,
)
from novalet.compute.quotas import QuotaEngine
from novalet.db import migrate
from novalet.db.engine import Database


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[KeypairService]:
    db = Database(f"sqlite:///{tmp_path / 'keys.sqlite'}")
    await migrate.sync(db)
    yield KeypairService(db)
    await db.close()


def _as(user_id: str) -> RequestContext:
    """A member of project p acting as user_id."""
    return RequestContext(user_id=user_id, project_id="p", roles=["member", "reader"])


def _openssh(private: object) -> str:
    public = private.public_key()  # type: ignore[attr-defined]
    return public.public_bytes(serialization.Encoding.OpenSSH,
                               serialization.PublicFormat.OpenSSH).decode() + " me@host\n"


def _md5_of_blob(line: str) -> str:
    digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


@pytest.mark.parametrize("make", [
    ed25519.Ed25519PrivateKey.generate,
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
], ids=["ssh-ed25519", "ecdsa-nistp256", "ecdsa-nistp384", "ssh-rsa"])
def test_fingerprint_is_md5_of_the_key_blob(make: object) -> None:
    line = _openssh(make())  # type: ignore[operator]
    assert keypairs.ssh_fingerprint(line) == _md5_of_blob(line)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    (tmp_path / "k.pub").write_text(line)
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(tmp_path / "k.pub")],
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == "MD5:" + keypairs.ssh_fingerprint(line)


@pytest.mark.parametrize("bad", ["", "ssh-rsa", "ssh-rsa AAAA", "not a key at all",
                                 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x"])
def test_garbage_is_an_invalid_keypair(bad: str) -> None:
    with pytest.raises(InvalidKeypair, match="Keypair data is invalid: failed to generate "
                                             "fingerprint") as err:
        keypairs.ssh_fingerprint(bad)
    assert err.value.code == 400


async def test_import_stores_key_as_given(service: KeypairService) -> None:
    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    keypair = await service.import_key("u1", "k1", line)
    assert (keypair.name, keypair.user_id, keypair.type) == ("k1", "u1", "ssh")
    assert keypair.public_key == line
    assert keypair.fingerprint == _md5_of_blob(line)
    assert keypair.id and keypair.created_at is not None
    assert (await service.get(_as("u1"), "k1")).fingerprint == keypair.fingerprint


async def test_generated_ssh_key_pairs_up(service: KeypairService) -> None:
    keypair, private_pem = await service.generate("u1", "gen")
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert private_pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    expected = _openssh(private).split()[:2]
    assert keypair.public_key.split()[:2] == expected
    assert keypair.fingerprint == _md5_of_blob(keypair.public_key)
    stored = await service.get(_as("u1"), "gen")
    assert private_pem not in stored.public_key


async def test_x509_generate_and_import(service: KeypairService) -> None:
    keypair, bundle = await service.generate("u1", "cert", key_type="x509")
    assert keypair.type == "x509"
    cert = x509.load_pem_x509_certificate(keypair.public_key.encode())
    assert cert.subject.rfc4514_string() == "CN=u1"
    key, bundled_cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(bundle), None)
    assert bundled_cert == cert and key is not None
    assert keypair.fingerprint == cert.fingerprint(hashes.SHA1()).hex(":")
    imported = await service.import_key("u2", "cert", keypair.public_key, "x509")
    assert imported.fingerprint == keypair.fingerprint
    with pytest.raises(InvalidKeypair, match="failed to generate X509 fingerprint"):
        await service.import_key("u2", "bad", "not a cert", "x509")


async def test_names_are_per_user(service: KeypairService) -> None:
    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    await service.import_key("u1", "k", line)
    await service.import_key("u2", "k", line)
    with pytest.raises(KeyPairExists, match="Key pair 'k' already exists.") as err:
        await service.import_key("u1", "k", line)
    assert err.value.code == 409
    with pytest.raises(KeypairNotFound, match="Keypair k not found for user u3"):
        await service.get(_as("u3"), "k")


async def test_list_is_sorted_by_name_and_paged(service: KeypairService) -> None:
    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    for name in ("c", "a", "b", "d"):
        await service.import_key("u1", name, line)
    await service.import_key("u2", "z", line)
    assert [k.name for k in await service.list_for_user(_as("u1"))] == ["a", "b", "c", "d"]
    assert [k.name for k in await service.list_for_user(_as("u1"), limit=2)] == ["a", "b"]
    assert [k.name for k in await service.list_for_user(_as("u1"), None, 2, "b")] == ["c", "d"]
    with pytest.raises(MarkerNotFound, match="Marker z could not be found."):
        await service.list_for_user(_as("u1"), marker="z")


async def test_delete(service: KeypairService) -> None:
    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    await service.import_key("u1", "k", line)
    await service.delete(_as("u1"), "k")
    assert await service.list_for_user(_as("u1")) == []
    with pytest.raises(KeypairNotFound):
        await service.delete(_as("u1"), "k")


async def test_quota_of_key_pairs_per_user(service: KeypairService) -> None:
    conf = config.Config()
    conf.set("quota", "key_pairs", 2)
    service = KeypairService(service.db, QuotaEngine(service.db, conf))
    line = _openssh(ed25519.Ed25519PrivateKey.generate())
    await service.import_key("u1", "a", line)
    await service.import_key("u1", "b", line)
    with pytest.raises(KeypairLimitExceeded, match="Quota exceeded, too many key pairs.") as e:
        await service.import_key("u1", "c", line)
    assert e.value.code == 403
    await service.import_key("u2", "c", line)
