"""auto-allocated topology: networks.is_default and auto_allocated_topologies

networks.is_default marks the default external network (Neutron's is_default):
True or NULL, under a unique index, so that at most one network is the default
whatever the database. auto_allocated_topologies records each project's
get-me-a-network topology (its network; its router once routers exist), gone
with its network. Existing rows are unchanged (no network is the default).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 19:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0021'
# the head at branch time; the lead re-chains it onto the head at merge
down_revision = '0020'
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade() -> None:
    # A nullable column is added in place (no SQLite rebuild of networks, which
    # subnets, fixed IPs and floating IPs reference).
    op.add_column('networks', sa.Column('is_default', sa.Boolean(), nullable=True))
    op.create_index('ix_networks_is_default', 'networks', ['is_default'], unique=True)
    op.create_table(
        'auto_allocated_topologies',
        sa.Column('project_id', sa.String(64), primary_key=True),
        sa.Column('network_id', sa.Integer(),
                  sa.ForeignKey('networks.id', ondelete='CASCADE'), nullable=False),
        sa.Column('router_id', sa.String(36), nullable=True),
        sa.Column('created_at', _TIMESTAMP, nullable=False))
    op.create_index('ix_auto_allocated_topologies_network_id', 'auto_allocated_topologies',
                    ['network_id'], unique=False)


def downgrade() -> None:
    # its index goes with it (MariaDB refuses to drop an index a foreign key uses)
    op.drop_table('auto_allocated_topologies')
    op.drop_index('ix_networks_is_default', table_name='networks')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_column('is_default')
