"""network API: network attributes, nullable L3 columns, subnets

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 16:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from novalet.db.migrate import MigrationError

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

FLAGS = (('shared', False), ('external', False), ('admin_state_up', True),
         ('port_security_enabled', True))
L3 = (('cidr', 43), ('gateway', 39), ('netmask', 39), ('broadcast', 39), ('dhcp_start', 39))


def upgrade() -> None:
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.String(255), nullable=False,
                                      server_default=''))
        for name, default in FLAGS:
            batch_op.add_column(sa.Column(name, sa.Boolean(), nullable=False,
                                          server_default=sa.true() if default else sa.false()))
        for name, size in L3:
            batch_op.alter_column(name, existing_type=sa.String(size), nullable=True)
    op.create_table(
        'subnets',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('network_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('description', sa.String(255), nullable=False),
        sa.Column('project_id', sa.String(64), nullable=True),
        sa.Column('ip_version', sa.Integer(), nullable=False),
        sa.Column('cidr', sa.String(43), nullable=False),
        sa.Column('gateway_ip', sa.String(39), nullable=True),
        sa.Column('enable_dhcp', sa.Boolean(), nullable=False),
        sa.Column('allocation_pools', sa.JSON(), nullable=False),
        sa.Column('dns_nameservers', sa.JSON(), nullable=False),
        sa.Column('host_routes', sa.JSON(), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('updated_at', DATETIME, nullable=True),
        sa.ForeignKeyConstraint(['network_id'], ['networks.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uuid'))
    with op.batch_alter_table('subnets', schema=None) as batch_op:
        batch_op.create_index('ix_subnets_network_id', ['network_id'], unique=False)
        batch_op.create_index('ix_subnets_project_id', ['project_id'], unique=False)


def downgrade() -> None:
    _drop_networks_without_subnet(op.get_bind())
    op.drop_table('subnets')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        for name, size in reversed(L3):
            batch_op.alter_column(name, existing_type=sa.String(size), nullable=False)
        for name, _ in reversed(FLAGS):
            batch_op.drop_column(name)
        batch_op.drop_column('description')


def _drop_networks_without_subnet(bind: sa.Connection) -> None:
    """The release before has no network without L3 columns: the network API's
    networks that never got a subnet go (subnets all go). Their child rows are
    deleted here, as nothing cascades while migrate.py has SQLite's foreign keys
    off; a NIC on one is refused (it is a server's, and needs deleting first)."""
    networks = sa.table('networks', sa.column('id', sa.Integer), sa.column('uuid', sa.String),
                        sa.column('cidr', sa.String))
    nics = sa.table('virtual_interfaces', sa.column('network_id', sa.Integer),
                    sa.column('instance_uuid', sa.String))
    fixed_ips = sa.table('fixed_ips', sa.column('network_id', sa.Integer))
    doomed = sa.select(networks.c.id).where(networks.c.cidr.is_(None))
    used = bind.execute(sa.select(networks.c.uuid, nics.c.instance_uuid)
                        .join(nics, nics.c.network_id == networks.c.id)
                        .where(networks.c.cidr.is_(None))).all()
    if used:
        raise MigrationError(
            'Cannot downgrade past 0014: servers have NICs on networks without a subnet '
            f'(network, server: {[tuple(row) for row in used[:5]]}). Remove those '
            'interfaces (or delete the servers) first.')
    bind.execute(fixed_ips.delete().where(fixed_ips.c.network_id.in_(doomed)))
    bind.execute(networks.delete().where(networks.c.cidr.is_(None)))
