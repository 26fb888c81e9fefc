"""The query string of GET /servers turned into a ListQuery, with Nova's rules.

Which filters a caller may use is Nova's list: admins (os_compute_api:servers:
allow_all_filters) every documented one; others those of _NON_ADMIN for their
microversion, and the rest are silently dropped, as Nova drops them. Scoping
(whose servers are listed) is not decided here: ComputeAPI.list_servers does it
for every front-end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from novalet.api.compute.schemas.servers import LIST_QUERY_NAMES
from novalet.api.handler import ApiRequest
from novalet.api.validation import ValidationError, query_int, to_bool
from novalet.common.bounded_regex import compile_pattern
from novalet.common.timeutils import parse_isotime
from novalet.compute.states import KNOWN_STATUSES, STATUS_TABLE, TaskState
from novalet.db import instances
from novalet.db.limits import INT_MAX
from novalet.policy import authorize, enforce

_PAGING = {"limit", "marker", "sort_key", "sort_dir"}
# Filters a non-admin may use, from the microversion that allowed them (Nova's
# _get_server_search_options); all_tenants is listed so that it reaches the policy
# check (403) instead of being dropped.
_NON_ADMIN: list[tuple[str, set[str]]] = [
    ("2.1", {"reservation_id", "name", "status", "image", "flavor", "ip",
             "changes-since", "all_tenants"}),
    ("2.5", {"ip6"}),
    ("2.26", {"tags", "tags-any", "not-tags", "not-tags-any"}),
    ("2.66", {"changes-before"}),
    ("2.73", {"locked"}),
    ("2.83", {"availability_zone", "config_drive", "key_name", "created_at",
              "launched_at", "terminated_at", "power_state", "task_state", "vm_state",
              "progress", "user_id"}),
    ("2.90", {"hostname"}),
]
# Only admins may sort by these (403 for others, as Nova).
_ADMIN_SORT_KEYS = {"host", "node"}
# Filters matched as regular expressions (RE2, search) on a column, as Nova's
# database layer matches every filter that is not one of its exact ones.
_PATTERNS = {"name": "display_name", "hostname": "hostname", "node": "node",
             "availability_zone": "availability_zone", "key_name": "key_name",
             "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6",
             "description": "display_description", "created_at": "created_at",
             "launched_at": "launched_at", "terminated_at": "terminated_at",
             "ip": "ip", "ip6": "ip6"}

_Get = Callable[[str], "str | None"]
_GetList = Callable[[str], "list[str]"]


@dataclass
class ServerSearch:
    """What the list handlers pass to ComputeAPI.list_servers."""

    query: instances.ListQuery
    all_tenants: bool


def parse(req: ApiRequest) -> ServerSearch:
    params = req.query
    if req.at_least("2.75"):
        unknown = sorted(set(params.keys()) - set(LIST_QUERY_NAMES))
        if unknown:
            raise ValidationError(reason=f"Invalid input for query parameters {unknown[0]}. "
                                  "Additional properties are not allowed "
                                  f"('{unknown[0]}' was unexpected)")
    every_filter = authorize(req.ctx, "os_compute_api:servers:allow_all_filters")
    allowed = set(params.keys()) if every_filter else set(params.keys()) & _non_admin(req)
    q = instances.ListQuery()
    all_tenants = _all_tenants(params.get("all_tenants")) if "all_tenants" in allowed \
        else False
    if all_tenants:
        project = params.get("project_id") or params.get("tenant_id")
        if project and {"project_id", "tenant_id"} & allowed:
            q.project_id = project

    def get(key: str) -> str | None:
        return params.get(key) if key in allowed else None

    def getlist(key: str) -> list[str]:
        return [v for v in params.getlist(key) if v] if key in allowed else []

    _exact(q, get)
    _states(q, get, getlist)
    _status(req, q, getlist("status"))
    _patterns(q, get)
    _times(q, get)
    _tags(q, get)
    _paging(req, q, every_filter)
    return ServerSearch(q, all_tenants)


def _non_admin(req: ApiRequest) -> set[str]:
    allowed = set(_PAGING)
    for first, names in _NON_ADMIN:
        if req.at_least(first):
            allowed |= names
    return allowed


def _all_tenants(raw: str | None) -> bool:
    """Nova's reading: present and empty means yes; otherwise a boolean string."""
    if raw is None or raw == "":
        return raw == ""
    if raw.lower() in ("true", "1", "yes", "on", "y", "t"):
        return True
    if raw.lower() in ("false", "0", "no", "off", "n", "f"):
        return False
    raise ValidationError(reason=f"Invalid input for query parameters all_tenants. "
                          f"Value: {raw}. Expected a boolean")


