"""rollups for reports: hourly and daily rows per campaign, ad and publisher

Reports read these instead of raw events, so the impressions table keeps only its time index
(for retention) and the clicks table drops its publisher and school indexes. Existing
impressions, clicks and leads are rolled up on upgrade, so reports cover the time before it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

METRICS = ('impressions', 'bot_impressions', 'clicks', 'bot_clicks', 'leads', 'delivered', 'rejected', 'failed',
           'returned', 'spend_cents')


def _create(table, bucket, include=()):
    # Ids compare byte by byte on PostgreSQL (collation "C"); the daily key's index carries the figures.
    postgresql = op.get_bind().dialect.name == 'postgresql'
    identifier = sa.String(length=40, collation='C') if postgresql else sa.String(length=40)
    op.create_table(
        table,
        bucket,
        sa.Column('campaign_id', identifier, nullable=False),
        sa.Column('ad_id', identifier, nullable=False),
        sa.Column('publisher_id', identifier, nullable=False),
        sa.Column('school_id', identifier, nullable=False),
        *[sa.Column(name, sa.BigInteger() if name == 'spend_cents' else sa.Integer(), nullable=False)
          for name in METRICS],
        sa.PrimaryKeyConstraint(bucket.name, 'campaign_id', 'ad_id', 'publisher_id', name=op.f(f'pk_{table}'),
                                postgresql_include=list(include)),
    )


def _backfill(table, bucket_of):
    """Roll up what is already recorded: impressions and clicks by their time, leads by the time
    they were accepted (a pull school's accepted lead is in its feed, so it counts as delivered)."""
    billed = ("(l.status IN ('delivered', 'returned') OR (l.status = 'accepted' AND s.delivery_method = 'pull'))")
    sources = f"""
        SELECT {bucket_of('at')} AS bucket, campaign_id, ad_id, COALESCE(publisher_id, '') AS publisher_id,
               school_id, CASE WHEN is_bot THEN 0 ELSE 1 END AS impressions,
               CASE WHEN is_bot THEN 1 ELSE 0 END AS bot_impressions, 0 AS clicks, 0 AS bot_clicks, 0 AS leads,
               0 AS delivered, 0 AS rejected, 0 AS failed, 0 AS returned, 0 AS spend_cents
        FROM impressions
        UNION ALL
        SELECT {bucket_of('at')}, campaign_id, ad_id, COALESCE(publisher_id, ''), school_id, 0, 0,
               CASE WHEN counted THEN 1 ELSE 0 END, CASE WHEN is_bot THEN 1 ELSE 0 END, 0, 0, 0, 0, 0, spend_cents
        FROM clicks
        UNION ALL
        SELECT {bucket_of('l.created_at')}, l.campaign_id, COALESCE(l.ad_id, ''), COALESCE(l.publisher_id, ''),
               l.school_id, 0, 0, 0, 0, 1,
               CASE WHEN {billed} THEN 1 ELSE 0 END, CASE WHEN l.status = 'rejected' THEN 1 ELSE 0 END,
               CASE WHEN l.status = 'failed' THEN 1 ELSE 0 END, CASE WHEN l.status = 'returned' THEN 1 ELSE 0 END,
               CASE WHEN l.pricing_model = 'cpl' AND l.status <> 'returned' AND {billed} THEN l.price_cents ELSE 0 END
        FROM leads l JOIN schools s ON s.id = l.school_id
    """
    sums = ', '.join(f'SUM({name})' for name in METRICS)
    bucket = 'hour' if table == 'rollup_hourly' else 'day'
    op.execute(f"INSERT INTO {table} ({bucket}, campaign_id, ad_id, publisher_id, school_id, {', '.join(METRICS)}) "
               f"SELECT bucket, campaign_id, ad_id, publisher_id, MAX(school_id), {sums} FROM ({sources}) facts "
               f"GROUP BY bucket, campaign_id, ad_id, publisher_id")


def upgrade():
    _create('rollup_hourly', sa.Column('hour', sa.DateTime(timezone=True), nullable=False))
    _create('rollup_daily', sa.Column('day', sa.Date(), nullable=False), include=('school_id', *METRICS))
    if op.get_bind().dialect.name == 'postgresql':
        hour = lambda column: f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"  # noqa: E731
        day = lambda column: f"CAST({column} AT TIME ZONE 'UTC' AS DATE)"  # noqa: E731
    else:  # SQLite keeps UTC times as text, "YYYY-MM-DD HH:MM:SS.ffffff"
        hour = lambda column: f"strftime('%Y-%m-%d %H:00:00.000000', {column})"  # noqa: E731
        day = lambda column: f"date({column})"  # noqa: E731
    _backfill('rollup_hourly', hour)
    _backfill('rollup_daily', day)
    with op.batch_alter_table('impressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_impressions_campaign_id'))
        batch_op.drop_index(batch_op.f('ix_impressions_publisher_id'))
        batch_op.drop_index(batch_op.f('ix_impressions_school_id'))
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clicks_publisher_id'))
        batch_op.drop_index(batch_op.f('ix_clicks_school_id'))


def downgrade():
    with op.batch_alter_table('clicks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clicks_school_id'), ['school_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_clicks_publisher_id'), ['publisher_id'], unique=False)
    with op.batch_alter_table('impressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_impressions_school_id'), ['school_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_impressions_publisher_id'), ['publisher_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_impressions_campaign_id'), ['campaign_id'], unique=False)
    op.drop_table('rollup_daily')
    op.drop_table('rollup_hourly')
