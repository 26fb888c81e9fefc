"""The metadata service's ASGI app: finds the requesting instance by its source
address and answers with that instance's documents, never another's."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from novalet.common.context import bind_request_id, new_request_id
from novalet.exceptions import NovaletError
from novalet.metadata import content, tree
from novalet.metadata.content import InstanceMetadata
from novalet.metadata.lookup import FunctionLookup, InstanceLookup, LookupFunction, addresses_of

LOG = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PasswordRejected(NovaletError):
    msg_fmt = "Password not stored: %(reason)s"
    code = 400


class PasswordAlreadySet(NovaletError):
    msg_fmt = ("Instance %(uuid)s already has a password; an administrator must clear it "
               "before the guest can post another")
    code = 409


class PasswordsNotStored(NovaletError):
    msg_fmt = "This metadata service does not store passwords"
    code = 403


class MethodNotAllowed(NovaletError):
    msg_fmt = ("%(method)s is not allowed on /%(path)s: the metadata service answers GET, "
               "and POST only on openstack/<version>/password (versions from 2013-04-04)")
    code = 405


def parse_networks(values: Iterable[str]) -> list[IpNetwork]:
    """Addresses or CIDRs (e.g. from [metadata] trusted_proxies) as networks;
    ValueError names the first that is neither."""
    networks: list[IpNetwork] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR") from None
    return networks


def normalize_address(address: str) -> str:
    """The canonical text of an IP address; an IPv4-mapped IPv6 address (a dual-stack
    socket's view of an IPv4 peer) becomes the IPv4 address."""
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip()
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(parsed)


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted_proxies: list[IpNetwork]) -> str | None:
    """The address of the guest behind a request.

    The peer is the guest itself (the DNAT rule keeps the source address) unless
    the peer is a trusted proxy: then X-Forwarded-For is read from the right,
    past every trusted proxy, to the first address no trusted proxy vouches for.
    """
    if peer is None:
        return None
    chain = [normalize_address(peer)]
    if forwarded_for and _trusted(chain[0], trusted_proxies):
        chain = [normalize_address(hop) for hop in forwarded_for.split(",") if hop.strip()]
        chain.append(normalize_address(peer))
        while len(chain) > 1 and _trusted(chain[-1], trusted_proxies):
            chain.pop()
    return chain[-1]


def _trusted(address: str, trusted_proxies: list[IpNetwork]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted_proxies)


