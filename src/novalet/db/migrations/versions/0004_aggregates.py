"""host aggregates and server groups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 12:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('aggregates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', DATETIME, nullable=False),
    sa.Column('updated_at', DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('uuid'),
    **MYSQL_TABLE
    )
    op.create_table('aggregate_hosts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['aggregates.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('aggregate_id', 'host'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('aggregate_hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aggregate_hosts_aggregate_id'), ['aggregate_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_aggregate_hosts_host'), ['host'], unique=False)
    op.create_table('aggregate_metadata',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['aggregates.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('aggregate_id', 'key'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('aggregate_metadata', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_aggregate_metadata_aggregate_id'),
                              ['aggregate_id'], unique=False)


def downgrade() -> None:
    op.drop_table('aggregate_metadata')
    op.drop_table('aggregate_hosts')
    op.drop_table('aggregates')
