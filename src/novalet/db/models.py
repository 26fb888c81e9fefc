"""SQLAlchemy models: the cloud's whole persistent state."""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Double, Float, ForeignKey, Index,
                        Integer, String, Text, UniqueConstraint)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from novalet.common.addresses import canonical_ip
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# As the migrations create them on MySQL: its DATETIME keeps microseconds only with
# fsp=6, and its FLOAT is single precision.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Real = Float().with_variant(Double(), "mysql", "mariadb")


class IPAddress(TypeDecorator[str]):
    """An address kept in its shortest form, as Nova's column type keeps it: an IPv6
    address may be written longer than the 39 characters the column holds
    (0000:0000:0000:0000:0000:babe:220.12.22.2 is ::babe:dc0c:1602)."""
    impl = String(39)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return canonical_ip(value)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(Timestamp, onupdate=utcnow)


# --- identity -------------------------------------------------------------

class Project(Timestamps, Base):
    __tablename__ = "projects"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (UniqueConstraint("domain_id", "name"),)


class User(Timestamps, Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_project_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(255))
    # Attributes Keystone keeps without knowing them (project_id, description, ...).
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    __table_args__ = (UniqueConstraint("domain_id", "name"),)


class Role(Base):
    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"),
                                            primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"),
                                         primary_key=True)


# --- flavors and keypairs -------------------------------------------------

class Flavor(Timestamps, Base):
    __tablename__ = "flavors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Real, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)
    extra_specs: Mapped[list[FlavorExtraSpec]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")
    projects: Mapped[list[FlavorProject]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")


class FlavorExtraSpec(Base):
    __tablename__ = "flavor_extra_specs"
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"),
                                           primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class FlavorProject(Base):
    __tablename__ = "flavor_projects"
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id", ondelete="CASCADE"),
                                           primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class KeyPair(Timestamps, Base):
    __tablename__ = "key_pairs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    __table_args__ = (UniqueConstraint("user_id", "name"),)


# --- images ---------------------------------------------------------------

class Image(Timestamps, Base):
    __tablename__ = "images"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(30), default="queued")
    visibility: Mapped[str] = mapped_column(String(20), default="shared")
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    disk_format: Mapped[str | None] = mapped_column(String(20))
    container_format: Mapped[str | None] = mapped_column(String(20))
    size: Mapped[int | None] = mapped_column(BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(String(64))
    os_hash_value: Mapped[str | None] = mapped_column(String(128))
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)


class ImageMember(Timestamps, Base):
    __tablename__ = "image_members"
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"),
                                          primary_key=True)
    member: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")


# --- instances ------------------------------------------------------------

