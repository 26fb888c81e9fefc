"""The query string of GET /v2/images: filters, sorting and paging, as Glance reads them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from novalet.api.validation import ValidationError, query_int
from novalet.db.images import SORT_KEYS, ImageQuery
from novalet.image.api import MEMBER_STATUSES, STATUSES, VISIBILITIES

DEFAULT_LIMIT = 25
# Filters on a column; each accepts one value or "in:a,b,c".
_MATCH = ("id", "name", "status", "disk_format", "container_format", "owner")
_BOOLEAN = ("os_hidden", "protected")
_CONTROL = {"limit", "marker", "sort", "sort_key", "sort_dir", "visibility",
            "member_status", "tag", "size_min", "size_max", *_MATCH, *_BOOLEAN}
_UNSUPPORTED = ("created_at", "updated_at")


def parse(query: QueryParams, max_limit: int) -> ImageQuery:
    """An ImageQuery (for any viewer) from the query string, or a 400 naming the
    offending parameter."""
    limit = query_int(query.get("limit"), "limit")
    return ImageQuery(
        viewer=None,
        visibility=_choice(query, "visibility", (*VISIBILITIES, "all")),
        member_status=_choice(query, "member_status", (*MEMBER_STATUSES, "all"))
        or "accepted",
        match=_matches(query),
        properties={k: v for k, v in query.items() if k not in _CONTROL},
        tags=query.getlist("tag"),
        size_min=query_int(query.get("size_min"), "size_min"),
        size_max=query_int(query.get("size_max"), "size_max"),
        sort=_sort(query),
        marker=query.get("marker"),
        limit=min(DEFAULT_LIMIT if limit is None else limit, max_limit),
    )


def page_links(query: QueryParams, next_marker: str | None) -> dict[str, str]:
    """'first' (and 'next' when another page follows) keeping the caller's filters."""
    params = [(k, v) for k, v in query.multi_items() if k != "marker"]
    links = {"first": _link(params)}
    if next_marker is not None:
        links["next"] = _link([*params, ("marker", next_marker)])
    return links


def _link(params: list[tuple[str, str]]) -> str:
    return "/v2/images" + (f"?{urlencode(params)}" if params else "")


def _choice(query: QueryParams, name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise ValidationError(reason=f"Invalid {name} value: {value}. It should be one "
                                     f"of: {', '.join(allowed)}.")
    return value


def _matches(query: QueryParams) -> dict[str, list[Any]]:
    for name in _UNSUPPORTED:
        if name in query:
            raise ValidationError(reason=f"Filtering images by {name} is not supported.")
    match: dict[str, list[Any]] = {}
    for name in _MATCH:
        if name in query:
            raw = query[name]
            match[name] = raw[3:].split(",") if raw.startswith("in:") else [raw]
    for status in match.get("status", []):
        if status not in STATUSES:
            raise ValidationError(reason=f"Invalid status value: {status}.")
    for name in _BOOLEAN:
        if name in query:
            match[name] = [_boolean(name, query[name])]
    match.setdefault("os_hidden", [False])
    return match


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValidationError(reason=f"Invalid value for {name}: {raw}. It should be "
                                     "true or false.")
    return lowered == "true"


def _sort(query: QueryParams) -> list[tuple[str, str]]:
    keys, dirs = query.getlist("sort_key"), query.getlist("sort_dir")
    if "sort" in query:
        if keys or dirs:
            raise ValidationError(reason="The sort parameter cannot be combined with "
                                         "sort_key or sort_dir.")
        pairs = [_pair(item) for item in query["sort"].split(",") if item.strip()]
    else:
        pairs = _legacy_pairs(keys or ["created_at"], dirs or ["desc"])
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise ValidationError(reason=f"Invalid sort key: {key}. It should be one of "
                                         f"the following: {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise ValidationError(reason=f"Invalid sort direction: {direction}. It should "
                                         "be asc or desc.")
    return pairs


def _pair(item: str) -> tuple[str, str]:
    key, _, direction = item.strip().partition(":")
    return key, direction or "desc"


def _legacy_pairs(keys: list[str], dirs: list[str]) -> list[tuple[str, str]]:
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    if len(dirs) != len(keys):
        raise ValidationError(reason="The number of sort_dir values must be one or match "
                                     "the number of sort_key values.")
    return list(zip(keys, dirs, strict=True))
