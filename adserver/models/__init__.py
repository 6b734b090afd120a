"""Every model, imported here so Alembic and the app see the whole schema."""

from adserver.models.base import Base, utcnow
from adserver.models.catalog import (
    Ad,
    ApiKey,
    Campaign,
    Campus,
    IdempotencyRecord,
    Program,
    Publisher,
    School,
    campaign_programs,
)
from adserver.models.events import Click, Impression
from adserver.models.leads import DeliveryAttempt, Lead
from adserver.models.privacy import OptOut, OptOutNotice, OptOutNoticeAttempt, PrivacyRequest
from adserver.models.rollups import CampaignDailyRollup, DailyRollup, HourlyRollup

__all__ = [
    "Ad",
    "ApiKey",
    "Base",
    "Campaign",
    "CampaignDailyRollup",
    "Campus",
    "Click",
    "DailyRollup",
    "DeliveryAttempt",
    "HourlyRollup",
    "IdempotencyRecord",
    "Impression",
    "Lead",
    "OptOut",
    "OptOutNotice",
    "OptOutNoticeAttempt",
    "PrivacyRequest",
    "Program",
    "Publisher",
    "School",
    "campaign_programs",
    "utcnow",
]