class Instance(Timestamps, Base):
    __tablename__ = "instances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    image_ref: Mapped[str] = mapped_column(String(36), default="")
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON)
    vm_state: Mapped[str] = mapped_column(String(32))
    task_state: Mapped[str | None] = mapped_column(String(32))
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255), index=True)
    node: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    requested_availability_zone: Mapped[str | None] = mapped_column(String(255))
    key_name: Mapped[str | None] = mapped_column(String(255))
    key_data: Mapped[str | None] = mapped_column(Text)
    user_data: Mapped[str | None] = mapped_column(Text)
    config_drive: Mapped[bool] = mapped_column(Boolean, default=False)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16))
    locked_reason: Mapped[str | None] = mapped_column(String(255))
    reservation_id: Mapped[str] = mapped_column(String(255))
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    access_ip_v4: Mapped[str | None] = mapped_column(IPAddress)
    access_ip_v6: Mapped[str | None] = mapped_column(IPAddress)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    scheduler_hints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The create request's RequestSpec (to_dict, instance_uuids left empty), as Nova's
    # request_specs table keeps it: a build re-driven at start is scheduled from it.
    request_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    system_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    launched_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_items: Mapped[list[InstanceMetadata]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")
    tags: Mapped[list[InstanceTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")
    __table_args__ = (Index("ix_instances_project_deleted", "project_id", "deleted"),)


class InstanceMetadata(Base):
    __tablename__ = "instance_metadata"
    instance_uuid: Mapped[str] = mapped_column(
        ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class InstanceTag(Base):
    __tablename__ = "instance_tags"
    instance_uuid: Mapped[str] = mapped_column(
        ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), primary_key=True)


class InstanceFault(Base):
    __tablename__ = "instance_faults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    code: Mapped[int] = mapped_column(Integer)
    # Longer than Nova's 255: scheduling faults name every host a filter removed.
    message: Mapped[str] = mapped_column(String(2048))
    details: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class InstanceAction(Timestamps, Base):
    __tablename__ = "instance_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(255))
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    request_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(String(64))
    start_time: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    finish_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    message: Mapped[str | None] = mapped_column(String(255))
    events: Mapped[list[InstanceActionEvent]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="InstanceActionEvent.id")


class InstanceActionEvent(Base):
    __tablename__ = "instance_action_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    finish_time: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    result: Mapped[str | None] = mapped_column(String(255))
    traceback: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))


# --- services and placement ----------------------------------------------

class Service(Timestamps, Base):
    __tablename__ = "services"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_up: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    __table_args__ = (UniqueConstraint("host", "binary"),)


class ResourceProvider(Timestamps, Base):
    """A compute node as placement sees it: inventories and a generation."""

    __tablename__ = "resource_providers"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    inventories: Mapped[list[Inventory]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")


class Inventory(Base):
    __tablename__ = "inventories"
    provider_uuid: Mapped[str] = mapped_column(
        ForeignKey("resource_providers.uuid", ondelete="CASCADE"), primary_key=True)
    resource_class: Mapped[str] = mapped_column(String(32), primary_key=True)
    total: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    allocation_ratio: Mapped[float] = mapped_column(Real, default=1.0)


class Allocation(Base):
    __tablename__ = "allocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer_id: Mapped[str] = mapped_column(String(64), index=True)
    provider_uuid: Mapped[str] = mapped_column(
        ForeignKey("resource_providers.uuid", ondelete="CASCADE"), index=True)
    resource_class: Mapped[str] = mapped_column(String(32))
    used: Mapped[int] = mapped_column(Integer)


# --- networking (nova-network style) -------------------------------------

class Network(Timestamps, Base):
    """A network: a bridge on each host serving it, optionally a VLAN. Its L3 columns
    (cidr … dns2) mirror its IPv4 subnet and are NULL while it has none
    (docs/network-api.md); hosts serve only networks with a subnet."""

    __tablename__ = "networks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    label: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # mirrors its subnet's enable_dhcp: False, no host runs dnsmasq for it (0015)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    cidr: Mapped[str | None] = mapped_column(String(43), unique=True)
    gateway: Mapped[str | None] = mapped_column(String(39))
    netmask: Mapped[str | None] = mapped_column(String(39))
    broadcast: Mapped[str | None] = mapped_column(String(39))
    dhcp_start: Mapped[str | None] = mapped_column(String(39))
    dns1: Mapped[str | None] = mapped_column(String(39))
    dns2: Mapped[str | None] = mapped_column(String(39))
    bridge: Mapped[str] = mapped_column(String(15))
    bridge_interface: Mapped[str | None] = mapped_column(String(255))
    vlan: Mapped[int | None] = mapped_column(Integer, unique=True)
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    multi_host: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str | None] = mapped_column(String(255))
    mtu: Mapped[int | None] = mapped_column(Integer)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # made through the network API: reaches the outside only through a router (0019)
    needs_router: Mapped[bool] = mapped_column(Boolean, default=False)
    # The default external network (Neutron's is_default, auto-allocated-topology):
    # True or NULL, never False, so the unique index admits one default at most (0021).
    is_default: Mapped[bool | None] = mapped_column(Boolean, unique=True, index=True)


class AutoAllocatedTopology(Base):
    """A project's auto-allocated topology (get-me-a-network): its network, and its
    router once routers exist. One per project; gone with its network (cascade)."""

    __tablename__ = "auto_allocated_topologies"
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)
    router_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)


