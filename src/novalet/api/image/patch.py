"""PATCH /v2/images/{id} bodies: the openstack-images-v2.1 JSON-patch dialect."""

from __future__ import annotations

from typing import Any

from novalet import exceptions
from novalet.api.image import schemas
from novalet.api.validation import ValidationError, validate
from novalet.image.api import READ_ONLY, RESERVED, PatchOp

MEDIA_TYPE = "application/openstack-images-v2.1-json-patch"
_OPS = ("add", "replace", "remove")


class UnsupportedMediaType(exceptions.NovaletError):
    msg_fmt = "Unsupported Content-Type %(given)s; send %(wanted)s."
    code = 415


def check_media_type(content_type: str | None, wanted: str) -> None:
    given = (content_type or "").split(";")[0].strip().lower()
    if given != wanted:
        raise UnsupportedMediaType(given=given or "(none)", wanted=wanted)


def parse(body: Any) -> list[PatchOp]:
    """Operations from a JSON-patch document, each value checked against the image
    schema; a 400 says which operation is wrong."""
    if not isinstance(body, list):
        raise ValidationError(reason="Request body must be a JSON array of operation "
                                     "objects.")
    return [_operation(item) for item in body]


def _operation(item: Any) -> PatchOp:
    if not isinstance(item, dict) or item.get("op") not in _OPS:
        raise ValidationError(reason="Operation objects must contain an 'op' member "
                                     f"that is one of {', '.join(_OPS)}: {item!r}")
    name = _attribute(item.get("path"))
    if item["op"] == "remove":
        return PatchOp("remove", name)
    if "value" not in item:
        raise ValidationError(reason=f"Operation '{item['op']}' on /{name} needs a "
                                     "'value' member.")
    value = item["value"]
    if name in READ_ONLY or name in RESERVED:
        return PatchOp(item["op"], name, value)  # the image service refuses it (403)
    validate({name: value}, {"type": "object", "properties": {
        name: schemas.IMAGE_PROPERTIES.get(name, schemas.PROPERTY_VALUE)}})
    return PatchOp(item["op"], name, value)


def _attribute(path: Any) -> str:
    """The one top-level member a JSON pointer names ('/a~1b' -> 'a/b')."""
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise ValidationError(reason=f"Invalid JSON pointer for this resource: {path!r}")
    segments = path[1:].split("/")
    if len(segments) != 1:
        raise ValidationError(reason=f"Invalid JSON pointer for this resource: '{path}'")
    name = segments[0].replace("~1", "/").replace("~0", "~")
    if len(name) > 255:
        raise ValidationError(reason="Property names are at most 255 characters long.")
    return name
