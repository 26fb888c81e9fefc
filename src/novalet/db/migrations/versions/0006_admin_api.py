"""migrations and instance usage records: move records (os-migrations), each
compute node's hypervisor facts (os-hypervisors' ids, type and version) and the
instance usage audit's task log (os-instance-usage-audit-log)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 12:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('migrations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('source_compute', sa.String(length=255), nullable=True),
    sa.Column('dest_compute', sa.String(length=255), nullable=True),
    sa.Column('source_node', sa.String(length=255), nullable=True),
    sa.Column('dest_node', sa.String(length=255), nullable=True),
    sa.Column('dest_host', sa.String(length=255), nullable=True),
    sa.Column('old_instance_type_id', sa.Integer(), nullable=True),
    sa.Column('new_instance_type_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=255), nullable=False),
    sa.Column('migration_type', sa.String(length=32), nullable=False),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('created_at', DATETIME, nullable=False),
    sa.Column('updated_at', DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_migrations_instance_uuid'), ['instance_uuid'], unique=False)
        batch_op.create_index(batch_op.f('ix_migrations_updated'), ['updated_at', 'id'], unique=False)

    op.create_table('compute_nodes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_hostname', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_type', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_version', sa.Integer(), nullable=False),
    sa.Column('host_ip', sa.String(length=39), nullable=True),
    sa.Column('cpu_info', sa.Text(), nullable=False),
    sa.Column('created_at', DATETIME, nullable=False),
    sa.Column('updated_at', DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid'),
    sa.UniqueConstraint('hypervisor_hostname'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_nodes_host'), ['host'], unique=False)


    op.create_table('task_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('task_name', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('period_beginning', DATETIME, nullable=False),
    sa.Column('period_ending', DATETIME, nullable=False),
    sa.Column('message', sa.String(length=255), nullable=False),
    sa.Column('task_items', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('created_at', DATETIME, nullable=False),
    sa.Column('updated_at', DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_name', 'host', 'period_beginning', 'period_ending'),
    **MYSQL_TABLE
    )


def downgrade() -> None:
    op.drop_table('task_log')
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compute_nodes_host'))
    op.drop_table('compute_nodes')
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_migrations_updated'))
        batch_op.drop_index(batch_op.f('ix_migrations_instance_uuid'))
    op.drop_table('migrations')