class Subnet(Timestamps, Base):
    """A network's IPv4 subnet, as the network API shows it (one per network for now).
    JSON columns hold lists: allocation_pools [{"start", "end"}], dns_nameservers
    [address], host_routes [{"destination", "nexthop"}]."""

    __tablename__ = "subnets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    cidr: Mapped[str] = mapped_column(String(43))
    gateway_ip: Mapped[str | None] = mapped_column(String(39))
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    allocation_pools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[Any]] = mapped_column(JSON, default=list)


class VirtualInterface(Timestamps, Base):
    """A port: a MAC on one network, a guest NIC when bound to an instance (0017)."""

    __tablename__ = "virtual_interfaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    address: Mapped[str] = mapped_column(String(17), unique=True)
    # None: a port made through the network API and bound to no server yet
    instance_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"))
    # None: a server's NIC made before 0017's backfill ran; its server's project
    project_id: Mapped[str | None] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # made through the network API: a server booted on it unbinds it when it goes
    preserve_on_delete: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{"ip_address", "mac_address"}]
    allowed_address_pairs: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # group uuids of an unbound port; a bound port's groups are its server's
    security_groups: Mapped[list[str] | None] = mapped_column(JSON)


class FixedIp(Timestamps, Base):
    """Every address of a network, allocated to an instance or free."""

    __tablename__ = "fixed_ips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(39), unique=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)
    instance_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    virtual_interface_id: Mapped[int | None] = mapped_column(Integer)
    allocated: Mapped[bool] = mapped_column(Boolean, default=False)
    leased: Mapped[bool] = mapped_column(Boolean, default=False)
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str | None] = mapped_column(String(255))


class FloatingIp(Timestamps, Base):
    __tablename__ = "floating_ips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # the network API's id (0018), new at each allocation; the compute proxy keeps id
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True,
                                      default=lambda: str(uuidlib.uuid4()))
    # the external network the address belongs to (0018); pool stays its name
    network_id: Mapped[int | None] = mapped_column(Integer, index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    address: Mapped[str] = mapped_column(String(39), unique=True)
    pool: Mapped[str] = mapped_column(String(255), index=True)
    interface: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(64), index=True)
    fixed_ip_id: Mapped[int | None] = mapped_column(ForeignKey("fixed_ips.id"), index=True)
    host: Mapped[str | None] = mapped_column(String(255))
    auto_assigned: Mapped[bool] = mapped_column(Boolean, default=False)
    # held by this router as its external gateway address (0019): no floating IP
    router_id: Mapped[int | None] = mapped_column(Integer, index=True)


class Router(Timestamps, Base):
    """A router (0019): its external gateway is gw_network_id and the floating_ips
    row whose router_id is this one; its interfaces are router_interfaces."""

    __tablename__ = "routers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_network_id: Mapped[int | None] = mapped_column(ForeignKey("networks.id"), index=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)


class RouterInterface(Timestamps, Base):
    """A subnet joined to a router at the subnet's gateway address; uuid: its port id."""

    __tablename__ = "router_interfaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    router_id: Mapped[int] = mapped_column(ForeignKey("routers.id", ondelete="CASCADE"),
                                           index=True)
    subnet_id: Mapped[int] = mapped_column(ForeignKey("subnets.id"), unique=True)


def _new_uuid() -> str:
    return str(uuidlib.uuid4())


class SecurityGroup(Timestamps, Base):
    __tablename__ = "security_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # the network API's id (migration 0016); the compute proxy keeps the integer id
    # NULL in a row the release before 0016 wrote (fill_missing_uuids fills it)
    uuid: Mapped[str] = mapped_column(String(36), nullable=True, unique=True, index=True,
                                      default=_new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    rules: Mapped[list[SecurityGroupRule]] = relationship(
        cascade="all, delete-orphan", lazy="selectin",
        foreign_keys="SecurityGroupRule.parent_group_id")
    __table_args__ = (UniqueConstraint("project_id", "name"),)


class SecurityGroupRule(Timestamps, Base):
    """A rule: direction and ethertype (0016), protocol and port range (ICMP: type and
    code), and the remote side: a CIDR (cidr, Neutron's remote_ip_prefix) or the
    members of a group (group_id, Neutron's remote_group_id); neither: anywhere."""

    __tablename__ = "security_group_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # NULL in a row the release before 0016 wrote (fill_missing_uuids fills it)
    uuid: Mapped[str] = mapped_column(String(36), nullable=True, unique=True, index=True,
                                      default=_new_uuid)
    direction: Mapped[str] = mapped_column(String(16), default="ingress")
    ethertype: Mapped[str] = mapped_column(String(16), default="IPv4")
    description: Mapped[str] = mapped_column(String(255), default="")
    parent_group_id: Mapped[int] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), index=True)
    protocol: Mapped[str | None] = mapped_column(String(16))
    from_port: Mapped[int | None] = mapped_column(Integer)
    to_port: Mapped[int | None] = mapped_column(Integer)
    cidr: Mapped[str | None] = mapped_column(String(43))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), index=True)


