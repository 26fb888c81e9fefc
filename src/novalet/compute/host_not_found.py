"""A named compute host that does not exist: Nova's two answers to it.

The host a request is about (os-hosts, adding a host to an aggregate) is a
missing resource: 404. A host named as where a server should go (migrate and
os-migrateLive with a host, unshelve to a host) is a bad argument of a request
about the server: 400, as Nova's API turns its ComputeHostNotFound there.
"""

from __future__ import annotations

from novalet import exceptions

_MESSAGE = "Compute host %(host)s could not be found."


class ComputeHostNotFound(exceptions.NotFound):
    """The host the request is about does not exist (404)."""

    msg_fmt = _MESSAGE


class TargetHostNotFound(exceptions.Invalid):
    """The host named as a server's destination does not exist (400)."""

    msg_fmt = _MESSAGE
