"""identity groups, application credentials, token revocations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 12:00:00
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    domains = op.create_table('domains',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', DATETIME, nullable=False),
    sa.Column('updated_at', DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    **MYSQL_TABLE
    )
    # Users and projects made before this migration live in it; it can't be deleted.
    op.bulk_insert(domains, [{
        "id": "default", "name": "Default", "description": "The default domain",
        "enabled": True, "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None)}])
    op.create_table('identity_groups',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', DATETIME, nullable=False),
    sa.Column('updated_at', DATETIME, nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('domain_id', 'name'),
    **MYSQL_TABLE
    )
    op.create_table('group_memberships',
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['identity_groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('group_memberships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_memberships_user_id'), ['user_id'],
                              unique=False)
    op.create_table('scoped_assignments',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('role_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['roles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('kind', 'actor_id', 'target_id', 'role_id'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('scoped_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scoped_assignments_target_id'), ['target_id'],
                              unique=False)
    op.create_table('application_credentials',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('secret_hash', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('expires_at', DATETIME, nullable=True),
    sa.Column('unrestricted', sa.Boolean(), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('created_at', DATETIME, nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'name'),
    **MYSQL_TABLE
    )
    op.create_table('revocation_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('audit_id', sa.String(length=64), nullable=True),
    sa.Column('app_cred_id', sa.String(length=64), nullable=True),
    sa.Column('issued_before', DATETIME, nullable=False),
    sa.Column('revoked_at', DATETIME, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    **MYSQL_TABLE
    )
    with op.batch_alter_table('revocation_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revocation_events_revoked_at'), ['revoked_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('revocation_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revocation_events_revoked_at'))
    op.drop_table('revocation_events')
    op.drop_table('application_credentials')
    with op.batch_alter_table('scoped_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scoped_assignments_target_id'))
    op.drop_table('scoped_assignments')
    with op.batch_alter_table('group_memberships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_memberships_user_id'))
    op.drop_table('group_memberships')
    op.drop_table('identity_groups')
    op.drop_table('domains')
