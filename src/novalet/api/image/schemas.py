"""JSON schemas of the image API: served at /v2/schemas/* and used to validate requests."""

from __future__ import annotations

from typing import Any

from novalet.api.handler import ApiRequest
from novalet.db.limits import INT_MAX
from novalet.image.api import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    MEMBER_STATUSES,
    READ_ONLY,
    RESERVED,
    STATUSES,
    VISIBILITIES,
)

UUID_PATTERN = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                "-([0-9a-fA-F]){12}$")
PROJECT_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_READ_ONLY_STRING = {"type": "string", "readOnly": True}
_TIMESTAMP = {"type": "string", "readOnly": True, "format": "date-time"}
_SIZE = {"type": ["null", "integer"], "readOnly": True}
_COUNT = {"type": "integer", "minimum": 0, "maximum": INT_MAX}

IMAGE_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "pattern": UUID_PATTERN,
           "description": "An identifier for the image"},
    "name": {"type": ["null", "string"], "maxLength": 255,
             "description": "Descriptive name for the image"},
    "status": {"type": "string", "readOnly": True, "enum": list(STATUSES)},
    "visibility": {"type": "string", "enum": list(VISIBILITIES),
                   "description": "Scope of image accessibility"},
    "protected": {"type": "boolean",
                  "description": "If true, the image will not be deletable."},
    "os_hidden": {"type": "boolean",
                  "description": "If true, the image will not appear in default listings"},
    "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32},
    "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64},
    "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128},
    "owner": {**PROJECT_ID, "type": ["null", "string"],
              "description": "Owner of the image"},
    "size": _SIZE,
    "virtual_size": _SIZE,
    "min_ram": {**_COUNT, "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {**_COUNT, "description": "Amount of disk space (in GB) required to boot "
                                          "image."},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS],
                    "description": "Format of the disk"},
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS],
                         "description": "Format of the container"},
    "created_at": _TIMESTAMP,
    "updated_at": _TIMESTAMP,
    "tags": {"type": "array", "maxItems": 128,
             "items": {"type": "string", "minLength": 1, "maxLength": 255}},
    "self": _READ_ONLY_STRING,
    "file": _READ_ONLY_STRING,
    "schema": _READ_ONLY_STRING,
}

PROPERTY_VALUE = {"type": "string", "maxLength": 65535}

IMAGE: dict[str, Any] = {
    "name": "image",
    "type": "object",
    "properties": IMAGE_PROPERTIES,
    "propertyNames": {"minLength": 1, "maxLength": 255},
    "additionalProperties": PROPERTY_VALUE,
    "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
              {"rel": "describedby", "href": "{schema}"}],
}

# Creation takes any value for read-only and reserved names, so that the image service
# refuses them with Glance's 403 rather than a type error.
IMAGE_CREATE: dict[str, Any] = {
    **IMAGE, "properties": {**IMAGE_PROPERTIES,
                            **{name: {} for name in (*READ_ONLY, *RESERVED) if name != "id"}},
}

IMAGES: dict[str, Any] = {
    "name": "images",
    "properties": {"images": {"type": "array", "items": IMAGE},
                   "schema": {"type": "string"}, "first": {"type": "string"},
                   "next": {"type": "string"}},
    "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
              {"rel": "describedby", "href": "{schema}"}],
}

MEMBER: dict[str, Any] = {
    "name": "member",
    "properties": {
        "created_at": _TIMESTAMP, "updated_at": _TIMESTAMP,
        "image_id": {"type": "string", "pattern": UUID_PATTERN},
        "member_id": {"type": "string"},
        "schema": _READ_ONLY_STRING,
        "status": {"type": "string", "enum": list(MEMBER_STATUSES)},
    },
}

MEMBERS: dict[str, Any] = {
    "name": "members",
    "properties": {"members": {"type": "array", "items": MEMBER},
                   "schema": {"type": "string"}},
    "links": [{"rel": "describedby", "href": "{schema}"}],
}

MEMBER_CREATE: dict[str, Any] = {
    "type": "object", "properties": {"member": PROJECT_ID}, "required": ["member"],
}

MEMBER_UPDATE: dict[str, Any] = {
    "type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"],
}


async def image(req: ApiRequest) -> dict[str, Any]:
    return IMAGE


async def images(req: ApiRequest) -> dict[str, Any]:
    return IMAGES


async def member(req: ApiRequest) -> dict[str, Any]:
    return MEMBER


async def members(req: ApiRequest) -> dict[str, Any]:
    return MEMBERS
