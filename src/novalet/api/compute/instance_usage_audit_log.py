"""Handlers for /os-instance_usage_audit_log (admin; Nova's path, with underscores):
how far the compute hosts got with the instance usage audit of the last whole
period (before now, or before a given timestamp)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from novalet.api.handler import ApiRequest
from novalet.api.validation import ValidationError, accepts
from novalet.common.timeutils import utcnow
from novalet.compute.usage_audit import report
from novalet.policy import enforce

_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


@accepts()
async def index(req: ApiRequest) -> dict[str, Any]:
    """GET /os-instance_usage_audit_log: the period before now."""
    enforce(req.ctx, "os_compute_api:os-instance-usage-audit-log:list")
    return {"instance_usage_audit_logs": await report(req.app.db, req.app.conf, utcnow())}


@accepts()
async def show(req: ApiRequest) -> dict[str, Any]:
    """GET /os-instance_usage_audit_log/{before_timestamp} ('YYYY-MM-DD hh:mm:ss')."""
    enforce(req.ctx, "os_compute_api:os-instance-usage-audit-log:show")
    raw = req.path["before_timestamp"]
    for fmt in _FORMATS:
        try:
            before = dt.datetime.strptime(raw, fmt)
            break
        except ValueError:
            continue
    else:
        raise ValidationError(reason=f"Invalid timestamp for date {raw}")
    return {"instance_usage_audit_log": await report(req.app.db, req.app.conf, before)}