def _exact(q: instances.ListQuery, get: _Get) -> None:
    q.image_ref = _last_segment(get("image"))
    q.flavor_id = _last_segment(get("flavor"))
    q.host = get("host")
    q.reservation_id = get("reservation_id")
    q.user_id = get("user_id")
    q.requested_availability_zone = get("pinned_availability_zone")
    if get("uuid"):
        q.uuids = [get("uuid") or ""]
    if get("locked") is not None:
        q.locked = to_bool(get("locked"))
    if get("deleted") is not None:
        q.deleted = to_bool(get("deleted"))
    if get("config_drive") is not None:
        q.config_drive = to_bool(get("config_drive"))
    q.progress = _int(get("progress"), "progress")
    q.launch_index = _int(get("launch_index"), "launch_index")


def _states(q: instances.ListQuery, get: _Get, getlist: _GetList) -> None:
    if getlist("vm_state"):
        q.vm_states = [v.lower() for v in getlist("vm_state")]
    if getlist("task_state"):
        q.task_states = [v.lower() for v in getlist("task_state")]
    if getlist("power_state"):
        q.power_states = [_int(v, "power_state") or 0 for v in getlist("power_state")]


def _patterns(q: instances.ListQuery, get: _Get) -> None:
    for key, column in _PATTERNS.items():
        raw = get(key)
        if raw is not None and raw != "":
            compile_pattern(raw, key)  # a bad pattern is a 400 before anything runs
            q.patterns[column] = raw


def _int(raw: str | None, key: str) -> int | None:
    value = query_int(raw, key)
    if value is not None and value > INT_MAX:
        raise ValidationError(reason=f"Invalid input for query parameters {key}. "
                              f"Value: {raw}. Must be at most {INT_MAX}")
    return value


def _last_segment(ref: str | None) -> str | None:
    return ref.rstrip("/").rsplit("/", 1)[-1] if ref else None


def _status(req: ApiRequest, q: instances.ListQuery, statuses: list[str]) -> None:
    """status sets vm_state and task_state (it overrides those filters, as in Nova)."""
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


def _times(q: instances.ListQuery, get: _Get) -> None:
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


def _tags(q: instances.ListQuery, get: _Get) -> None:
    for key, attr in (("tags", "tags"), ("tags-any", "tags_any"), ("not-tags", "not_tags"),
                      ("not-tags-any", "not_tags_any")):
        raw = get(key)
        if raw:
            setattr(q, attr, [t for t in raw.split(",") if t])


def _paging(req: ApiRequest, q: instances.ListQuery, every_filter: bool) -> None:
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
        if key in _ADMIN_SORT_KEYS and not every_filter:
            enforce(req.ctx, "os_compute_api:servers:allow_all_filters")
        direction = (dirs[i] if i < len(dirs) else (dirs[-1] if dirs else "desc")).lower()
        if direction not in ("asc", "desc"):
            raise ValidationError(reason=f"Invalid input for query parameters sort_dir. "
                                  f"Value: {direction}. Use asc or desc")
        sort.append((key, direction))
    q.sort = sort
