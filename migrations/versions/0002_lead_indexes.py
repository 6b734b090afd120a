"""lead indexes: the school feed in order; fewer indexes for intake to write

Each accepted lead writes a page of every index of ``leads`` and ``delivery_jobs``.
``ix_leads_school_id`` becomes (school_id, created_at), which also serves the feed's
order; ``ix_leads_publisher_id`` is dropped (no query reads leads by publisher);
the sweeper's (state, next_attempt_at) lookup takes one index instead of two, and on
SQLite the job table is stored WITHOUT ROWID (one B-tree with its primary key). The
duplicate checks' indexes gain created_at, so they cover the 30-day window and stay
the planner's choice over (school_id, created_at).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 05:30:00

"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index('ix_leads_school_id')
        batch_op.drop_index('ix_leads_publisher_id')
        batch_op.create_index('ix_leads_school_created', ['school_id', 'created_at'], unique=False)
        for kind in ('email', 'phone'):
            batch_op.drop_index(f'ix_leads_school_{kind}_hash')
            batch_op.create_index(f'ix_leads_school_{kind}_hash', ['school_id', f'{kind}_hash', 'created_at'],
                                  unique=False)
    # On SQLite the job table becomes its primary key's B-tree (WITHOUT ROWID; its rows are small).
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('delivery_jobs', schema=None, recreate='always' if sqlite else 'auto',
                              table_kwargs={'sqlite_with_rowid': False} if sqlite else {}) as batch_op:
        batch_op.drop_index('ix_delivery_jobs_state')
        batch_op.drop_index('ix_delivery_jobs_next_attempt_at')
        batch_op.create_index('ix_delivery_jobs_due', ['state', 'next_attempt_at'], unique=False)


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('delivery_jobs', schema=None, recreate='always' if sqlite else 'auto',
                              table_kwargs={'sqlite_with_rowid': True} if sqlite else {}) as batch_op:
        batch_op.drop_index('ix_delivery_jobs_due')
        batch_op.create_index('ix_delivery_jobs_next_attempt_at', ['next_attempt_at'], unique=False)
        batch_op.create_index('ix_delivery_jobs_state', ['state'], unique=False)
    with op.batch_alter_table('leads', schema=None) as batch_op:
        for kind in ('email', 'phone'):
            batch_op.drop_index(f'ix_leads_school_{kind}_hash')
            batch_op.create_index(f'ix_leads_school_{kind}_hash', ['school_id', f'{kind}_hash'], unique=False)
        batch_op.drop_index('ix_leads_school_created')
        batch_op.create_index('ix_leads_publisher_id', ['publisher_id'], unique=False)
        batch_op.create_index('ix_leads_school_id', ['school_id'], unique=False)