class SecurityGroupInstance(Base):
    __tablename__ = "security_group_instances"
    security_group_id: Mapped[int] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


# --- quotas (migration 0003) ---

class ProjectQuota(Timestamps, Base):
    """A project's own limit of one resource (os-quota-sets); -1 is unlimited."""

    __tablename__ = "quotas"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("project_id", "resource"),)


class ProjectUserQuota(Timestamps, Base):
    """One user's limit of one resource inside a project (os-quota-sets ?user_id=)."""

    __tablename__ = "project_user_quotas"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("project_id", "user_id", "resource"),)


class QuotaClass(Timestamps, Base):
    """A quota class's limit of one resource (os-quota-class-sets; Nova reads only the
    class named "default")."""

    __tablename__ = "quota_classes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    class_name: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)
    __table_args__ = (UniqueConstraint("class_name", "resource"),)


class Tag(Base):
    """A tag on a network API resource (standard-attr-tag, 0020): the resource by its
    collection name ("networks", "ports" …) and id (uuid)."""

    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(36))
    tag: Mapped[str] = mapped_column(String(60))
    __table_args__ = (UniqueConstraint("resource_type", "resource_id", "tag"),)


class QuotaLock(Base):
    """One row per project, locked (UPDATE) by every transaction that counts usage
    and then adds to it, so concurrent creates of one project take turns."""

    __tablename__ = "quota_locks"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)



# --- host aggregates (migration 0004) ---

