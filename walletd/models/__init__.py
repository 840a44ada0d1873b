"""Typed entities; importing this package registers every table on `Base.metadata`."""

from walletd.models.audit import AuditEntry
from walletd.models.brand import ApiKey, Brand, Location
from walletd.models.campaign import (
    Automation,
    Campaign,
    CampaignRecipient,
    MessageLog,
    StaffUser,
)
from walletd.models.card_message import CardMessage
from walletd.models.delivery import ApnsRefusal  # [delivery]
from walletd.models.device import Device, DeviceLog, Registration
from walletd.models.discovery import ProgramDiscovery  # [google-signup]
from walletd.models.email import Email, EmailBounce, EmailSender  # [email]
from walletd.models.email_campaign import CAMPAIGN_MEMBER_INDEX  # noqa: F401  [email-campaigns]
from walletd.models.enrollment import AppleEnrollment, EnrollmentPass, EnrollmentRegistration
from walletd.models.event import Event, EventAutomation, EventAutomationRun
from walletd.models.feedback import Feedback
from walletd.models.google import GoogleCallbackNonce, GoogleNotification
from walletd.models.imports import MemberImport, MemberImportChunk
from walletd.models.ledger import LedgerEntry
from walletd.models.member import Card, Member
from walletd.models.offer import Coupon, Offer, OfferIssue, Promotion
from walletd.models.ops import JobRun, RateSlot, WorkerHeartbeat
from walletd.models.outbox import OutboxMessage
from walletd.models.pass_package import PassPackage
from walletd.models.program import Program, Reward, Tier
from walletd.models.recovery_link import RecoveryLink  # [email-links]
from walletd.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint

__all__ = [
    "JobRun",
    "PassPackage",
    "RateSlot",
    "WorkerHeartbeat",
    "ApiKey",
    "AppleEnrollment",
    "EnrollmentPass",
    "EnrollmentRegistration",
    "ApnsRefusal",  # [delivery]
    "AuditEntry",
    "Automation",
    "Campaign",
    "CampaignRecipient",
    "MessageLog",
    "StaffUser",
    "Brand",
    "Card",
    "CardMessage",
    "Coupon",
    "Offer",
    "OfferIssue",
    "Promotion",
    "Device",
    "GoogleCallbackNonce",
    "GoogleNotification",
    "DeviceLog",
    "Email",  # [email]
    "EmailBounce",  # [email]
    "EmailSender",  # [email]
    "Event",
    "EventAutomation",
    "EventAutomationRun",
    "Feedback",
    "LedgerEntry",
    "Location",
    "Member",
    "MemberImport",
    "MemberImportChunk",
    "OutboxMessage",
    "Program",
    "RecoveryLink",  # [email-links]
    "ProgramDiscovery",  # [google-signup]
    "Registration",
    "Reward",
    "Tier",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
