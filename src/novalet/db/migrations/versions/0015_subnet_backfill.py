"""subnets: networks.enable_dhcp; one subnet per existing network with a cidr

Each network with L3 columns gets the subnet they describe: its allocation pools
are the runs of addresses the allocator hands out (fixed_ips rows not reserved,
plus a multi_host host's own address, which it took from the free ones), its DNS
servers dns1 and dns2.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 17:00:00
"""
import ipaddress
import uuid
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

networks = sa.table('networks', sa.column('id', sa.Integer), sa.column('cidr', sa.String),
                    sa.column('gateway', sa.String), sa.column('dns1', sa.String),
                    sa.column('dns2', sa.String), sa.column('project_id', sa.String))
fixed_ips = sa.table('fixed_ips', sa.column('network_id', sa.Integer),
                     sa.column('address', sa.String), sa.column('reserved', sa.Boolean),
                     sa.column('host', sa.String), sa.column('instance_uuid', sa.String))
subnets = sa.table(
    'subnets', sa.column('uuid', sa.String), sa.column('network_id', sa.Integer),
    sa.column('name', sa.String), sa.column('description', sa.String),
    sa.column('project_id', sa.String), sa.column('ip_version', sa.Integer),
    sa.column('cidr', sa.String), sa.column('gateway_ip', sa.String),
    sa.column('enable_dhcp', sa.Boolean), sa.column('allocation_pools', sa.JSON),
    sa.column('dns_nameservers', sa.JSON), sa.column('host_routes', sa.JSON),
    sa.column('created_at', sa.DateTime))


def _pools(rows: list[tuple[str, bool, str | None, str | None]]) -> list[dict[str, str]]:
    """Runs of consecutive addresses the allocator hands out, as {"start", "end"}."""
    free = sorted(ipaddress.ip_address(address) for address, reserved, host, instance in rows
                  if not reserved or (host is not None and instance is None))
    pools: list[dict[str, str]] = []
    last = None
    for address in free:
        if last is not None and int(address) == int(last) + 1:
            pools[-1]['end'] = str(address)
        else:
            pools.append({'start': str(address), 'end': str(address)})
        last = address
    return pools


# enable_dhcp is true on every existing network, also one made under [network]
# mode flat (where os-networks now makes it false): no row tells flat from
# flat_dhcp and a migration cannot read the config. Hosts in flat mode serve no
# DHCP whatever the column says (network/state.py); only the API shows it wrong.
def upgrade() -> None:
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enable_dhcp', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    bind = op.get_bind()
    have = set(bind.execute(sa.select(subnets.c.network_id)).scalars())
    rows = bind.execute(sa.select(networks).where(networks.c.cidr.is_not(None))
                        .order_by(networks.c.id)).all()
    now = datetime.now(UTC).replace(tzinfo=None)
    for network in rows:
        if network.id in have:
            continue
        addresses = bind.execute(sa.select(
            fixed_ips.c.address, fixed_ips.c.reserved, fixed_ips.c.host,
            fixed_ips.c.instance_uuid).where(fixed_ips.c.network_id == network.id)).all()
        bind.execute(subnets.insert().values(
            uuid=str(uuid.uuid4()), network_id=network.id, name='', description='',
            project_id=network.project_id, ip_version=4, cidr=network.cidr,
            gateway_ip=network.gateway, enable_dhcp=True,
            allocation_pools=_pools([tuple(a) for a in addresses]),
            dns_nameservers=[s for s in (network.dns1, network.dns2) if s],
            host_routes=[], created_at=now))


def downgrade() -> None:
    # The backfilled subnets stay: 0014 reads no subnet, and an upgrade again
    # backfills only networks without one.
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_column('enable_dhcp')
