"""List queries of the network API, for every resource: filters, fields, sorting, paging.

As Neutron answers them:
- any other query key filters on that attribute; a repeated key matches any of its
  values, an empty value is ignored; an attribute the resource doesn't have (or
  can't be filtered on) is a 400, as with Neutron's filter validation;
- `fields=` (repeatable) keeps only those attributes of each item;
- `sort_key`/`sort_dir` (repeatable, paired one to one; asc or desc), the id always
  last; an attribute that can't be sorted on is a 400;
- `limit` (an integer >= 0; 0 means all, above MAX_LIMIT it is MAX_LIMIT),
  `marker` (the id of the item the page starts after; 404 when no such item is
  visible) and `page_reverse` (the page before the marker), with
  `<collection>_links` next and previous.
- on collections whose items have `tags` (standard-attr-tag), `tags` (every one of
  the comma-separated tags), `tags-any` (one of them), `not-tags` (not every one),
  `not-tags-any` (none of them); repeated keys add tags.
Items are the views already built for the caller, so a filter or sort key never
reaches what the caller can't see. Values are compared exactly: no patterns.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from novalet import exceptions

MAX_LIMIT = 1000
MAX_VALUES = 100  # values of one filter, fields or sort keys in one query
CONTROL = ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse")
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")

# Turns a query value into the attribute's type (raises BadQuery when it can't).
Converter = Callable[[str, str], Any]


class BadQuery(exceptions.Invalid):
    msg_fmt = "%(reason)s"


def as_text(name: str, value: str) -> str:
    return value


def as_bool(name: str, value: str) -> bool:
    """Neutron's convert_to_boolean: true/false (any case) or 1/0."""
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadQuery(reason=f"Invalid input for operation: '{value}' cannot be converted to "
                   f"boolean (filter {name}); use true or false.")


def as_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadQuery(reason=f"Invalid input for operation: '{value}' is not an integer "
                       f"(filter {name}).") from None


@dataclass(frozen=True)
class Field:
    """An attribute lists can filter (with `convert`) and sort on."""

    convert: Converter = as_text
    sortable: bool = True


@dataclass(frozen=True)
class ListQuery:
    filters: dict[str, list[Any]]
    fields: list[str]
    sorts: list[tuple[str, bool]]  # (attribute, ascending)
    limit: int | None
    marker: str | None
    page_reverse: bool
    tag_filters: dict[str, set[str]] = field(default_factory=dict)


def _values(query: QueryParams, key: str) -> list[str]:
    values = [v for v in query.getlist(key) if v]
    if len(values) > MAX_VALUES:
        raise BadQuery(reason=f"Too many values for {key} ({len(values)}); at most "
                       f"{MAX_VALUES} are taken.")
    return values


def parse(query: QueryParams, attributes: Mapping[str, Field]) -> ListQuery:
    """The list query of a request to a collection with these attributes."""
    filters: dict[str, list[Any]] = {}
    tag_filters: dict[str, set[str]] = {}
    for key in dict.fromkeys(query.keys()):
        if key in CONTROL:
            continue
        if key in TAG_FILTERS and "tags" in attributes:
            tags = {t for v in _values(query, key) for t in v.split(",") if t}
            if tags:
                tag_filters[key] = tags
            continue
        if key not in attributes:
            raise BadQuery(reason=f"[{key}] is invalid attribute for filtering; filter on "
                           f"one of: {', '.join(sorted(attributes))}")
        values = [attributes[key].convert(key, v) for v in _values(query, key)]
        if values:
            filters[key] = values
    return ListQuery(filters, fields=_values(query, "fields"), sorts=_sorts(query, attributes),
                     limit=_limit(query), marker=query.get("marker") or None,
                     page_reverse=as_bool("page_reverse", query.get("page_reverse") or "false"),
                     tag_filters=tag_filters)


def _sorts(query: QueryParams, attributes: Mapping[str, Field]) -> list[tuple[str, bool]]:
    keys, dirs = _values(query, "sort_key"), _values(query, "sort_dir")
    if len(keys) != len(dirs):
        raise BadQuery(reason="The number of sort_keys and sort_dirs must be same: give a "
                       "sort_dir (asc or desc) for each sort_key")
    bad = [k for k in keys if k not in attributes or not attributes[k].sortable]
    if bad:
        raise BadQuery(reason=f"{bad} is invalid attribute for sort_keys")
    wrong = [d for d in dirs if d not in ("asc", "desc")]
    if wrong:
        raise BadQuery(reason=f"{wrong} is invalid value for sort_dirs, valid value is "
                       "'asc' and 'desc'")
    return [(k, d == "asc") for k, d in zip(keys, dirs, strict=True)]


