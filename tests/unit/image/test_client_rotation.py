"""ImageClient.rotate_backups against a scripted image API: every page read, newest
first kept, the rest deleted, one failed delete not stopping the others; only the
instance's project's images count."""

from __future__ import annotations

import json

import httpx

from novalet import config
from novalet.image.client import ImageClient

IMAGES = "http://image.test/v2/images"


def _transport(backups: list[str], refuse: set[str], seen: list[str]) -> httpx.MockTransport:
    """`backups` newest first, served two per page; DELETE of an id in `refuse` fails.
    Ids starting with x are another project's (the owner filter is ignored, as a
    careless image API might)."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        if request.url.path.endswith("/auth/tokens"):
            catalog = [{"type": "image", "endpoints": [
                {"interface": "public", "url": "http://image.test"}]}]
            return httpx.Response(201, headers={"X-Subject-Token": "t"},
                                  json={"token": {"catalog": catalog}})
        if request.method == "DELETE":
            image_id = request.url.path.rsplit("/", 1)[-1]
            return httpx.Response(409 if image_id in refuse else 204)
        params = request.url.params
        assert (params["image_type"], params["backup_type"], params["sort_dir"],
                params["owner"]) == ("backup", "daily", "desc", "p1")
        start = backups.index(params["marker"]) + 1 if "marker" in params else 0
        page = backups[start:start + 2]
        body = {"images": [{"id": i, "owner": "evil" if i.startswith("x") else "p1"}
                           for i in page]}
        if start + 2 < len(backups):
            body["next"] = f"/v2/images?marker={page[-1]}"
        return httpx.Response(200, content=json.dumps(body))

    return httpx.MockTransport(handle)


async def test_rotation_reads_every_page_and_deletes_the_oldest() -> None:
    seen: list[str] = []
    backups = ["b5", "b4", "b3", "b2", "b1"]
    client = ImageClient(config.Config(), transport=_transport(backups, {"b2"}, seen))
    deleted = await client.rotate_backups("inst", "daily", 2, "p1")
    assert deleted == ["b3", "b1"]  # b2 refused: logged, the rest go on
    assert [s.split("?")[0] for s in seen if s.startswith("DELETE")] == [
        "DELETE /v2/images/b3", "DELETE /v2/images/b2", "DELETE /v2/images/b1"]
    assert sum(s.startswith("GET") for s in seen) == 3  # three pages of two


async def test_rotation_zero_deletes_every_backup() -> None:
    seen: list[str] = []
    client = ImageClient(config.Config(), transport=_transport(["b2", "b1"], set(), seen))
    assert await client.rotate_backups("inst", "daily", 0, "p1") == ["b2", "b1"]


async def test_another_projects_images_neither_count_nor_go() -> None:
    """Images another project tagged with this instance's uuid: not rotated out, and
    they push none of the instance's own backups out either."""
    seen: list[str] = []
    backups = ["x6", "x5", "b4", "x3", "b2", "x1"]
    client = ImageClient(config.Config(), transport=_transport(backups, set(), seen))
    assert await client.rotate_backups("inst", "daily", 1, "p1") == ["b2"]
