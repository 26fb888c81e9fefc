"""ports: virtual_interfaces gain what a Neutron port has

A port is a `virtual_interfaces` row (docs/network-api.md): a server's NIC is a
port bound to it, and a port made through the network API has no instance until
a server is booted on it, so `instance_uuid` becomes nullable. Existing NICs get
their server's project and `device_owner` "compute:<the server's zone>", as Nova
writes on the ports it binds. The binding host is not stored: it is the bound
server's host, read from its row, so it can't disagree with it after a move.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 18:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

VIFS = sa.table('virtual_interfaces', sa.column('id', sa.Integer),
                sa.column('instance_uuid', sa.String), sa.column('project_id', sa.String),
                sa.column('device_owner', sa.String))
INSTANCES = sa.table('instances', sa.column('uuid', sa.String),
                     sa.column('project_id', sa.String),
                     sa.column('availability_zone', sa.String))
FIXED = sa.table('fixed_ips', sa.column('virtual_interface_id', sa.Integer),
                 sa.column('allocated', sa.Boolean))
TEXT = (('project_id', None), ('name', ''), ('description', ''), ('device_owner', ''))
FLAGS = (('admin_state_up', True), ('port_security_enabled', True),
         ('preserve_on_delete', False))
LISTS = ('allowed_address_pairs', 'security_groups')


# virtual_interfaces has no children by foreign key (fixed_ips.virtual_interface_id
# is a plain column), so the SQLite batch rebuild below cascades into nothing; the
# test checks fixed_ips and floating_ips keep their rows anyway.
def upgrade() -> None:
    with op.batch_alter_table('virtual_interfaces', schema=None) as batch_op:
        for name, default in TEXT:
            batch_op.add_column(sa.Column(name, sa.String(255), nullable=default is None,
                                          server_default=default))
        # preserve_on_delete: a port made through the network API, which a server
        # booted on it gives back (unbound) when it goes, as Nova does
        for name, default in FLAGS:
            batch_op.add_column(sa.Column(name, sa.Boolean(), nullable=False,
                                          server_default=sa.true() if default else sa.false()))
        # JSON lists: allowed address pairs; the groups of a port not bound to a
        # server (a bound port's groups are its server's, security_group_instances)
        for name in LISTS:
            batch_op.add_column(sa.Column(name, sa.JSON(), nullable=True))
        batch_op.alter_column('instance_uuid', existing_type=sa.String(36), nullable=True)
        batch_op.create_index('ix_virtual_interfaces_project_id', ['project_id'])
    _backfill(op.get_bind())


def _backfill(bind: sa.Connection) -> None:
    rows = bind.execute(sa.select(VIFS.c.id, INSTANCES.c.project_id,
                                  INSTANCES.c.availability_zone)
                        .join(INSTANCES, INSTANCES.c.uuid == VIFS.c.instance_uuid)).all()
    for vif_id, project_id, zone in rows:
        bind.execute(VIFS.update().where(VIFS.c.id == vif_id).values(
            project_id=project_id, device_owner=f"compute:{zone or 'nova'}"))


def downgrade() -> None:
    bind = op.get_bind()
    # the release before knew NICs of servers only: a port bound to none goes, and
    # its addresses go back to the pool
    unbound = sa.select(VIFS.c.id).where(VIFS.c.instance_uuid.is_(None))
    bind.execute(FIXED.update().where(FIXED.c.virtual_interface_id.in_(unbound)).values(
        virtual_interface_id=None, allocated=False))
    bind.execute(VIFS.delete().where(VIFS.c.instance_uuid.is_(None)))
    # a user's port bound to a server stays as that server's NIC (it was one then)
    with op.batch_alter_table('virtual_interfaces', schema=None) as batch_op:
        batch_op.drop_index('ix_virtual_interfaces_project_id')
        batch_op.alter_column('instance_uuid', existing_type=sa.String(36), nullable=False)
        for name in LISTS + tuple(n for n, _ in FLAGS) + tuple(n for n, _ in reversed(TEXT)):
            batch_op.drop_column(name)