class Aggregate(Timestamps, Base):
    """A named group of compute hosts with metadata (availability_zone among it)."""

    __tablename__ = "aggregates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    hosts: Mapped[list[AggregateHost]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AggregateHost.id")
    metadata_items: Mapped[list[AggregateMetadata]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AggregateMetadata.key")


class AggregateHost(Base):
    __tablename__ = "aggregate_hosts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    aggregate_id: Mapped[int] = mapped_column(
        ForeignKey("aggregates.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    __table_args__ = (UniqueConstraint("aggregate_id", "host"),)


class AggregateMetadata(Base):
    __tablename__ = "aggregate_metadata"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    aggregate_id: Mapped[int] = mapped_column(
        ForeignKey("aggregates.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    __table_args__ = (UniqueConstraint("aggregate_id", "key"),)



# --- identity groups, application credentials, revocations (migration 0005) ---

class Domain(Timestamps, Base):
    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Group(Timestamps, Base):
    # Not "groups": GROUPS is a reserved word on MySQL 8.
    __tablename__ = "identity_groups"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(64), default="default")
    description: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (UniqueConstraint("domain_id", "name"),)


class GroupMembership(Base):
    __tablename__ = "group_memberships"
    group_id: Mapped[str] = mapped_column(
        ForeignKey("identity_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)


class ScopedAssignment(Base):
    """Every role assignment other than a user's on a project (role_assignments):
    kind is UserDomain, UserSystem, GroupProject, GroupDomain or GroupSystem;
    target_id is a domain or project id, or "all" for the system."""

    __tablename__ = "scoped_assignments"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"),
                                         primary_key=True)


class ApplicationCredential(Base):
    __tablename__ = "application_credentials"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    secret_hash: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime | None] = mapped_column(Timestamp)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    roles: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow)
    __table_args__ = (UniqueConstraint("user_id", "name"),)


class RevocationEvent(Base):
    """Tokens issued up to issued_before whose fields match every non-null field
    here are revoked."""

    __tablename__ = "revocation_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    audit_id: Mapped[str | None] = mapped_column(String(64))
    app_cred_id: Mapped[str | None] = mapped_column(String(64))
    issued_before: Mapped[dt.datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[dt.datetime] = mapped_column(Timestamp, default=utcnow, index=True)



# --- migrations and usage audit (migration 0006) ---

class Migration(Timestamps, Base):
    """A move of an instance (resize, migration, live-migration, evacuation) and how
    far it got: Nova's migration statuses, updated as the move goes along."""

    __tablename__ = "migrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    source_compute: Mapped[str | None] = mapped_column(String(255))
    dest_compute: Mapped[str | None] = mapped_column(String(255))
    source_node: Mapped[str | None] = mapped_column(String(255))
    dest_node: Mapped[str | None] = mapped_column(String(255))
    dest_host: Mapped[str | None] = mapped_column(String(255))
    old_instance_type_id: Mapped[int | None] = mapped_column(Integer)
    new_instance_type_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(255))
    migration_type: Mapped[str] = mapped_column(String(32))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    # A live migration's progress in bytes, as its source host last reported it.
    memory_total: Mapped[int | None] = mapped_column(BigInteger)
    memory_processed: Mapped[int | None] = mapped_column(BigInteger)
    memory_remaining: Mapped[int | None] = mapped_column(BigInteger)
    disk_total: Mapped[int | None] = mapped_column(BigInteger)
    disk_processed: Mapped[int | None] = mapped_column(BigInteger)
    disk_remaining: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_migrations_updated", "updated_at", "id"),)


class ComputeNode(Timestamps, Base):
    """What a compute host reports about its hypervisor besides placement inventory;
    `uuid` is the node's resource provider uuid, `id` its hypervisor id below 2.53."""

    __tablename__ = "compute_nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_type: Mapped[str] = mapped_column(String(255))
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=0)
    host_ip: Mapped[str | None] = mapped_column(String(39))
    cpu_info: Mapped[str] = mapped_column(Text, default="{}")
    # The virt driver's DriverCapabilities as the host reported them (JSON); NULL
    # until a host that reports them does.
    capabilities: Mapped[str | None] = mapped_column(Text)


class TaskLog(Timestamps, Base):
    """One host's run of a periodic task over a period (the instance usage audit)."""

    __tablename__ = "task_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    period_beginning: Mapped[dt.datetime] = mapped_column(Timestamp)
    period_ending: Mapped[dt.datetime] = mapped_column(Timestamp)
    message: Mapped[str] = mapped_column(String(255), default="")
    task_items: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("task_name", "host", "period_beginning",
                                       "period_ending"),)



# --- server groups (migration 0007) ---


class ServerGroup(Timestamps, Base):
    """A server group: its policy binds where its members may be scheduled. generation
    is bumped by every claim for a member, so two schedulers can't both place one."""

    __tablename__ = "server_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    members: Mapped[list[ServerGroupMember]] = relationship(
        cascade="all, delete-orphan", lazy="selectin")


class ServerGroupMember(Base):
    """An instance belongs to at most one group."""

    __tablename__ = "server_group_members"
    instance_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("server_groups.id", ondelete="CASCADE"), index=True)


# --- cache generations (migration 0009) ---


class CacheGeneration(Base):
    """A counter per kind of record an API process caches (flavors, token
    revocations): a write bumps it, and a process drops its copy when the counter
    moved since it read it (db/cache_generations.py)."""

    __tablename__ = "cache_generations"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


# --- console auth tokens (migration 0008) ---


class ConsoleAuthToken(Timestamps, Base):
    """A console token, kept only as its SHA-256: what it opens (one instance's console
    at host:port on compute_host) until `expires` (Unix seconds). A native VNC token
    also keeps its password sealed in `secret`: VNC's challenge needs it in the clear."""

    __tablename__ = "console_auth_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    console_type: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    internal_access_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    compute_host: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires: Mapped[int] = mapped_column(BigInteger, index=True)
