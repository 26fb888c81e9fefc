"""The edge every API request passes: authentication, microversion, errors, replies.

Handlers are `async def h(req: ApiRequest) -> Reply | dict | Response`. This
module turns Novalet errors into the front-end's error body with the right
status, and anything unexpected into a logged 500 carrying the request id.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from novalet import exceptions, policy
from novalet.api import errors, json_body, validation
from novalet.api.compute import microversions
from novalet.common.context import RequestContext, bind_request_id, new_request_id
from novalet.identity.tokens import TokenData, TokenNotValid

LOG = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class MalformedBody(exceptions.Invalid):
    msg_fmt = "Malformed request body: %(reason)s"


class UnsupportedContentType(exceptions.NovaletError):
    msg_fmt = "Unsupported Content-Type"
    code = 415


class NotJsonContentType(exceptions.Invalid):
    """Keystone's wording and status (400) for a body that is not declared JSON."""

    msg_fmt = ("Expecting to find application/json in Content-Type header. The server "
               "could not comply with the request since it is either malformed or "
               "otherwise incorrect. The client is assumed to be in error.")


@dataclass
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Front:
    """How one front-end (compute, identity, image) treats its requests."""

    name: str
    formatter: errors.Formatter
    microversioned: bool = False
    # Nova's legacy /v2 endpoint: the v2.1 API at its base version, microversion
    # headers ignored and none sent back (api/compute/legacy_v2.py).
    legacy_v2: bool = False
    # The body of a Novalet error, when the front names errors by their class
    # (the network API's NeutronError type); else formatter(code, message).
    error_body: Callable[[exceptions.NovaletError], dict[str, Any]] | None = None

    def error(self, exc: exceptions.NovaletError) -> dict[str, Any]:
        if self.error_body is not None:
            return self.error_body(exc)
        return self.formatter(exc.code, exc.message)


COMPUTE = Front("compute", errors.nova_body, microversioned=True)
IDENTITY = Front("identity", errors.keystone_body)
IMAGE = Front("image", errors.glance_body)
NETWORK = Front("network", errors.neutron_body, error_body=errors.neutron_error)


class ApiRequest:
    """What a handler sees: the context, the version, the path and query, the body."""

    def __init__(self, raw: Request, ctx: RequestContext, token: TokenData | None,
                 version: microversions.APIVersion | None) -> None:
        self.raw = raw
        self.ctx = ctx
        self.token = token
        self.version = version
        self.app = raw.app.state.cloud
        self.path: dict[str, Any] = raw.path_params
        self.query = raw.query_params
        self._allowed: dict[str, bool] = {}

    def at_least(self, version: str) -> bool:
        assert self.version is not None
        return self.version.at_least(version)

    def allowed(self, action: str) -> bool:
        """Whether policy lets the caller do `action` in their own project, asked once
        per request (a view asks for each of a thousand servers it shows)."""
        if action not in self._allowed:
            self._allowed[action] = policy.authorize(self.ctx, action)
        return self._allowed[action]

    async def json(self) -> Any:
        data = await self.raw.body()
        if not data:
            raise MalformedBody(reason="the body is empty; send a JSON document")
        json_body.check_raw(data)
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedBody(reason=str(exc)) from None
        json_body.check_parsed(data, body)
        return body

    async def json_object(self) -> dict[str, Any]:
        body = await self.json()
        if not isinstance(body, dict):
            raise MalformedBody(reason="the body must be a JSON object")
        return body


