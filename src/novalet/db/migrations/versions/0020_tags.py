"""tags: a table of tags on network API resources (standard-attr-tag)

One row per (resource kind, resource id, tag); the kind is the resource's
collection ("networks", "subnets", "ports", "security-groups", "floatingips").
The unique constraint's index serves lookups by resource. Nothing existing changes.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 19:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tags',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('resource_type', sa.String(32), nullable=False),
        sa.Column('resource_id', sa.String(36), nullable=False),
        sa.Column('tag', sa.String(60), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('resource_type', 'resource_id', 'tag'))


def downgrade() -> None:
    op.drop_table('tags')
