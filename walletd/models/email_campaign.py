"""[email-campaigns] A campaign e-mails a member at most once: a retried chunk cannot queue a
second e-mail (the index sits on `emails`, whose model belongs to walletd/models/email.py)."""

from __future__ import annotations

from sqlalchemy import Index

from walletd.models.email import Email

CAMPAIGN_MEMBER_INDEX = Index(
    "uq_emails_campaign_member", Email.campaign_id, Email.member_id, unique=True
)
