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
# 0015 (subnets) is the parent; point this at '0014' only on a tree without it
down_revision = '0014'
branch_labels = None
depends_on = None

GROUPS = sa.table('security_groups', sa.column('id', sa.Integer),
                  sa.column('name', sa.String), sa.column('uuid', sa.String))
RULES = sa.table('security_group_rules', sa.column('id', sa.Integer),
                 sa.column('uuid', sa.String), sa.column('parent_group_id', sa.Integer),
                 sa.column('group_id', sa.Integer), sa.column('direction', sa.String),
                 sa.column('ethertype', sa.String), sa.column('description', sa.String),
                 sa.column('created_at', sa.DateTime))


def upgrade() -> None:
    with op.batch_alter_table('security_groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uuid', sa.String(36), nullable=True))
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uuid', sa.String(36), nullable=True))
        batch_op.add_column(sa.Column('direction', sa.String(16), nullable=False,
                                      server_default='ingress'))
        batch_op.add_column(sa.Column('ethertype', sa.String(16), nullable=False,
                                      server_default='IPv4'))
        batch_op.add_column(sa.Column('description', sa.String(255), nullable=False,
                                      server_default=''))
    _backfill(op.get_bind())
    with op.batch_alter_table('security_groups', schema=None) as batch_op:
        batch_op.alter_column('uuid', existing_type=sa.String(36), nullable=False)
        batch_op.create_unique_constraint('uq_security_groups_uuid', ['uuid'])
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.alter_column('uuid', existing_type=sa.String(36), nullable=False)
        batch_op.create_unique_constraint('uq_security_group_rules_uuid', ['uuid'])


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
    with op.batch_alter_table('security_group_rules', schema=None) as batch_op:
        batch_op.drop_constraint('uq_security_group_rules_uuid', type_='unique')
        for name in ('description', 'ethertype', 'direction', 'uuid'):
            batch_op.drop_column(name)
    with op.batch_alter_table('security_groups', schema=None) as batch_op:
        batch_op.drop_constraint('uq_security_groups_uuid', type_='unique')
        batch_op.drop_column('uuid')
