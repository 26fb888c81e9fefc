"""Handlers for /images: Nova's proxy of the image service (404 from 2.36; use the
image API). Lists, shows and deletes the images the caller may see, in Nova's
view of them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from novalet import exceptions
from novalet.api.compute.schemas import images as schemas
from novalet.api.handler import ApiRequest, Reply, VersionNotFound
from novalet.api.validation import ValidationError, accepts, query_int
from novalet.common.timeutils import parse_isotime
from novalet.db.images import ImageQuery
from novalet.image.api import properties_of
from novalet.policy import enforce

REMOVED = "2.36"

# Image service status -> (Nova's status, progress)
_STATUS = {"active": ("ACTIVE", 100), "queued": ("SAVING", 25), "saving": ("SAVING", 50),
           "deleted": ("DELETED", 0), "pending_delete": ("DELETED", 0),
           "killed": ("ERROR", 0)}


def check_version(req: ApiRequest, removed: str = REMOVED) -> None:
    if req.at_least(removed):
        raise VersionNotFound()


def _links(req: ApiRequest, collection: str, item_id: str) -> list[dict[str, str]]:
    base = req.app.conf.public_url
    return [{"rel": "self", "href": f"{base}/compute/v2.1/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{base}/compute/{collection}/{item_id}"}]


def basic_view(req: ApiRequest, image: dict[str, Any]) -> dict[str, Any]:
    return {"id": image["id"], "name": image.get("name"), "links": _image_links(req, image)}


def _image_links(req: ApiRequest, image: dict[str, Any]) -> list[dict[str, str]]:
    return [*_links(req, "images", image["id"]),
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{req.app.conf.public_url}/image/images/{image['id']}"}]


def detail_view(req: ApiRequest, image: dict[str, Any]) -> dict[str, Any]:
    """Nova's image: sizes and dates renamed, status in capitals with a progress,
    the properties as metadata, the server a snapshot was taken of."""
    metadata = properties_of(image)
    status, progress = _STATUS.get(image["status"], ("UNKNOWN", 0))
    body: dict[str, Any] = {
        "id": image["id"], "name": image.get("name"),
        "minRam": int(image.get("min_ram") or 0), "minDisk": int(image.get("min_disk") or 0),
        "metadata": metadata, "created": image.get("created_at"),
        "updated": image.get("updated_at"), "status": status, "progress": progress,
        "OS-EXT-IMG-SIZE:size": image.get("size"), "links": _image_links(req, image)}
    server = metadata.get("instance_uuid")
    if server is not None:
        body["server"] = {"id": server, "links": _links(req, "servers", str(server))}
    auto = metadata.get("auto_disk_config")
    if auto is not None:
        body["OS-DCF:diskConfig"] = "AUTO" if str(auto).lower() in (
            "1", "true", "yes", "on", "y", "t") else "MANUAL"
    return body


def _query(req: ApiRequest) -> ImageQuery:
    """Nova's filters as the image service takes them; limit and marker page."""
    params = req.query
    properties = {k.removeprefix("property-"): v for k, v in params.items()
                  if k.startswith("property-")}
    if params.get("server"):
        properties["instance_uuid"] = params["server"].rsplit("/", 1)[-1]
    if params.get("type"):
        properties["image_type"] = params["type"]
    match: dict[str, list[Any]] = {"os_hidden": [False]}
    for name, column in (("name", "name"), ("status", "status")):
        if name in params:
            match[column] = [params[name].lower() if name == "status" else params[name]]
    for name, column in (("minRam", "min_ram"), ("minDisk", "min_disk")):
        if name in params:
            match[column] = [query_int(params[name], name)]
    max_limit = req.app.conf.get("api", "max_limit")
    limit = query_int(params.get("limit"), "limit") or max_limit
    return ImageQuery(viewer=None, match=match, properties=properties,
                      updated_since=_changes_since(params.get("changes-since")),
                      marker=params.get("marker"), limit=min(limit, max_limit))


def _changes_since(raw: str | None) -> Any:
    if not raw:
        return None
    try:
        return parse_isotime(raw)
    except ValueError:
        raise ValidationError(reason=f"Invalid input for query parameters changes-since. "
                              f"Value: {raw}. It is not an ISO 8601 time.") from None


async def _list(req: ApiRequest, path: str) -> tuple[list[dict[str, Any]], list[Any]]:
    check_version(req)
    enforce(req.ctx, "image:get_images")
    query = _query(req)
    images, _ = await req.app.images.list_images(req.ctx, query)
    links = []
    if images and len(images) == query.limit:  # as Nova: a full page has a next link
        params = [(k, v) for k, v in req.query.multi_items() if k != "marker"]
        params.append(("marker", images[-1]["id"]))
        links.append({"rel": "next", "href": f"{req.app.conf.public_url}/compute/v2.1/"
                                             f"{path}?{urlencode(params)}"})
    return images, links


def _page(key: str, items: list[dict[str, Any]], links: list[Any]) -> dict[str, Any]:
    body: dict[str, Any] = {key: items}
    if links:
        body["images_links"] = links
    return body


@accepts(query=schemas.LIST_QUERY)
async def index(req: ApiRequest) -> dict[str, Any]:
    images, links = await _list(req, "images")
    return _page("images", [basic_view(req, i) for i in images], links)


@accepts(query=schemas.LIST_QUERY)
async def detail(req: ApiRequest) -> dict[str, Any]:
    images, links = await _list(req, "images/detail")
    return _page("images", [detail_view(req, i) for i in images], links)


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    check_version(req)
    enforce(req.ctx, "image:get_image")
    return {"image": detail_view(req, await req.app.images.get(req.ctx, req.path["image_id"]))}


@accepts()
async def delete_without_id(req: ApiRequest) -> Reply:
    """DELETE /images/ (an empty image id): 404 as in Nova, whose router matches no
    route there, instead of the 405 a slash redirect to the list would give."""
    check_version(req)
    raise exceptions.NotFound("The resource could not be found.")


@accepts()
async def delete(req: ApiRequest) -> Reply:
    """The image service decides (403 unless the caller's project owns it)."""
    check_version(req)
    await req.app.images.delete(req.ctx, req.path["image_id"])
    return Reply(None, 204)

