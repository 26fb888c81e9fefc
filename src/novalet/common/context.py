"""The request context: who asked, for which project, under which request id.

It travels in every bus message, and the request id is put on every log line
of every service that works on the request.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

_current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="-")


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass
class RequestContext:
    request_id: str = field(default_factory=new_request_id)
    user_id: str | None = None
    project_id: str | None = None
    roles: list[str] = field(default_factory=list)
    user_name: str | None = None
    project_name: str | None = None
    # "all" for a Keystone system-scoped token (no project); None otherwise.
    system_scope: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestContext:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def admin(cls) -> RequestContext:
        """The context internal service work runs under."""
        return cls(roles=["admin"])

    def bind(self) -> contextvars.Token[str]:
        """Make this request id the one log lines of the current task carry."""
        return _current_request_id.set(self.request_id)


def bind_request_id(request_id: str) -> contextvars.Token[str]:
    return _current_request_id.set(request_id)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record so the format can print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _current_request_id.get()
        return True


def setup_logging(debug: bool = False, logfile: str | None = None) -> None:
    handler: logging.Handler = (logging.FileHandler(logfile) if logfile
                                else logging.StreamHandler())
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("aiosqlite", "sqlalchemy", "uvicorn.access", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
