"""idempotency answers sealed, and kept a day

The first answer to a POST sent with an Idempotency-Key can hold a secret shown once (a new API
key, a school's signing secret): it is now stored encrypted, like personal data, and deleted after a
day. The answers stored in the clear before are deleted here (a repeat of one of those requests
now runs it again).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.execute('DELETE FROM idempotency_records')
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.alter_column('response_body', new_column_name='response_body_enc')
        batch_op.create_index(batch_op.f('ix_idempotency_records_created_at'), ['created_at'], unique=False)


def downgrade():
    op.execute('DELETE FROM idempotency_records')
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_records_created_at'))
        batch_op.alter_column('response_body_enc', new_column_name='response_body')
