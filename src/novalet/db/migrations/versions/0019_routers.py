"""routers: routers, their subnet interfaces, a gateway address, routed networks

A router (`routers`) belongs to a project; its external gateway is an external
network (`gw_network_id`) and one of that network's `floating_ips` rows, marked
with `floating_ips.router_id` (held by the router, no project: it is no floating
IP and no allocation hands it out). An interface (`router_interfaces`) joins a
subnet to a router at the subnet's gateway address; its uuid is the port id the
network API shows. `networks.needs_router`: a network made through the network
API reaches the outside only through a router with a gateway; every existing
network (the nova-network face's) keeps reaching it through the host, so false.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 19:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade() -> None:
    op.create_table(
        'routers',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('project_id', sa.String(64), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('description', sa.String(255), nullable=False),
        sa.Column('admin_state_up', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('gw_network_id', sa.Integer(), sa.ForeignKey('networks.id'), nullable=True),
        sa.Column('enable_snat', sa.Boolean(), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('updated_at', DATETIME, nullable=True),
        sa.UniqueConstraint('uuid'))
    op.create_index('ix_routers_project_id', 'routers', ['project_id'])
    op.create_index('ix_routers_gw_network_id', 'routers', ['gw_network_id'])
    op.create_table(
        'router_interfaces',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('router_id', sa.Integer(), sa.ForeignKey('routers.id', ondelete='CASCADE'),
                  nullable=False),
        # a subnet is on one router at most
        sa.Column('subnet_id', sa.Integer(), sa.ForeignKey('subnets.id'), nullable=False),
        sa.Column('created_at', DATETIME, nullable=False),
        sa.Column('updated_at', DATETIME, nullable=True),
        sa.UniqueConstraint('uuid'), sa.UniqueConstraint('subnet_id'))
    op.create_index('ix_router_interfaces_router_id', 'router_interfaces', ['router_id'])
    op.add_column('floating_ips', sa.Column('router_id', sa.Integer(), nullable=True))
    op.create_index('ix_floating_ips_router_id', 'floating_ips', ['router_id'])
    op.add_column('networks', sa.Column('needs_router', sa.Boolean(), nullable=False,
                                        server_default=sa.false()))


def downgrade() -> None:
    # The release before knows no routers: gateway addresses become free again and
    # every network reaches the outside through the host, as it did there.
    op.drop_column('networks', 'needs_router')
    op.drop_index('ix_floating_ips_router_id', table_name='floating_ips')
    op.drop_column('floating_ips', 'router_id')
    # the tables' indexes go with them (MariaDB refuses to drop one a foreign key needs)
    op.drop_table('router_interfaces')
    op.drop_table('routers')
