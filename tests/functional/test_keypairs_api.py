"""Keypairs through the HTTP API: import, generation, per-user lists, microversion shapes."""

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from novalet.common.context import RequestContext
from tests.functional.conftest import Api, boot

K = "/compute/v2.1/os-keypairs"


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode() + " test@novalet"


def _fingerprint(line: str) -> str:
    return hashlib.md5(base64.b64decode(line.split()[1])).digest().hex(":")


async def _import(api: Api, name: str = "k1", version: str = "2.2", user: str = "demo",
                  **extra: Any) -> dict[str, Any]:
    resp = await api.request("POST", K, user=user, version=version, json={"keypair": {
        "name": name, "public_key": _public_key(), **extra}})
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["keypair"]


async def _user_id(api: Api, name: str) -> str:
    (user,) = await api.cloud.services.identity.list_users(name=name)
    return user.id


async def test_import_at_21_and_22(api: Api) -> None:
    line = _public_key()
    resp = await api.request("POST", K, json={"keypair": {"name": "old", "public_key": line}})
    assert resp.status_code == 200
    body = resp.json()["keypair"]
    assert body == {"name": "old", "public_key": line, "fingerprint": _fingerprint(line),
                    "user_id": await _user_id(api, "demo")}
    resp = await api.request("POST", K, version="2.2", json={"keypair": {
        "name": "new", "public_key": line}})
    assert resp.status_code == 201
    assert resp.json()["keypair"]["type"] == "ssh"
    resp = await api.request("POST", K, json={"keypair": {"name": "t", "public_key": line,
                                                          "type": "ssh"}})
    assert resp.status_code == 400  # no type before 2.2


async def test_generate_before_292_only(api: Api) -> None:
    resp = await api.request("POST", K, version="2.91", json={"keypair": {"name": "gen"}})
    assert resp.status_code == 201
    body = resp.json()["keypair"]
    private = serialization.load_pem_private_key(body["private_key"].encode(), None)
    assert body["public_key"].startswith("ssh-rsa ")
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    assert body["public_key"].split()[:2] == public.split()
    shown = (await api.request("GET", f"{K}/gen", version="2.91")).json()["keypair"]
    assert "private_key" not in shown
    resp = await api.request("POST", K, version="2.92", json={"keypair": {"name": "gen2"}})
    assert resp.status_code == 400
    assert "public_key" in resp.json()["badRequest"]["message"]


async def test_name_rules_change_at_292(api: Api) -> None:
    line = _public_key()
    for version, status in (("2.91", 400), ("2.92", 201)):
        resp = await api.request("POST", K, version=version, json={"keypair": {
            "name": "me@host.example", "public_key": line}})
        assert resp.status_code == status, (version, resp.text)
    for bad in ("", " lead", "slash/no", "x" * 256):
        resp = await api.request("POST", K, version="2.92", json={"keypair": {
            "name": bad, "public_key": line}})
        assert resp.status_code == 400, bad


async def test_invalid_and_duplicate_keys(api: Api) -> None:
    resp = await api.request("POST", K, version="2.2", json={"keypair": {
        "name": "bad", "public_key": "ssh-rsa not-base64"}})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        "Keypair data is invalid: failed to generate fingerprint")
    await _import(api, "dup")
    resp = await api.request("POST", K, version="2.2", json={"keypair": {
        "name": "dup", "public_key": _public_key()}})
    assert resp.status_code == 409
    assert resp.json()["conflictingRequest"]["message"] == "Key pair 'dup' already exists."


async def test_list_show_delete_shapes(api: Api) -> None:
    created = await _import(api, "k1")
    old = (await api.request("GET", K)).json()
    assert old == {"keypairs": [{"keypair": {"name": "k1", "public_key": created["public_key"],
                                             "fingerprint": created["fingerprint"]}}]}
    new = (await api.request("GET", K, version="2.2")).json()
    assert new["keypairs"][0]["keypair"]["type"] == "ssh"
    shown = (await api.request("GET", f"{K}/k1", version="2.2")).json()["keypair"]
    assert set(shown) == {"name", "public_key", "fingerprint", "user_id", "id", "type",
                          "created_at", "updated_at", "deleted", "deleted_at"}
    assert shown["deleted"] is False and shown["deleted_at"] is None
    assert shown["updated_at"] is None and isinstance(shown["id"], int)
    assert shown["created_at"][10] == "T"
    assert (await api.request("DELETE", f"{K}/k1")).status_code == 202
    await _import(api, "k2")
    resp = await api.request("DELETE", f"{K}/k2", version="2.2")
    assert resp.status_code == 204 and resp.content == b""
    resp = await api.request("GET", f"{K}/k2")
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == (
        f"Keypair k2 not found for user {await _user_id(api, 'demo')}")
    assert (await api.request("DELETE", f"{K}/k2")).status_code == 404


