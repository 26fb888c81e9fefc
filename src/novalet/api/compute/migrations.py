"""Handlers for /os-migrations (admin) and /servers/{id}/migrations (in-progress live
migrations, with their progress; force-complete 2.22 and abort 2.24)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from novalet import exceptions
from novalet.api.compute.schemas import migrations as schemas
from novalet.api.handler import ApiRequest, Reply, require_version
from novalet.api.validation import ValidationError, accepts, query_int, to_bool, validate
from novalet.common.timeutils import isotime_micro, parse_isotime
from novalet.compute.driver_types import POST_COPY_STATUS
from novalet.compute.migrations import MigrationQuery, list_migrations
from novalet.db.models import Migration
from novalet.policy import authorize, enforce

LINKS_AND_TYPE = "2.23"  # migration_type, links; /servers/{id}/migrations
UUID_AND_PAGING = "2.59"  # uuid, limit/marker, changes-since
CHANGES_BEFORE = "2.66"
USER_AND_PROJECT = "2.80"  # user_id and project_id, shown and filtered
FORCE_COMPLETE = "2.22"
ABORT = "2.24"
ABORT_BEFORE_RUNNING = "2.65"  # abort a live migration still queued or preparing
# The statuses /servers/{id}/migrations shows a live migration in, as Nova's.
LIVE_IN_PROGRESS = ("queued", "preparing", "running", POST_COPY_STATUS, "post-migrating")
_FORCE_COMPLETE = {"type": "object", "properties": {"force_complete": {"type": "null"}},
                   "required": ["force_complete"], "additionalProperties": False}


class ServerMigrationNotFound(exceptions.NotFound):
    msg_fmt = "Migration %(migration_id)s not found for instance %(instance_uuid)s."


def _view(req: ApiRequest, m: Migration, with_hosts: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id, "instance_uuid": m.instance_uuid, "status": m.status,
        "source_compute": m.source_compute, "source_node": m.source_node,
        "dest_compute": m.dest_compute, "dest_node": m.dest_node, "dest_host": m.dest_host,
        "old_instance_type_id": m.old_instance_type_id,
        "new_instance_type_id": m.new_instance_type_id,
        "created_at": isotime_micro(m.created_at),
        "updated_at": isotime_micro(m.updated_at)}
    if not with_hosts:  # os-migrations:index:host not granted: Nova blanks them
        body.update(source_compute=None, source_node=None, dest_compute=None,
                    dest_node=None, dest_host=None)
    if req.at_least(LINKS_AND_TYPE):
        body["migration_type"] = m.migration_type
        # Links only point at in-progress live migrations (the only ones served
        # under /servers/{id}/migrations).
        if m.migration_type == "live-migration" and m.status in LIVE_IN_PROGRESS:
            path = f"servers/{m.instance_uuid}/migrations/{m.id}"
            base = f"{req.app.conf.public_url}/compute"
            body["links"] = [{"rel": "self", "href": f"{base}/v2.1/{path}"},
                             {"rel": "bookmark", "href": f"{base}/{path}"}]
    if req.at_least(UUID_AND_PAGING):
        body["uuid"] = m.uuid
    if req.at_least(USER_AND_PROJECT):
        body["user_id"] = m.user_id
        body["project_id"] = m.project_id
    return body


def _time(params: dict[str, str], name: str) -> dt.datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return parse_isotime(raw)
    except ValueError:
        raise ValidationError(reason=f"Invalid input for query parameters {name}. Value: "
                              f"{raw}. '{raw}' is not a 'date-time'") from None


@accepts(query=schemas.index_query)
async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /os-migrations with filters (host, status, instance_uuid, source_compute,
    migration_type, hidden; 2.59 paging and changes-since; 2.66 changes-before;
    2.80 user_id and project_id).

    As in Nova: listing other projects' migrations (no project_id, or another one)
    needs os-migrations:index:all_projects, and without os-migrations:index:host the
    host fields are blank; source_compute counts only without host; hidden
    migrations are never shown (hidden=1 lists nothing)."""
    enforce(req.ctx, "os_compute_api:os-migrations:index")
    params = dict(req.query)
    # Below 2.59 any parameter passes the schema and Nova filters by user_id and
    # project_id then too; 2.59 to 2.79 refuse them (schema), 2.80 takes them.
    owners = not req.at_least(UUID_AND_PAGING) or req.at_least(USER_AND_PROJECT)
    project_id = params.get("project_id") if owners else None
    if not project_id or project_id != req.ctx.project_id:
        enforce(req.ctx, "os_compute_api:os-migrations:index:all_projects")
    with_hosts = authorize(req.ctx, "os_compute_api:os-migrations:index:host")
    query = MigrationQuery(
        host=params.get("host"), status=params.get("status"),
        instance_uuid=params.get("instance_uuid"),
        source_compute=None if params.get("host") else params.get("source_compute"),
        migration_type=params.get("migration_type"), hidden=False,
        user_id=params.get("user_id") if owners else None, project_id=project_id)
    if req.at_least(UUID_AND_PAGING):
        max_limit = req.app.conf.get("api", "max_limit")
        asked = query_int(params.get("limit"), "limit")
        query.limit = max_limit if asked is None else min(asked, max_limit)
        query.marker = params.get("marker")
        query.changes_since = _time(params, "changes-since")
    if req.at_least(CHANGES_BEFORE):
        query.changes_before = _time(params, "changes-before")
        if (query.changes_since and query.changes_before
                and query.changes_since > query.changes_before):
            raise ValidationError(reason="The value of changes-since must be less than "
                                  "or equal to changes-before.")
    hidden_only = "hidden" in params and to_bool(params["hidden"])  # Nova shows none
    found = [] if hidden_only else await list_migrations(req.app.db, query)
    body: dict[str, Any] = {"migrations": [_view(req, m, with_hosts) for m in found]}
    if query.limit and len(found) == query.limit:
        links = sorted((k, v) for k, v in req.query.items() if k != "marker")
        links.append(("marker", found[-1].uuid))
        body["migrations_links"] = [{
            "rel": "next",
            "href": f"{req.app.conf.public_url}/compute/v2.1/os-migrations?"
                    f"{urlencode(links)}"}]
    return body