class MetadataApp:
    """Serves every metadata path; one per process, shared by all requests."""

    def __init__(self, lookup: InstanceLookup | LookupFunction, *,
                 vendor_data: Mapping[str, Any] | None = None,
                 trusted_proxies: Iterable[str] = ()) -> None:
        self.lookup: InstanceLookup = (lookup if isinstance(lookup, InstanceLookup)
                                       else FunctionLookup(lookup))
        self.vendor_data = dict(vendor_data or {})
        self.trusted_proxies = parse_networks(trusted_proxies)

    async def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        token = bind_request_id(request_id)
        path = request.url.path
        peer = request.client.host if request.client else None
        address: str | None = None
        instance = "-"
        response: Response
        try:
            address = client_address(peer, request.headers.get("x-forwarded-for"),
                                     self.trusted_proxies)
            md = await self._instance_for(address)
            if md is None:
                LOG.warning("%s %s from %s (peer %s): no instance of this cloud has this "
                            "address", request.method, path, address, peer)
                response = _text(404, f"No instance of this cloud has the address {address}; "
                                 "the metadata service answers only its guests.\n")
            else:
                instance = md.uuid
                response = await self._answer(request, md)
        except NovaletError as exc:
            response = _text(exc.code, exc.message + "\n")
        except Exception:
            LOG.exception("%s %s from %s failed", request.method, path, address)
            response = _text(500, f"The metadata service failed on this request "
                             f"({request_id}); see its log.\n")
        response.headers["x-openstack-request-id"] = request_id
        if _body_left_unread(request, response):
            # Only a password POST reads a body (256 bytes at most): close after the
            # answer, so the rest of any other body is never read.
            response.headers["connection"] = "close"
        LOG.info("%s %s from %s: %d (instance %s)", request.method, path, address,
                 response.status_code, instance)
        token.var.reset(token)
        return response

    async def _answer(self, request: Request, md: InstanceMetadata) -> Response:
        if request.method in ("GET", "HEAD"):
            doc = tree.resolve(md, request.url.path)
            return Response(doc.body, media_type=doc.content_type)
        if request.method == "POST":
            return await self._post(request, md)
        raise MethodNotAllowed(method=request.method, path=request.url.path.strip("/"))

    async def _instance_for(self, address: str | None) -> InstanceMetadata | None:
        if address is None:
            return None
        md = await self.lookup.by_address(address)
        if md is None:
            return None
        known = addresses_of(md)
        if known and address not in known:
            # A lookup bug must not hand one guest another's keys and user data.
            LOG.error("Lookup of %s returned instance %s, whose addresses are %s; refused",
                      address, md.uuid, sorted(known))
            return None
        if not md.fixed_ipv4:   # the lookup vouched for the address: it is the guest's
            md = dataclasses.replace(md, local_ipv4=address)
        if self.vendor_data:
            md = dataclasses.replace(md, vendor_data={**self.vendor_data, **md.vendor_data})
        return md

    async def _post(self, request: Request, md: InstanceMetadata) -> Response:
        parts = tree.split(request.url.path)
        if tree.password_version(parts) is None:
            raise MethodNotAllowed(method="POST", path="/".join(parts))
        if not getattr(self.lookup, "stores_passwords", True):
            raise PasswordsNotStored()
        if md.password:
            raise PasswordAlreadySet(uuid=md.uuid)
        body = await _read_at_most(request, content.MAX_PASSWORD_BYTES)
        if body is None:
            raise PasswordRejected(reason=f"it is longer than {content.MAX_PASSWORD_BYTES} bytes")
        if not body.strip():
            raise PasswordRejected(reason="the request body is empty")
        try:
            password = body.decode("utf-8")
        except UnicodeDecodeError:
            raise PasswordRejected(reason="it is not UTF-8 text") from None
        if not await self.lookup.set_password(md.uuid, password):
            raise PasswordAlreadySet(uuid=md.uuid)
        LOG.info("Instance %s stored its password", md.uuid)
        return Response(b"", status_code=200, media_type=tree.TEXT)


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _body_left_unread(request: Request, response: Response) -> bool:
    """Whether the request carries a body the answer did not read to its end: any
    body but that of a stored password."""
    if request.method == "POST" and response.status_code == 200:
        return False
    length = request.headers.get("content-length")
    return (length is not None and length.strip() != "0") or \
        "transfer-encoding" in request.headers


def _text(status: int, message: str) -> Response:
    return Response(message.encode(), status_code=status, media_type=tree.TEXT)


def create_app(lookup: InstanceLookup | LookupFunction, *,
               vendor_data: Mapping[str, Any] | None = None,
               trusted_proxies: Iterable[str] = ()) -> Starlette:
    """The metadata service as an ASGI app.

    `lookup` finds the instance behind a source address: an InstanceLookup, or a
    bare `async (address) -> InstanceMetadata | None` (then guests can't post
    passwords). `vendor_data` is merged under each instance's own vendor data.
    X-Forwarded-For counts only when the peer is in `trusted_proxies`
    (addresses or CIDRs; none by default).
    """
    service = MetadataApp(lookup, vendor_data=vendor_data, trusted_proxies=trusted_proxies)
    # Every method reaches the handler, so a wrong one is logged and answered in its words.
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    app = Starlette(routes=[Route("/{path:path}", service.handle, methods=methods)])
    app.state.metadata = service
    return app