Handler = Callable[[ApiRequest], Awaitable[Any]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def endpoint(front: Front, handler: Handler, *, auth: bool = True
             ) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler into a Starlette endpoint for `front`."""

    async def run(raw: Request) -> Response:
        started = time.monotonic()
        response = await _run(raw)
        # Reads at DEBUG so that a busy poller doesn't drown the log.
        LOG.log(logging.DEBUG if raw.method == "GET" else logging.INFO,
                "%s %s status: %s time: %.4f", raw.method, raw.url.path,
                response.status_code, time.monotonic() - started)
        return response

    async def _run(raw: Request) -> Response:
        incoming = raw.headers.get("x-openstack-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else new_request_id()
        bind_request_id(request_id)
        headers = {"x-openstack-request-id": request_id}
        if front.name == COMPUTE.name:
            headers["x-compute-request-id"] = request_id
        try:
            version = None
            if front.legacy_v2:
                version = microversions.MIN
            elif front.microversioned:
                version = microversions.negotiate(raw.headers)
                headers.update({"OpenStack-API-Version": f"compute {version}",
                                "X-OpenStack-Nova-API-Version": str(version),
                                "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"})
            _check_content_type(front, raw)
            ctx, token = _authenticate(raw, request_id, auth)
            if token is not None:  # a revoked token is 401 (identity/revocations.py)
                await raw.app.state.cloud.identity.check_revocation(token)
            relaxed = validation.RELAXED.set(front.legacy_v2)
            try:
                result = await handler(ApiRequest(raw, ctx, token, version))
            finally:
                validation.RELAXED.reset(relaxed)
        except ClientDisconnect:
            # Nobody is left to answer; run() logs nginx's 499 (client closed request).
            LOG.warning("Client disconnected before sending the whole request: %s %s "
                        "(request %s)", raw.method, raw.url.path, request_id)
            return Response(status_code=499)
        except exceptions.NovaletError as exc:
            if exc.code >= 500:
                LOG.error("%s %s failed: %s", raw.method, raw.url.path, exc)
            if exc.code == 413:  # the rest of the body stays unread: close after answering
                headers["Connection"] = "close"
            return json_response(front.error(exc), exc.code, headers)
        except Exception:
            LOG.exception("Unexpected error in %s %s", raw.method, raw.url.path)
            message = ("Unexpected API Error. Report this with request id "
                       f"{request_id}; the service log has the details.")
            return json_response(front.formatter(500, message), 500, headers)
        return _reply(result, headers)

    # Read by the OpenAPI generator (api/compute/openapi.py).
    run.handler = handler  # type: ignore[attr-defined]
    run.auth = auth  # type: ignore[attr-defined]
    return run


# Nova's JSON media types; no type, an empty one or text/plain (what old WSGI
# servers defaulted to) count as none, and the body is still read as JSON.
_NOVA_JSON_TYPES = ("application/json", "application/vnd.openstack.compute+json")


def _check_content_type(front: Front, raw: Request) -> None:
    """Nova answers 415 for any other Content-Type, body or not; Keystone answers
    400 for a body that is not declared JSON (application/json or any
    application/...+json), and reads a body without a Content-Type as JSON. The
    image API checks each route's own media type (api/image)."""
    given = raw.headers.get("content-type")
    if given is None or front is IMAGE:
        return
    media = given.split(";", 1)[0].strip().lower()
    if front.name == COMPUTE.name:
        if media and media != "text/plain" and media not in _NOVA_JSON_TYPES:
            raise UnsupportedContentType()
    elif front is IDENTITY and media and _has_body(raw):
        if not (media == "application/json"
                or (media.startswith("application/") and media.endswith("+json"))):
            raise NotJsonContentType()


def _has_body(raw: Request) -> bool:
    length = raw.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in raw.headers.get("transfer-encoding", "").lower()


def _authenticate(raw: Request, request_id: str, required: bool
                  ) -> tuple[RequestContext, TokenData | None]:
    token_id = raw.headers.get("x-auth-token")
    if not token_id:
        if required:
            raise TokenNotValid()
        return RequestContext(request_id=request_id), None
    token = raw.app.state.cloud.tokens.validate(token_id)
    # Keystone's implied roles (admin → member → reader) are applied here, once,
    # so every check downstream sees them.
    ctx = RequestContext(request_id=request_id, user_id=token.user_id,
                         project_id=token.project_id,
                         roles=policy.with_implied_roles(token.role_names),
                         user_name=token.user_name, project_name=token.project_name,
                         system_scope=_system_scope(token))
    if required and token.project_id is None and ctx.system_scope is None:
        raise exceptions.Unauthorized("A project-scoped token is required.")
    return ctx, token


def _system_scope(token: TokenData) -> str | None:
    """"all" for a system-scoped token, whichever shape the token keeps it in."""
    system = getattr(token, "system_scope", None) or getattr(token, "system", None)
    if isinstance(system, dict):
        return "all" if system.get("all") else None
    return str(system) if system else None


def _reply(result: Any, headers: dict[str, str]) -> Response:
    if isinstance(result, Response):
        result.headers.update(headers)
        return result
    if isinstance(result, Reply):
        headers.update(result.headers)
        return json_response(result.body, result.status, headers)
    return json_response(result, 200, headers)


class VersionNotFound(exceptions.NotFound):
    msg_fmt = "The resource could not be found."


def require_version(req: ApiRequest, first: str) -> None:
    """Routes added in a microversion answer 404 below it, as Nova's do."""
    if not req.at_least(first):
        raise VersionNotFound()
