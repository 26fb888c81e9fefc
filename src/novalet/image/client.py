"""The image service as compute hosts reach it: over HTTP, as the service user.

Compute hosts have no database, so they fetch image data and upload snapshots
through the image API, authenticating with the [service_user] credentials.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from novalet import config, exceptions
from novalet.virt.driver import ImageFetcher, ImageMeta

LOG = logging.getLogger(__name__)
_CHUNK = 1 << 20


class ImageTransferError(exceptions.NovaletError):
    msg_fmt = "Image %(image_id)s: %(reason)s"


class ImageClient(ImageFetcher):
    def __init__(self, conf: config.Config,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """`transport` lets an in-process cloud (tests) answer without a socket."""
        self.conf = conf
        self.transport = transport
        self._token: str | None = None
        self._token_expires = 0.0
        self._image_url: str | None = None

    def _client(self, timeout: httpx.Timeout) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout, transport=self.transport)

    @property
    def _auth_url(self) -> str:
        url = self.conf.get("service_user", "auth_url")
        return str(url or f"{self.conf.public_url}/identity/v3").rstrip("/")

    async def _auth(self, client: httpx.AsyncClient) -> dict[str, str]:
        if self._token is None or time.monotonic() > self._token_expires:
            await self._login(client)
        assert self._token is not None
        return {"X-Auth-Token": self._token}

    async def _login(self, client: httpx.AsyncClient) -> None:
        conf = self.conf
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": conf.get("service_user", "username"), "domain": {"id": "default"},
            "password": conf.get("service_user", "password")}}},
            "scope": {"project": {"name": conf.get("service_user", "project_name"),
                                  "domain": {"id": "default"}}}}}
        resp = await client.post(f"{self._auth_url}/auth/tokens", json=body)
        if resp.status_code != 201:
            raise ImageTransferError(image_id="-", reason=(
                f"service user can't log in at {self._auth_url} ({resp.status_code}); "
                "check [service_user] in the config"))
        self._token = resp.headers["X-Subject-Token"]
        self._token_expires = time.monotonic() + 600
        catalog = resp.json()["token"].get("catalog", [])
        self._image_url = _public_endpoint(catalog, "image")

    async def fetch(self, image: ImageMeta, dest: str) -> None:
        """Stream the image's data to dest, checking size and hash as it arrives."""
        md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
        size = 0
        async with self._client(httpx.Timeout(60, read=300)) as client:
            headers = await self._auth(client)
            url = f"{self._image_url}/v2/images/{image.id}/file"
            async with client.stream("GET", url, headers=headers) as resp:
                if resp.status_code != 200:
                    raise ImageTransferError(image_id=image.id,
                                             reason=f"download answered {resp.status_code}")
                with open(dest, "wb") as out:
                    async for chunk in resp.aiter_bytes(_CHUNK):
                        out.write(chunk)
                        md5.update(chunk)
                        sha.update(chunk)
                        size += len(chunk)
        _verify(image, size, md5.hexdigest(), sha.hexdigest())
        LOG.info("Fetched image %s (%d bytes)", image.id, size)

    async def upload(self, image_id: str, source: str, disk_format: str) -> None:
        async with self._client(httpx.Timeout(60, write=600)) as client:
            headers = await self._auth(client)
            base = f"{self._image_url}/v2/images/{image_id}"
            patch = [{"op": "replace", "path": "/disk_format", "value": disk_format}]
            await client.patch(base, json=patch, headers={
                **headers, "Content-Type": "application/openstack-images-v2.1-json-patch"})
            resp = await client.put(f"{base}/file", content=_read_chunks(source), headers={
                **headers, "Content-Type": "application/octet-stream"})
            if resp.status_code != 204:
                raise ImageTransferError(image_id=image_id, reason=(
                    f"upload answered {resp.status_code}: {resp.text[:200]}"))

    async def rotate_backups(self, instance_uuid: str, backup_type: str,
                             rotation: int, owner: str) -> list[str]:
        """As Nova's _rotate_backups: the backups (image_type backup) of this type and
        instance, newest first; those past `rotation` are deleted, one failure not
        stopping the others. Only images of project `owner` (the instance's) count:
        the service user sees every project's, and anyone may tag an image with
        another's instance_uuid to push that instance's backups out."""
        deleted: list[str] = []
        async with self._client(httpx.Timeout(60)) as client:
            headers = await self._auth(client)
            images = await self._backups(client, headers, instance_uuid, backup_type, owner)
            for image_id in images[rotation:]:
                resp = await client.delete(f"{self._image_url}/v2/images/{image_id}",
                                           headers=headers)
                if resp.status_code in (204, 404):
                    deleted.append(image_id)
                else:
                    LOG.warning("Could not delete backup %s of %s while rotating: %d %s",
                                image_id, instance_uuid, resp.status_code, resp.text[:200])
        return deleted

    async def _backups(self, client: httpx.AsyncClient, headers: dict[str, str],
                       instance_uuid: str, backup_type: str, owner: str) -> list[str]:
        """Ids of the instance's backups of `backup_type` owned by `owner`, newest
        first (every page; an image of another owner the API returned anyway is
        skipped)."""
        params = {"image_type": "backup", "backup_type": backup_type,
                  "instance_uuid": instance_uuid, "owner": owner,
                  "sort_key": "created_at", "sort_dir": "desc"}
        ids: list[str] = []
        while True:
            resp = await client.get(f"{self._image_url}/v2/images", params=params,
                                    headers=headers)
            if resp.status_code != 200:
                raise ImageTransferError(image_id="-", reason=(
                    f"listing backups answered {resp.status_code}"))
            page = resp.json()
            images = page.get("images") or []
            ids += [image["id"] for image in images if image.get("owner") == owner]
            if not page.get("next") or not images:
                return ids
            params["marker"] = images[-1]["id"]


async def _read_chunks(path: str) -> Any:
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _verify(image: ImageMeta, size: int, md5: str, sha512: str) -> None:
    if image.size is not None and size != image.size:
        raise ImageTransferError(image_id=image.id,
                                 reason=f"got {size} bytes, expected {image.size}")
    if image.os_hash_algo == "sha512" and image.os_hash_value and \
            sha512 != image.os_hash_value:
        raise ImageTransferError(image_id=image.id, reason="sha512 does not match")
    if image.checksum and md5 != image.checksum:
        raise ImageTransferError(image_id=image.id, reason="md5 checksum does not match")


def _public_endpoint(catalog: list[dict[str, Any]], service_type: str) -> str:
    for service in catalog:
        if service.get("type") == service_type:
            for endpoint in service.get("endpoints", []):
                if endpoint.get("interface") == "public":
                    return str(endpoint["url"]).rstrip("/")
    raise ImageTransferError(image_id="-", reason=f"no {service_type} endpoint in catalog")
