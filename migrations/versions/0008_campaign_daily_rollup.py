"""rollups per day and campaign, for reports that neither group nor filter by publisher

A report by day and campaign summed every publisher's and ad's daily row per group; it now reads
one row per group. Filled from the daily rollup on upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

METRICS = ('impressions', 'bot_impressions', 'clicks', 'bot_clicks', 'leads', 'delivered', 'rejected', 'failed',
           'returned', 'spend_cents')


def upgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    identifier = sa.String(length=40, collation='C') if postgresql else sa.String(length=40)
    op.create_table(
        'rollup_campaign_daily',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('campaign_id', identifier, nullable=False),
        sa.Column('school_id', identifier, nullable=False),
        *[sa.Column(name, sa.BigInteger() if name == 'spend_cents' else sa.Integer(), nullable=False)
          for name in METRICS],
        sa.PrimaryKeyConstraint('day', 'campaign_id', name=op.f('pk_rollup_campaign_daily'),
                                postgresql_include=['school_id', *METRICS]),
    )
    op.execute(f"INSERT INTO rollup_campaign_daily (day, campaign_id, school_id, {', '.join(METRICS)}) "
               f"SELECT day, campaign_id, MAX(school_id), {', '.join(f'SUM({name})' for name in METRICS)} "
               f"FROM rollup_daily GROUP BY day, campaign_id")


def downgrade():
    op.drop_table('rollup_campaign_daily')
