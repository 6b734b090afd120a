"""the delivery job moves into its lead's row

A lead has at most one delivery job, so its state, attempt count, next attempt and claim
become columns of ``leads``: intake writes one row instead of two, and three B-trees fewer
per lead (the job table, its lead_id index and its due index; a partial index of the pending
jobs takes their place). Existing jobs are copied; downgrade copies them back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

PENDING = sa.text("delivery_state = 'pending'")
# The job's columns under their names in each table.
MOVED = (('state', 'delivery_state'), ('attempts', 'attempt_count'), ('next_attempt_at', 'next_attempt_at'),
         ('claimed_by', 'claimed_by'), ('claimed_until', 'claimed_until'))


def upgrade():
    op.add_column('leads', sa.Column('delivery_state', sa.String(length=12), nullable=True))
    op.add_column('leads', sa.Column('attempt_count', sa.Integer(), server_default='0', nullable=False))
    op.add_column('leads', sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('leads', sa.Column('claimed_by', sa.String(length=80), nullable=True))
    op.add_column('leads', sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    copied = ', '.join(f'{lead_column} = (SELECT j.{job_column} FROM delivery_jobs j WHERE j.lead_id = leads.id)'
                       for job_column, lead_column in MOVED)
    op.execute(f'UPDATE leads SET {copied} WHERE id IN (SELECT lead_id FROM delivery_jobs)')
    op.create_index('ix_leads_delivery_due', 'leads', ['next_attempt_at'], unique=False,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.drop_table('delivery_jobs')


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    op.create_table(
        'delivery_jobs',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('lead_id', sa.String(length=40), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_by', sa.String(length=80), nullable=True),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_delivery_jobs_lead_id_leads')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_jobs')),
        sa.UniqueConstraint('lead_id', name=op.f('uq_delivery_jobs_lead_id')),
        **({'sqlite_with_rowid': False} if sqlite else {}),
    )
    op.create_index('ix_delivery_jobs_due', 'delivery_jobs', ['state', 'next_attempt_at'], unique=False)
    # A lead id is "lead_" and 26 characters; its job's id keeps the 26.
    job_id = "'job_' || substr(id, 6)"
    job_columns = ', '.join(job_column for job_column, _ in MOVED)
    lead_columns = ', '.join(lead_column for _, lead_column in MOVED)
    op.execute(f'INSERT INTO delivery_jobs (id, lead_id, {job_columns}, created_at, updated_at) '
               f'SELECT {job_id}, id, {lead_columns}, created_at, updated_at FROM leads '
               f'WHERE delivery_state IS NOT NULL')
    op.drop_index('ix_leads_delivery_due', table_name='leads', sqlite_where=PENDING, postgresql_where=PENDING)
    # Plain ALTER TABLE (SQLite 3.35+): a batch copy of leads would trip the foreign keys that point at it.
    for _, lead_column in reversed(MOVED):
        op.execute(f'ALTER TABLE leads DROP COLUMN {lead_column}')
