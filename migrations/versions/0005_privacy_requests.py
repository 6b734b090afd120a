"""privacy requests: the opt-out list, their audit, opt-out notices to schools

``opt_outs`` holds the keyed hash of each opted-out email and phone (never the value);
``privacy_requests`` audits each opt-out and erase request (who, when, how many leads);
``opt_out_notices`` and their attempts tell schools which of the person's leads they may
have. A lead records when its person opted out and when its personal data was erased.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-28 09:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PENDING = sa.text("delivery_state = 'pending'")


def upgrade():
    op.add_column('leads', sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('leads', sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'opt_outs',
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('hash', name=op.f('pk_opt_outs')),
    )
    op.create_table(
        'privacy_requests',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('requested_by', sa.String(length=80), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('leads_affected', sa.Integer(), nullable=False),
        sa.Column('notices', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_requests')),
    )
    op.create_table(
        'opt_out_notices',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('school_id', sa.String(length=40), nullable=False),
        sa.Column('lead_ids', sa.JSON(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivery_state', sa.String(length=12), nullable=True),
        sa.Column('attempt_count', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('claimed_by', sa.String(length=80), nullable=True),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_opt_out_notices_school_id_schools')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_opt_out_notices')),
    )
    op.create_index('ix_opt_out_notices_school_requested', 'opt_out_notices', ['school_id', 'requested_at'],
                    unique=False)
    op.create_index('ix_opt_out_notices_due', 'opt_out_notices', ['next_attempt_at'], unique=False,
                    sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_table(
        'opt_out_notice_attempts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('notice_id', sa.String(length=40), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('http_status', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=12), nullable=False),
        sa.Column('latency_ms', sa.Integer(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['notice_id'], ['opt_out_notices.id'],
                                name=op.f('fk_opt_out_notice_attempts_notice_id_opt_out_notices')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_opt_out_notice_attempts')),
    )
    op.create_index(op.f('ix_opt_out_notice_attempts_notice_id'), 'opt_out_notice_attempts', ['notice_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_opt_out_notice_attempts_notice_id'), table_name='opt_out_notice_attempts')
    op.drop_table('opt_out_notice_attempts')
    op.drop_index('ix_opt_out_notices_due', table_name='opt_out_notices', sqlite_where=PENDING,
                  postgresql_where=PENDING)
    op.drop_index('ix_opt_out_notices_school_requested', table_name='opt_out_notices')
    op.drop_table('opt_out_notices')
    op.drop_table('privacy_requests')
    op.drop_table('opt_outs')
    # Plain ALTER TABLE (SQLite 3.35+): a batch copy of leads would trip the foreign keys that point at it.
    op.execute('ALTER TABLE leads DROP COLUMN erased_at')
    op.execute('ALTER TABLE leads DROP COLUMN opted_out_at')
