"""migration progress

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

COLUMNS = ('memory_total', 'memory_processed', 'memory_remaining', 'disk_total',
           'disk_processed', 'disk_remaining')


def upgrade() -> None:
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