async def test_paging_from_235(api: Api) -> None:
    for name in ("c", "a", "b"):
        await _import(api, name)
    unpaged = (await api.request("GET", f"{K}?limit=1", version="2.34")).json()
    assert [k["keypair"]["name"] for k in unpaged["keypairs"]] == ["a", "b", "c"]
    resp = await api.request("GET", f"{K}?limit=2", version="2.35")
    body = resp.json()
    assert [k["keypair"]["name"] for k in body["keypairs"]] == ["a", "b"]
    assert body["keypairs_links"] == [{
        "rel": "next", "href": "http://novalet.test/compute/v2.1/os-keypairs?limit=2&marker=b"}]
    body = (await api.request("GET", f"{K}?limit=2&marker=b", version="2.35")).json()
    assert [k["keypair"]["name"] for k in body["keypairs"]] == ["c"]
    assert "keypairs_links" not in body
    resp = await api.request("GET", f"{K}?marker=zz", version="2.35")
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == "Marker zz could not be found."
    assert (await api.request("GET", f"{K}?colour=red", version="2.75")).status_code == 400
    assert (await api.request("GET", f"{K}?colour=red", version="2.74")).status_code == 200


async def test_users_see_only_their_own_keypairs(api: Api) -> None:
    await _import(api, "demo-key")
    await _import(api, "admin-key", user="admin")
    names = [k["keypair"]["name"] for k in (await api.request("GET", K)).json()["keypairs"]]
    assert names == ["demo-key"]
    assert (await api.request("GET", f"{K}/admin-key")).status_code == 404


async def test_admin_acts_for_another_user_from_210(api: Api) -> None:
    demo = await _user_id(api, "demo")
    created = await _import(api, "for-demo", version="2.10", user="admin", user_id=demo)
    assert created["user_id"] == demo
    assert (await api.request("GET", f"{K}/for-demo")).status_code == 200
    resp = await api.request("GET", f"{K}?user_id={demo}", user="admin", version="2.10")
    assert [k["keypair"]["name"] for k in resp.json()["keypairs"]] == ["for-demo"]
    resp = await api.request("GET", f"{K}/for-demo?user_id={demo}", user="admin",
                             version="2.10")
    assert resp.json()["keypair"]["user_id"] == demo
    admin = await _user_id(api, "admin")
    assert (await api.request("GET", f"{K}?user_id={admin}", version="2.10")).status_code == 403
    resp = await api.request("POST", K, version="2.10", json={"keypair": {
        "name": "sneaky", "public_key": _public_key(), "user_id": admin}})
    assert resp.status_code == 403
    # before 2.10 user_id is not a field of the body
    resp = await api.request("POST", K, user="admin", version="2.9", json={"keypair": {
        "name": "x", "public_key": _public_key(), "user_id": demo}})
    assert resp.status_code == 400
    resp = await api.request("DELETE", f"{K}/for-demo?user_id={demo}", user="admin",
                             version="2.10")
    assert resp.status_code == 204


async def test_x509_keypair(api: Api) -> None:
    resp = await api.request("POST", K, version="2.2", json={"keypair": {
        "name": "cert", "type": "x509"}})
    assert resp.status_code == 201
    body = resp.json()["keypair"]
    assert body["type"] == "x509" and body["private_key"]
    assert body["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(body["fingerprint"].split(":")) == 20
    resp = await api.request("POST", K, version="2.2", json={"keypair": {
        "name": "c2", "type": "x509", "public_key": body["public_key"]}})
    assert resp.json()["keypair"]["fingerprint"] == body["fingerprint"]


async def test_boot_with_keypair(api: Api) -> None:
    created = await _import(api, "bootkey")
    server = await boot(api, key_name="bootkey")
    assert server["key_name"] == "bootkey"
    instance = await api.cloud.services.compute.get(RequestContext.admin(), server["id"])
    assert instance.key_data == created["public_key"]
