"""Which document a metadata request path names, for one instance: pure lookups.

Paths under /openstack are the OpenStack layout; everything else (optionally
under /ec2) is the EC2 layout, as Nova serves them. A directory answers with
its entries one per line, sub-directories ending in '/'. A trailing slash
makes no difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from novalet.exceptions import NotFound
from novalet.metadata import content
from novalet.metadata.content import InstanceMetadata

JSON = "application/json"
TEXT = "text/plain"


class MetadataNotFound(NotFound):
    msg_fmt = "No metadata at /%(path)s: %(reason)s"


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str


def split(path: str) -> list[str]:
    """The segments of a request path; '..' is refused rather than resolved."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise MetadataNotFound(path=path.strip("/"), reason="'..' is not allowed")
    return parts


def password_version(parts: list[str]) -> str | None:
    """The version of an openstack/<version>/password path that has a password, else None."""
    if (len(parts) == 3 and parts[0] == "openstack" and parts[2] == "password"
            and content.is_openstack_version(parts[1])
            and content.openstack_at_least(parts[1], content.PASSWORD_FROM)):
        return parts[1]
    return None


def resolve(md: InstanceMetadata, path: str, *, random_seed: bytes | None = None) -> Document:
    """The document at `path` for the instance `md`; MetadataNotFound when there is none."""
    parts = split(path)
    if parts[:1] == ["openstack"]:
        return _openstack(md, parts, random_seed)
    if parts[:1] == ["ec2"]:
        parts = parts[1:]
    return _ec2(md, parts, path.strip("/"))


def _openstack(md: InstanceMetadata, parts: list[str], seed: bytes | None) -> Document:
    where = "/".join(parts)
    if len(parts) == 1:
        return _listing([*content.OPENSTACK_VERSIONS, content.LATEST])
    version = parts[1]
    if not content.is_openstack_version(version):
        raise MetadataNotFound(path=where, reason=f"{version} is not an OpenStack metadata "
                               f"version (one of {', '.join(content.OPENSTACK_VERSIONS)}, latest)")
    if len(parts) == 2:
        return _listing(content.openstack_listing(md, version))
    name = parts[2]
    if len(parts) > 3 or name not in content.openstack_listing(md, version):
        reason = ("this instance has no user_data" if name == "user_data"
                  else f"{version} has no such file")
        raise MetadataNotFound(path=where, reason=reason)
    if name == "meta_data.json":
        return _json(content.openstack_meta_data(md, version, random_seed=seed))
    if name == "user_data":
        assert md.user_data is not None
        return Document(md.user_data, TEXT)
    if name == "password":
        return Document((md.password or "").encode(), TEXT)
    if name == "vendor_data.json":
        return _json(content.vendor_data(md))
    if name == "network_data.json":
        return _json(content.network_data(md))
    return _json(content.vendor_data2(md))


def _ec2(md: InstanceMetadata, parts: list[str], where: str) -> Document:
    if not parts:
        return _listing([*content.EC2_VERSIONS, content.LATEST])
    version, rest = parts[0], parts[1:]
    if not content.is_ec2_version(version):
        raise MetadataNotFound(path=where, reason=f"{version} is neither an EC2 metadata "
                               "version nor 'openstack'")
    if not rest:
        names = ["dynamic/", "meta-data/"]
        if md.user_data is not None:
            names.append("user-data")
        return _listing(names)
    if rest == ["user-data"]:
        if md.user_data is None:
            raise MetadataNotFound(path=where, reason="this instance has no user-data")
        return Document(md.user_data, TEXT)
    if rest[0] == "meta-data":
        if rest[1:] == ["public-keys"] and md.public_keys:
            return _listing(content.ec2_public_keys_listing(md))
        return _walk(content.ec2_meta_data(md, version), rest[1:], where)
    if rest == ["dynamic"]:
        return _listing(["instance-identity/"])
    if rest == ["dynamic", "instance-identity"]:
        return _listing(["document"])
    if rest == ["dynamic", "instance-identity", "document"]:
        return Document(content.to_json(content.instance_identity(md)), TEXT)
    raise MetadataNotFound(path=where, reason="no such file")


def _walk(tree: dict[str, Any], parts: list[str], where: str) -> Document:
    node: Any = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise MetadataNotFound(path=where, reason="no such file")
        node = node[part]
    if isinstance(node, dict):
        return _listing([f"{key}/" if isinstance(value, dict) else key
                         for key, value in sorted(node.items())])
    if isinstance(node, list):
        return Document("\n".join(str(item) for item in node).encode(), TEXT)
    return Document(("" if node is None else str(node)).encode(), TEXT)


def _listing(names: list[str]) -> Document:
    return Document("\n".join(names).encode(), TEXT)


def _json(document: dict[str, Any]) -> Document:
    return Document(content.to_json(document), JSON)
