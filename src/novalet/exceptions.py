"""The base of every Novalet error and the HTTP-shaped categories it falls in.

Modules define their own errors next to the code that raises them, deriving
from one of these categories; only the HTTP edge turns a category into a
status code and Nova's error body.
"""

from __future__ import annotations

from typing import Any


class NovaletError(Exception):
    """An error whose message is built from a template and keyword values."""

    msg_fmt = "An unknown error occurred."
    code = 500

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError):
                message = self.msg_fmt
        self.message = message
        super().__init__(message)


class Invalid(NovaletError):
    msg_fmt = "Invalid input: %(reason)s"
    code = 400


class Unauthorized(NovaletError):
    msg_fmt = "The request you have made requires authentication."
    code = 401


class Forbidden(NovaletError):
    msg_fmt = "Policy doesn't allow %(action)s to be performed."
    code = 403


class NotFound(NovaletError):
    msg_fmt = "Resource could not be found."
    code = 404


class Conflict(NovaletError):
    msg_fmt = "Conflict: %(reason)s"
    code = 409


class QuotaExceeded(NovaletError):
    msg_fmt = "Quota exceeded: %(reason)s"
    code = 403


class Unavailable(NovaletError):
    msg_fmt = "Service unavailable: %(reason)s"
    code = 503
