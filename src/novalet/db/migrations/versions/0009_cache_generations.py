"""cache generations

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 06:10:00
"""
from alembic import op
import sqlalchemy as sa

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cache_generations',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    **MYSQL_TABLE
    )


def downgrade() -> None:
    op.drop_table('cache_generations')
