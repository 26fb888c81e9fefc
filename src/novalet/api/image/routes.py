"""The image API's one route table (Glance v2 subset, mounted at /image)."""

from __future__ import annotations

from starlette.routing import Route

from novalet.api.handler import IMAGE, Handler, endpoint
from novalet.api.image import image_data, image_members, image_tags, images, schemas, versions


def _r(path: str, methods: list[str], handler: Handler, auth: bool = True) -> Route:
    return Route(path, endpoint(IMAGE, handler, auth=auth), methods=methods)


V = "/v2"
IMG = V + "/images/{image_id}"
ROUTES = [
    _r("/", ["GET"], versions.index, auth=False),
    _r("/versions", ["GET"], versions.listing, auth=False),
    _r(V, ["GET"], versions.index, auth=False),
    _r(V + "/", ["GET"], versions.index, auth=False),
    _r(V + "/info/import", ["GET"], versions.import_info),
    _r(V + "/schemas/image", ["GET"], schemas.image),
    _r(V + "/schemas/images", ["GET"], schemas.images),
    _r(V + "/schemas/member", ["GET"], schemas.member),
    _r(V + "/schemas/members", ["GET"], schemas.members),
    _r(V + "/images", ["GET"], images.index),
    _r(V + "/images", ["POST"], images.create),
    _r(IMG, ["GET"], images.show),
    _r(IMG, ["PATCH"], images.update),
    _r(IMG, ["DELETE"], images.delete),
    _r(IMG + "/tasks", ["GET"], images.tasks),
    _r(IMG + "/actions/deactivate", ["POST"], images.deactivate),
    _r(IMG + "/actions/reactivate", ["POST"], images.reactivate),
    _r(IMG + "/file", ["PUT"], image_data.upload),
    _r(IMG + "/file", ["GET"], image_data.download),
    _r(IMG + "/tags/{tag}", ["PUT"], image_tags.add),
    _r(IMG + "/tags/{tag}", ["DELETE"], image_tags.delete),
    _r(IMG + "/members", ["GET"], image_members.index),
    _r(IMG + "/members", ["POST"], image_members.create),
    _r(IMG + "/members/{member_id}", ["GET"], image_members.show),
    _r(IMG + "/members/{member_id}", ["PUT"], image_members.update),
    _r(IMG + "/members/{member_id}", ["DELETE"], image_members.delete),
]
