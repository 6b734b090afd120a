"""lead request ids and the signing secret kept through a rotation

A lead keeps the id of the request that submitted it, so the log lines of its delivery
attempts (in the workers, and after the sweeper re-sends it) carry the same request id as
the intake's. A school keeps its previous ``whsec_`` signing secret, encrypted, until a
moment after a rotation: until then deliveries carry a signature under each secret.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 11:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('leads', sa.Column('request_id', sa.String(length=64), nullable=True))
    op.add_column('schools', sa.Column('delivery_secret_previous_encrypted', sa.Text(), nullable=True))
    op.add_column('schools', sa.Column('delivery_secret_previous_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Plain ALTER TABLE (SQLite 3.35+): a batch copy would trip the foreign keys that point at these tables.
    op.execute('ALTER TABLE schools DROP COLUMN delivery_secret_previous_until')
    op.execute('ALTER TABLE schools DROP COLUMN delivery_secret_previous_encrypted')
    op.execute('ALTER TABLE leads DROP COLUMN request_id')
