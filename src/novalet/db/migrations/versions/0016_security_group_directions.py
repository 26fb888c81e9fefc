"""security groups with Neutron's semantics: uuids, rule direction, ethertype

Every existing group gets Neutron's egress rules (IPv4 and IPv6 to anywhere),
so instances keep the outbound traffic they had while egress was not filtered;
default groups also get the IPv6 ingress rule from their own members, as
Neutron's default group has.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 17:00:00
"""
import datetime as dt
import uuid

from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

GROUPS = sa.table('security_groups', sa.column('id', sa.Integer),
                  sa.column('name', sa.String), sa.column('uuid', sa.String))
RULES = sa.table('security_group_rules', sa.column('id', sa.Integer),
                 sa.column('uuid', sa.String), sa.column('parent_group_id', sa.Integer),
                 sa.column('group_id', sa.Integer), sa.column('direction', sa.String),
                 sa.column('ethertype', sa.String), sa.column('description', sa.String),
                 sa.column('created_at', sa.DateTime))


# Nothing here rebuilds security_groups (columns are added in place, uniqueness
# is a unique index): a rebuild is safe only inside migrate.sync, and this need
# not be. uuid is nullable with no default: during a rolling upgrade a process of
# the release before inserts groups and rules without one, and NULLs never
# collide in a unique index (SQLite, PostgreSQL, MySQL/MariaDB); the network API
# fills a missing uuid when it reads (db/security_groups.fill_missing_uuids).
def upgrade() -> None:
    for table in ('security_groups', 'security_group_rules'):
        op.add_column(table, sa.Column('uuid', sa.String(36), nullable=True))
    op.add_column('security_group_rules', sa.Column('direction', sa.String(16),
                                                    nullable=False, server_default='ingress'))
    op.add_column('security_group_rules', sa.Column('ethertype', sa.String(16),
                                                    nullable=False, server_default='IPv4'))
    op.add_column('security_group_rules', sa.Column('description', sa.String(255),
                                                    nullable=False, server_default=''))
    _backfill(op.get_bind())
    for table in ('security_groups', 'security_group_rules'):
        op.create_index(f'ix_{table}_uuid', table, ['uuid'], unique=True)


def _backfill(bind: sa.Connection) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for (rule_id,) in bind.execute(sa.select(RULES.c.id)).all():
        bind.execute(RULES.update().where(RULES.c.id == rule_id)
                     .values(uuid=str(uuid.uuid4())))
    new_rules = []
    for group_id, name in bind.execute(sa.select(GROUPS.c.id, GROUPS.c.name)).all():
        bind.execute(GROUPS.update().where(GROUPS.c.id == group_id)
                     .values(uuid=str(uuid.uuid4())))
        wanted = [('egress', 'IPv4', None), ('egress', 'IPv6', None)]
        if name == 'default':
            wanted.append(('ingress', 'IPv6', group_id))
        new_rules += [dict(uuid=str(uuid.uuid4()), parent_group_id=group_id, group_id=remote,
                           direction=direction, ethertype=ethertype, description='',
                           created_at=now)
                      for direction, ethertype, remote in wanted]
    if new_rules:
        bind.execute(RULES.insert(), new_rules)


def downgrade() -> None:
    bind = op.get_bind()
    # the release before knew only ingress rules (and rendered any rule as one)
    bind.execute(RULES.delete().where(
        (RULES.c.direction == 'egress') | (RULES.c.ethertype == 'IPv6')))
    for table in ('security_group_rules', 'security_groups'):
        op.drop_index(f'ix_{table}_uuid', table_name=table)
    # plain DROP COLUMN (SQLite 3.35+): no rebuild, so no cascade
    for name in ('description', 'ethertype', 'direction', 'uuid'):
        op.drop_column('security_group_rules', name)
    op.drop_column('security_groups', 'uuid')