def _limit(query: QueryParams) -> int | None:
    text = query.get("limit", "0") or "0"
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise BadQuery(reason=f"Bad limit request: Limit must be an integer 0 or greater "
                       f"and not '{text[:40]}'.")
    return min(limit, MAX_LIMIT) or None


def _matches(item: Mapping[str, Any], filters: Mapping[str, list[Any]]) -> bool:
    for key, wanted in filters.items():
        if key not in item:
            return False
        value = item[key]
        if isinstance(value, list):
            if not any(v in wanted for v in value):
                return False
        elif value not in wanted:
            return False
    return True


def _tagged(item: Mapping[str, Any], filters: Mapping[str, set[str]]) -> bool:
    have = set(item.get("tags") or ())
    for key, wanted in filters.items():
        if key == "tags" and not wanted <= have:
            return False
        if key == "tags-any" and not wanted & have:
            return False
        if key == "not-tags" and wanted <= have:
            return False
        if key == "not-tags-any" and wanted & have:
            return False
    return True


def _compare(a: Mapping[str, Any], b: Mapping[str, Any], sorts: Sequence[tuple[str, bool]]
             ) -> int:
    """Neutron's order: None before any value; each key ascending or descending."""
    for key, ascending in sorts:
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if x is None or y is None:
            result = -1 if x is None else 1
        else:
            result = -1 if x < y else 1
        return result if ascending else -result
    return 0


def select_fields(item: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The item with only `fields` (all of it when none are asked for)."""
    if not fields:
        return dict(item)
    return {k: v for k, v in item.items() if k in fields}


def apply(items: list[dict[str, Any]], q: ListQuery, collection: str, url: str,
          query: QueryParams, marker_missing: Callable[[str], exceptions.NovaletError]
          ) -> dict[str, Any]:
    """`{collection: [...]}` (plus `<collection>_links` when paged) from every item
    the caller sees, for the query `q` of the request at `url`."""
    sorts = [*q.sorts, ("id", True)] if "id" not in dict(q.sorts) else q.sorts

    def by_sorts(a: dict[str, Any], b: dict[str, Any]) -> int:
        return _compare(a, b, sorts)

    order = functools.cmp_to_key(by_sorts)
    chosen = sorted((i for i in items if _matches(i, q.filters)
                     and _tagged(i, q.tag_filters)), key=order)
    body: dict[str, Any] = {}
    if q.limit is not None:
        chosen = _page(chosen, items, q, sorts, marker_missing)
        body[f"{collection}_links"] = _links(chosen, q, url, query)
    body[collection] = [select_fields(i, q.fields) for i in chosen]
    return body


def _page(chosen: list[dict[str, Any]], items: list[dict[str, Any]], q: ListQuery,
          sorts: Sequence[tuple[str, bool]],
          marker_missing: Callable[[str], exceptions.NovaletError]) -> list[dict[str, Any]]:
    assert q.limit is not None
    if q.marker is not None:
        mark = next((i for i in items if i.get("id") == q.marker), None)
        if mark is None:
            raise marker_missing(q.marker)
        if q.page_reverse:
            chosen = [i for i in chosen if _compare(i, mark, sorts) < 0]
        else:
            chosen = [i for i in chosen if _compare(i, mark, sorts) > 0]
    return chosen[-q.limit:] if q.page_reverse else chosen[:q.limit]


def _links(page: list[dict[str, Any]], q: ListQuery, url: str, query: QueryParams
           ) -> list[dict[str, str]]:
    """Neutron's: next unless a forward page came short, previous unless a
    backward page came short; each carries the request's query with a new marker."""
    assert q.limit is not None
    kept = [(k, v) for k, v in query.multi_items() if k not in ("marker", "page_reverse")]
    links = []
    short = len(page) < q.limit
    if not (short and not q.page_reverse):
        marker = [("marker", str(page[-1]["id"]))] if page else []
        links.append({"rel": "next", "href": f"{url}?{urlencode(kept + marker)}"})
    if not (short and q.page_reverse):
        marker = [("marker", str(page[0]["id"]))] if page else []
        links.append({"rel": "previous",
                      "href": f"{url}?{urlencode(kept + marker + [('page_reverse', 'True')])}"})
    return links