def _server_view(req: ApiRequest, m: Migration) -> dict[str, Any]:
    """An in-progress live migration with its progress, as /servers/{id}/migrations
    shows it."""
    body: dict[str, Any] = {
        "id": m.id, "server_uuid": m.instance_uuid, "status": m.status,
        "source_compute": m.source_compute, "source_node": m.source_node,
        "dest_compute": m.dest_compute, "dest_node": m.dest_node, "dest_host": m.dest_host,
        "memory_total_bytes": m.memory_total, "memory_processed_bytes": m.memory_processed,
        "memory_remaining_bytes": m.memory_remaining, "disk_total_bytes": m.disk_total,
        "disk_processed_bytes": m.disk_processed, "disk_remaining_bytes": m.disk_remaining,
        "created_at": isotime_micro(m.created_at), "updated_at": isotime_micro(m.updated_at)}
    if req.at_least(UUID_AND_PAGING):
        body["uuid"] = m.uuid
    if req.at_least(USER_AND_PROJECT):
        body["user_id"] = m.user_id
        body["project_id"] = m.project_id
    return body


def _migration_id(req: ApiRequest) -> int | None:
    raw = req.path["migration_id"]
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


async def _live_in_progress(req: ApiRequest, instance_uuid: str) -> list[Migration]:
    found = await list_migrations(req.app.db, MigrationQuery(
        instance_uuid=instance_uuid, migration_type="live-migration"))
    return [m for m in found if m.status in LIVE_IN_PROGRESS]


@accepts()
async def server_index(req: ApiRequest) -> dict[str, Any]:
    """GET /servers/{id}/migrations (2.23): the server's in-progress live migrations."""
    require_version(req, LINKS_AND_TYPE)
    enforce(req.ctx, "os_compute_api:servers:migrations:index")
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])  # 404 if unknown
    return {"migrations": [_server_view(req, m)
                           for m in await _live_in_progress(req, instance.uuid)]}


@accepts()
async def server_show(req: ApiRequest) -> dict[str, Any]:
    """GET /servers/{id}/migrations/{migration_id} (2.23): one in-progress live
    migration of the server."""
    require_version(req, LINKS_AND_TYPE)
    enforce(req.ctx, "os_compute_api:servers:migrations:show")
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    wanted = _migration_id(req)
    for m in await _live_in_progress(req, instance.uuid):
        if m.id == wanted:
            return {"migration": _server_view(req, m)}
    raise ServerMigrationNotFound(migration_id=req.path["migration_id"],
                                  instance_uuid=instance.uuid)


@accepts(body=_FORCE_COMPLETE)
async def server_action(req: ApiRequest) -> Reply:
    """POST /servers/{id}/migrations/{migration_id}/action (2.22): force_complete."""
    require_version(req, FORCE_COMPLETE)
    validate(await req.json_object(), _FORCE_COMPLETE)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:servers:migrations:force_complete",
            instance.project_id)
    wanted = _migration_id(req)
    await req.app.compute.moves.force_complete(req.ctx, instance.uuid,
                                               -1 if wanted is None else wanted)
    return Reply(None, 202)


@accepts()
async def server_delete(req: ApiRequest) -> Reply:
    """DELETE /servers/{id}/migrations/{migration_id} (2.24): abort a live migration
    (running; from 2.65 also queued or preparing)."""
    require_version(req, ABORT)
    instance = await req.app.compute.get(req.ctx, req.path["server_id"])
    enforce(req.ctx, "os_compute_api:servers:migrations:delete", instance.project_id)
    wanted = _migration_id(req)
    await req.app.compute.moves.abort(req.ctx, instance.uuid,
                                      -1 if wanted is None else wanted,
                                      before_running=req.at_least(ABORT_BEFORE_RUNNING))
    return Reply(None, 202)
