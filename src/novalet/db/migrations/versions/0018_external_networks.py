"""external networks: floating_ips.uuid, network_id, description; a network per pool

Each floating IP pool becomes an external network (router:external, not shared,
no project, no bridge: hosts serve no guests on it) named after the pool, with a
subnet whose CIDR is the smallest that covers the pool's addresses, no gateway,
and the runs of those addresses as its allocation pools. Its floating_ips rows
point at it (network_id) and keep their pool name for the compute API's proxy;
each row gets the uuid the network API shows. No row is dropped or changed
otherwise.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 18:00:00
"""
import ipaddress
import uuid
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

revision = '0018'
# 0017 (ports) is the parent at merge; point this at '0016' only on a tree without it
down_revision = '0017'
branch_labels = None
depends_on = None

networks = sa.table(
    'networks', sa.column('id', sa.Integer), sa.column('uuid', sa.String),
    sa.column('label', sa.String), sa.column('description', sa.String),
    sa.column('shared', sa.Boolean), sa.column('external', sa.Boolean),
    sa.column('enable_dhcp', sa.Boolean), sa.column('cidr', sa.String),
    sa.column('netmask', sa.String), sa.column('broadcast', sa.String),
    sa.column('bridge', sa.String), sa.column('multi_host', sa.Boolean),
    sa.column('deleted', sa.Boolean), sa.column('created_at', sa.DateTime))
floating_ips = sa.table(
    'floating_ips', sa.column('id', sa.Integer), sa.column('address', sa.String),
    sa.column('pool', sa.String), sa.column('uuid', sa.String),
    sa.column('network_id', sa.Integer))
subnets = sa.table(
    'subnets', sa.column('uuid', sa.String), sa.column('network_id', sa.Integer),
    sa.column('name', sa.String), sa.column('description', sa.String),
    sa.column('project_id', sa.String), sa.column('ip_version', sa.Integer),
    sa.column('cidr', sa.String), sa.column('gateway_ip', sa.String),
    sa.column('enable_dhcp', sa.Boolean), sa.column('allocation_pools', sa.JSON),
    sa.column('dns_nameservers', sa.JSON), sa.column('host_routes', sa.JSON),
    sa.column('created_at', sa.DateTime))


def covering(addresses: list[ipaddress.IPv4Address]) -> ipaddress.IPv4Network:
    """The smallest network holding every address (a pool made of a CIDR's hosts: it)."""
    low, high = min(addresses), max(addresses)
    for prefix in range(32, -1, -1):
        net = ipaddress.IPv4Network(f'{low}/{prefix}', strict=False)
        if high in net:
            return net
    raise AssertionError('unreachable: /0 holds every address')


def runs(addresses: list[ipaddress.IPv4Address]) -> list[dict[str, str]]:
    pools: list[dict[str, str]] = []
    last = None
    for address in sorted(addresses):
        if last is not None and int(address) == int(last) + 1:
            pools[-1]['end'] = str(address)
        else:
            pools.append({'start': str(address), 'end': str(address)})
        last = address
    return pools


def upgrade() -> None:
    op.add_column('floating_ips', sa.Column('uuid', sa.String(36), nullable=False,
                                            server_default=''))
    op.add_column('floating_ips', sa.Column('network_id', sa.Integer(), nullable=True))
    op.add_column('floating_ips', sa.Column('description', sa.String(255), nullable=False,
                                            server_default=''))
    _backfill(op.get_bind())
    op.create_index('ix_floating_ips_uuid', 'floating_ips', ['uuid'], unique=True)
    op.create_index('ix_floating_ips_network_id', 'floating_ips', ['network_id'])


def _backfill(bind: sa.Connection) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    taken = [ipaddress.ip_network(c) for c in bind.execute(
        sa.select(networks.c.cidr).where(networks.c.cidr.is_not(None))).scalars()]
    by_pool: dict[str, list[tuple[int, str]]] = {}
    for row_id, address, pool in bind.execute(sa.select(
            floating_ips.c.id, floating_ips.c.address, floating_ips.c.pool)
            .order_by(floating_ips.c.id)).all():
        by_pool.setdefault(pool, []).append((row_id, address))
    for pool, rows in sorted(by_pool.items()):
        addresses = [ipaddress.IPv4Address(a) for _, a in rows]
        cidr = covering(addresses)
        # a CIDR other networks overlap stays off the network row (its subnet keeps it)
        free = not any(cidr.overlaps(t) for t in taken)
        network_uuid = str(uuid.uuid4())
        bind.execute(networks.insert().values(
            uuid=network_uuid, label=pool, description='', shared=False, external=True,
            enable_dhcp=False, cidr=str(cidr) if free else None,
            netmask=str(cidr.netmask) if free else None,
            broadcast=str(cidr.broadcast_address) if free else None,
            bridge='', multi_host=False, deleted=False, created_at=now))
        network_id = bind.execute(sa.select(networks.c.id).where(
            networks.c.uuid == network_uuid)).scalar_one()
        if free:
            taken.append(cidr)
        bind.execute(subnets.insert().values(
            uuid=str(uuid.uuid4()), network_id=network_id, name='', description='',
            project_id=None, ip_version=4, cidr=str(cidr), gateway_ip=None,
            enable_dhcp=False, allocation_pools=runs(addresses), dns_nameservers=[],
            host_routes=[], created_at=now))
        for row_id, _ in rows:
            bind.execute(floating_ips.update().where(floating_ips.c.id == row_id).values(
                uuid=str(uuid.uuid4()), network_id=network_id))


def downgrade() -> None:
    # The release before serves every network with a CIDR as a guest network: the
    # external networks (no guest address on them) go, with their subnets. The
    # floating_ips columns go in place (no rebuild); their pool names stay.
    bind = op.get_bind()
    fixed = sa.table('fixed_ips', sa.column('network_id', sa.Integer))
    external = sa.select(networks.c.id).where(
        networks.c.external.is_(True),
        networks.c.id.not_in(sa.select(fixed.c.network_id).distinct()))
    ids = list(bind.execute(external).scalars())
    if ids:
        bind.execute(subnets.delete().where(subnets.c.network_id.in_(ids)))
        bind.execute(networks.delete().where(networks.c.id.in_(ids)))
    op.drop_index('ix_floating_ips_network_id', table_name='floating_ips')
    op.drop_index('ix_floating_ips_uuid', table_name='floating_ips')
    for name in ('description', 'network_id', 'uuid'):
        op.drop_column('floating_ips', name)
