"""The query string of GET /servers turned into a ListQuery, with Nova's rules."""

from __future__ import annotations

import re
from typing import Any

from novalet.api.handler import ApiRequest
from novalet.api.validation import ValidationError, query_int, to_bool
from novalet.common.timeutils import parse_isotime
from novalet.compute.states import KNOWN_STATUSES, STATUS_TABLE, TaskState
from novalet.db import instances
from novalet.policy import authorize

_KNOWN = {"name", "status", "image", "flavor", "host", "reservation_id", "changes-since",
          "changes-before", "tags", "tags-any", "not-tags", "not-tags-any", "all_tenants",
          "project_id", "tenant_id", "user_id", "locked", "availability_zone", "key_name",
          "uuid", "deleted", "limit", "marker", "sort_key", "sort_dir", "ip", "ip6",
          "node", "hostname", "vm_state", "task_state", "power_state", "description",
          "config_drive", "created_at", "launched_at", "terminated_at", "progress",
          "access_ip_v4", "access_ip_v6", "launch_index", "soft_deleted",
          "pinned_availability_zone"}
_ADMIN_ONLY = {"host", "node", "all_tenants", "project_id", "tenant_id", "deleted",
               "vm_state", "task_state", "power_state", "hostname"}
_ADMIN_ONLY_BEFORE_283 = {"availability_zone", "config_drive", "key_name", "created_at",
                          "launched_at", "terminated_at", "progress", "user_id",
                          "vm_state", "task_state", "power_state"}


def parse(req: ApiRequest) -> instances.ListQuery:
    params = req.query
    if req.at_least("2.75"):
        unknown = sorted(set(params.keys()) - _KNOWN)
        if unknown:
            raise ValidationError(reason=f"Invalid input for query parameters {unknown[0]}. "
                                  "Additional properties are not allowed "
                                  f"('{unknown[0]}' was unexpected)")
    admin = authorize(req.ctx, "os_compute_api:servers:index:get_all_tenants")
    q = instances.ListQuery()
    _scope(req, q, admin)
    allowed = set(params.keys()) if admin else set(params.keys()) - _ADMIN_ONLY - (
        set() if req.at_least("2.83") else _ADMIN_ONLY_BEFORE_283)
    get = lambda key: params.get(key) if key in allowed else None  # noqa: E731
    _simple(q, get)
    _status(req, q, params.getlist("status") if "status" in allowed else [])
    _times(q, get)
    _tags(q, get)
    _paging(req, q, admin)
    return q


def _scope(req: ApiRequest, q: instances.ListQuery, admin: bool) -> None:
    params = req.query
    everyone = admin and to_bool(params.get("all_tenants", "false") or "true")
    if "all_tenants" in params and params.get("all_tenants") == "":
        everyone = admin
    project = params.get("project_id") or params.get("tenant_id")
    if admin and project:
        q.project_id = project
    elif not everyone:
        q.project_id = req.ctx.project_id


def _simple(q: instances.ListQuery, get: Any) -> None:
    q.name_regex = _regex(get("name"), "name")
    q.image_ref = _last_segment(get("image"))
    q.flavor_id = _last_segment(get("flavor"))
    q.host = get("host")
    q.reservation_id = get("reservation_id")
    q.availability_zone = get("availability_zone")
    q.key_name = get("key_name")
    q.user_id = get("user_id")
    if get("uuid"):
        q.uuids = [get("uuid")]
    if get("locked") is not None:
        q.locked = to_bool(get("locked"))
    if get("deleted") is not None:
        q.deleted = to_bool(get("deleted"))


def _regex(raw: str | None, key: str) -> str | None:
    """A filter matched as a regular expression must be one (the database would fail)."""
    if raw is None:
        return None
    try:
        re.compile(raw)
    except re.error as exc:
        raise ValidationError(reason=f"Invalid input for query parameters {key}. Value: "
                              f"{raw}. Not a valid regular expression: {exc}") from None
    return raw


def _last_segment(ref: str | None) -> str | None:
    return ref.rstrip("/").rsplit("/", 1)[-1] if ref else None


def _status(req: ApiRequest, q: instances.ListQuery, statuses: list[str]) -> None:
    if not statuses:
        return
    vm_states: set[str] = set()
    task_states: set[str | None] = set()
    for status in statuses:
        status = status.upper()
        if status not in KNOWN_STATUSES:
            if req.at_least("2.38"):
                raise ValidationError(reason=f"Invalid status value: {status}")
            q.uuids = []
            return
        if status == "DELETED":
            q.deleted = True
        for vm, (default, by_task) in STATUS_TABLE.items():
            if default == status:
                vm_states.add(vm)
                task_states.update([None, *[t for t in TaskState if t not in by_task]])
            for task, shown in by_task.items():
                if shown == status:
                    vm_states.add(vm)
                    task_states.add(task)
    q.vm_states = sorted(vm_states)
    q.task_states = list(task_states)


def _times(q: instances.ListQuery, get: Any) -> None:
    for key, attr in (("changes-since", "changes_since"), ("changes-before", "changes_before")):
        raw = get(key)
        if raw:
            try:
                setattr(q, attr, parse_isotime(raw))
            except ValueError:
                raise ValidationError(reason=f"Invalid input for query parameters {key}. "
                                      f"Value: {raw}. '{raw}' is not a 'date-time'") from None
    if q.changes_since and q.changes_before and q.changes_since > q.changes_before:
        raise ValidationError(reason="The value of changes-since must be less than or "
                              "equal to changes-before.")
    if q.changes_since or q.changes_before:
        q.deleted = None


def _tags(q: instances.ListQuery, get: Any) -> None:
    for key, attr in (("tags", "tags"), ("tags-any", "tags_any"), ("not-tags", "not_tags"),
                      ("not-tags-any", "not_tags_any")):
        raw = get(key)
        if raw:
            setattr(q, attr, [t for t in raw.split(",") if t])


def _paging(req: ApiRequest, q: instances.ListQuery, admin: bool) -> None:
    params = req.query
    max_limit = req.app.conf.get("api", "max_limit")
    limit = query_int(params.get("limit"), "limit")
    q.limit = min(limit, max_limit) if limit is not None else max_limit
    q.marker = params.get("marker")
    keys, dirs = params.getlist("sort_key"), params.getlist("sort_dir")
    if not keys:
        return
    sortable = instances.sort_keys()
    sort = []
    for i, key in enumerate(keys):
        if key not in sortable:
            raise ValidationError(reason=f"Invalid input for query parameters sort_key. "
                                  f"Value: {key}. The sort key is not supported")
        direction = (dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "desc")).lower()
        if direction not in ("asc", "desc"):
            raise ValidationError(reason=f"Invalid input for query parameters sort_dir. "
                                  f"Value: {direction}. Use asc or desc")
        sort.append((key, direction))
    q.sort = sort
