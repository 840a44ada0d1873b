"""Campaigns and automations reach members without an installed card by e-mail, and every such
e-mail unsubscribes in one click (RFC 8058)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tests.factories import BrandKeys, FrozenClock
from tests.fakes.apns_server import ApnsFakeServer
from tests.fakes.smtp_server import RunningRelay, running_relay
from tests.integration.campaigns.conftest import (
    Shop,
    create_campaign,
    push_token,
    show_campaign,
    with_apns,
)
from walletd.campaigns import email_fallback, service
from walletd.config import Settings
from walletd.email.outbox import mark_bouncing
from walletd.jobs import campaign_step, fire_event_automations, run_automations
from walletd.loyalty.brands import get_program
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.models import CampaignRecipient, Member, MessageLog
from walletd.models.email import Email
from walletd.models.member import ConsentChange


@pytest.fixture
def smtp() -> Iterator[RunningRelay]:
    """The loopback SMTP relay the worker sends e-mails to."""
    with running_relay() as running:
        yield running


@pytest.fixture
def settings(settings: Settings, apns: ApnsFakeServer, smtp: RunningRelay) -> Settings:
    """Pushes go to the APNs fake, e-mails to the SMTP fake."""
    return with_apns(settings, apns).with_changes(
        smtp_url=smtp.url, email_from="Bean There <shop@example.com>"
    )


def join(
    shop: Shop,
    name: str,
    *,
    email: str | None = None,
    consent: bool = True,
    language: str | None = None,
    token: str | None = None,
) -> int:
    """Enroll a member (with an e-mail address, consent, a language; with the card in Apple
    Wallet when `token` is given); returns the member id."""
    enrollment = Enrollment(name=name, email=email, marketing_consent=consent, language=language)
    with shop.svc.db.transaction() as session:
        member, _ = enroll_member(session, shop.brand.brand_id, enrollment, shop.ctx())
        member_id = member.id
    if token is not None:
        shop.install_apple(member_id, token)
    return member_id


def emails_of(shop: Shop, campaign_id: int) -> dict[int, Email]:
    """The campaign's e-mails by member."""
    with shop.svc.db.transaction() as session:
        rows = session.scalars(select(Email).where(Email.campaign_id == campaign_id)).all()
        for row in rows:
            session.expunge(row)
    return {int(e.member_id or 0): e for e in rows}


def groups_of(shop: Shop, campaign_id: int) -> dict[int, tuple[str, str | None]]:
    """Each fanned-out member's group and skip reason."""
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(
                CampaignRecipient.member_id, CampaignRecipient.group, CampaignRecipient.skip_reason
            ).where(CampaignRecipient.campaign_id == campaign_id)
        ).all()
    return {int(m): (str(g), r) for m, g, r in rows}


def unsubscribe_link(email: Email) -> str:
    """The path and query of the one-click link in an e-mail's List-Unsubscribe header."""
    header = email.headers["List-Unsubscribe"]
    found = re.fullmatch(r"<http://[^/]+(/unsubscribe\?[^>]+)>", header)
    assert found, header
    return found.group(1)


def consent_of(shop: Shop, member_id: int) -> bool:
    with shop.svc.db.transaction() as session:
        return bool(session.get_one(Member, member_id).marketing_consent)


def test_a_campaign_with_email_fallback_emails_only_uninstalled_consenting_members(
    client: FlaskClient, brand: BrandKeys, shop: Shop, apns: ApnsFakeServer
) -> None:
    installed = join(shop, "Has the card", email="card@example.com", token=push_token(1))
    uninstalled = join(shop, "Only e-mail", email="ann@example.com")
    chinese = join(shop, "林小姐", email="lin@example.com", language="zh-Hant")
    no_consent = join(shop, "No consent", email="no@example.com", consent=False)
    no_address = join(shop, "No address")
    bouncing = join(shop, "Bouncing", email="gone@example.com")
    with shop.svc.db.transaction() as session:
        mark_bouncing(session, brand_id=brand.brand_id, address="gone@example.com",
                      reason="550", now=shop.clock())  # fmt: skip

    campaign = create_campaign(
        client, brand, name="Spring promo", email_fallback=True,
        messages={"zh-Hant": "本週雙倍點數！"},
    )  # fmt: skip
    assert campaign["email_fallback"] is True
    shop.fan_out()

    emails = emails_of(shop, campaign["id"])
    assert sorted(emails) == [uninstalled, chinese]
    assert emails[uninstalled].to_address == "ann@example.com"
    assert emails[uninstalled].subject == "Spring promo"
    english, chinese_text = emails[uninstalled].text_body or "", emails[chinese].text_body or ""
    assert english.startswith("Double points this week!")
    assert chinese_text.startswith("本週雙倍點數！")
    assert "取消訂閱" in chinese_text  # the footer in the member's language
    assert emails[uninstalled].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/card/" in english
    assert groups_of(shop, campaign["id"]) == {
        installed: ("recipient", None),
        uninstalled: ("recipient", None),
        chinese: ("recipient", None),
        no_consent: ("skipped", "no_consent"),
        no_address: ("skipped", "no_card_installed"),
        bouncing: ("skipped", "email_bouncing"),
    }
    shown = show_campaign(client, brand, campaign["id"])
    assert shown["by_channel"]["email"] == {
        "queued": 2, "sent": 0, "failed": 0, "bounced": 0, "cancelled": 0
    }  # fmt: skip
    assert shown["by_channel"]["apple"]["queued"] == 1

    shop.deliver()
    # The installed card got the push only: no e-mail, one push.
    assert [r.token for r in apns.requests] == [push_token(1)]


def test_by_channel_counts_are_exact_after_the_worker_sends(
    client: FlaskClient, brand: BrandKeys, shop: Shop, smtp: RunningRelay
) -> None:
    join(shop, "Has the card", email="card@example.com", token=push_token(1))
    join(shop, "Ann", email="ann@example.com")
    join(shop, "Bob", email="bob@example.com")
    join(shop, "Gone", email="gone@example.com")
    smtp.relay.refuse("gone@example.com")

    campaign = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    shop.deliver()

    shown = show_campaign(client, brand, campaign["id"])
    assert shown["by_channel"]["email"] == {
        "queued": 0, "sent": 2, "failed": 0, "bounced": 1, "cancelled": 0
    }  # fmt: skip
    assert shown["by_channel"]["apple"] == {"queued": 0, "sent": 1, "failed": 0, "cancelled": 0}
    assert (shown["recipients"], shown["delivered"], shown["pending"]) == (4, 3, 0)
    received = smtp.relay.to("ann@example.com")
    assert len(received) == 1
    message = received[0].parsed()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (
        str(message["List-Unsubscribe"]).strip().startswith("<http://walletd.test/unsubscribe?m=")
    )
    plain = message.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().startswith("Double points this week!")
    assert smtp.relay.to("card@example.com") == []


def test_holdout_members_get_neither_push_nor_email(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    members = [join(shop, f"Member {i}", email=f"m{i}@example.com") for i in range(40)]
    campaign = create_campaign(client, brand, email_fallback=True, holdout_percent=50)
    shop.fan_out()

    groups = groups_of(shop, campaign["id"])
    held = {m for m, (group, _) in groups.items() if group == "holdout"}
    assert held and len(held) < len(members)
    assert set(emails_of(shop, campaign["id"])) == set(members) - held
    with shop.svc.db.transaction() as session:
        channels = set(
            session.scalars(
                select(MessageLog.channel).where(MessageLog.source_id == campaign["id"])
            ).all()
        )
    assert channels == {"email"}


def test_without_email_fallback_uninstalled_members_are_skipped_as_before(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    member = join(shop, "Only e-mail", email="ann@example.com")
    campaign = create_campaign(client, brand)
    shop.fan_out()
    assert emails_of(shop, campaign["id"]) == {}
    assert groups_of(shop, campaign["id"]) == {member: ("skipped", "no_card_installed")}
    assert show_campaign(client, brand, campaign["id"])["email_fallback"] is False


def test_a_retried_chunk_does_not_email_a_member_twice(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    member = join(shop, "Only e-mail", email="ann@example.com")
    campaign = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    # A worker that lost its lease writes the same chunk again: the unique keys refuse it.
    with shop.svc.db.transaction() as session, pytest.raises(IntegrityError):
        with session.begin_nested():
            email_fallback.queue_fallback_emails(
                session, program=get_program(session, brand.brand_id, None),
                targets=email_fallback.email_targets(session, brand.brand_id, [member])[0],
                texts={member: "again"}, languages={}, subject="again", now=clock(),
                base_url="http://x", secret_key="k", campaign_id=campaign["id"],
            )  # fmt: skip
    assert list(emails_of(shop, campaign["id"])) == [member]


def test_one_click_post_unsubscribes_and_later_campaigns_skip_the_member(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    member = join(shop, "Ann", email="ann@example.com")
    first = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    link = unsubscribe_link(emails_of(shop, first["id"])[member])

    response = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert consent_of(shop, member) is False
    again = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    with shop.svc.db.transaction() as session:
        changes = session.execute(
            select(ConsentChange.consent, ConsentChange.source).where(
                ConsentChange.member_id == member
            )
        ).all()
    assert [tuple(c) for c in changes][-1] == (False, "email")
    assert [c for c in changes if c[1] == "email"] == [(False, "email")]  # idempotent

    second = create_campaign(client, brand, name="Later", email_fallback=True)
    shop.fan_out()
    assert emails_of(shop, second["id"]) == {}
    assert groups_of(shop, second["id"]) == {member: ("skipped", "no_consent")}


def test_get_shows_a_confirmation_button_and_does_not_unsubscribe(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    member = join(shop, "林小姐", email="lin@example.com", language="zh-Hant")
    campaign = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    link = unsubscribe_link(emails_of(shop, campaign["id"])[member])

    page = client.get(link)
    assert page.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in page.get_data(as_text=True)
    assert consent_of(shop, member) is True
    chinese = client.get(link, headers={"Accept-Language": "zh-TW"})
    assert "取消訂閱" in chinese.get_data(as_text=True)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda link, other: link.replace("sig=", "sig=0"),
        lambda link, other: re.sub(r"sig=[0-9a-f]+", "sig=" + "0" * 32, link),
        lambda link, other: re.sub(r"m=\d+", f"m={other}", link),
        lambda link, other: link.split("&")[0],
        lambda link, other: "/unsubscribe?m=%00&sig=zz",
    ],
)
def test_a_forged_or_other_members_token_is_refused_and_changes_nothing(
    client: FlaskClient, brand: BrandKeys, shop: Shop, tamper: Any
) -> None:
    member = join(shop, "Ann", email="ann@example.com")
    other = join(shop, "Bob", email="bob@example.com")
    campaign = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    link = unsubscribe_link(emails_of(shop, campaign["id"])[member])

    response = client.post(tamper(link, other), data={"List-Unsubscribe": "One-Click"})
    assert 400 <= response.status_code < 500
    assert consent_of(shop, member) is True
    assert consent_of(shop, other) is True


def test_a_post_without_the_one_click_body_is_refused(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    member = join(shop, "Ann", email="ann@example.com")
    campaign = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    link = unsubscribe_link(emails_of(shop, campaign["id"])[member])
    assert client.post(link, data={}).status_code == 400
    assert consent_of(shop, member) is True


def test_an_automation_with_email_fallback_emails_uninstalled_members(
    client: FlaskClient, brand: BrandKeys, shop: Shop
) -> None:
    response = client.put(
        f"/api/v1/programs/{brand.program_id}/automations/welcome",
        json={"enabled": True, "email_fallback": True},
        headers=brand.admin,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["email_fallback"] is True
    installed = join(shop, "Has the card", email="card@example.com", token=push_token(3))
    uninstalled = join(shop, "Ann", email="ann@example.com")
    join(shop, "No consent", email="no@example.com", consent=False)

    run_automations(shop.svc)
    with shop.svc.db.transaction() as session:
        rows = session.execute(
            select(Email.member_id, Email.kind, Email.subject).where(
                Email.automation_id.is_not(None)
            )
        ).all()
        channels: dict[int, str | None] = {
            int(m): c
            for m, c in session.execute(
                select(MessageLog.member_id, MessageLog.channel).where(MessageLog.kind == "welcome")
            ).all()
        }
    assert [(m, k) for m, k, _ in rows] == [(uninstalled, "automation")]
    assert rows[0][2].startswith("Welcome, Ann!")
    assert channels[uninstalled] == "email"
    assert channels[installed] is None


def test_the_campaign_report_counts_returning_members_per_channel(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    push = join(shop, "Has the card", email="card@example.com", token=push_token(4))
    mail = join(shop, "Ann", email="ann@example.com")
    join(shop, "Bob", email="bob@example.com")
    campaign = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    clock.advance(days=1)
    shop.visit(push, "10.00", at=clock())
    shop.visit(mail, "12.00", at=clock())

    report = client.get(f"/api/v1/campaigns/{campaign['id']}/report", headers=brand.admin)
    assert report.status_code == 200
    assert report.get_json()["lift"]["by_channel"] == {
        "wallet": {"members": 1, "returned": 1, "holdout_members": 0, "holdout_returned": 0},
        "email": {"members": 2, "returned": 1, "holdout_members": 0, "holdout_returned": 0},
    }


def test_an_event_automation_with_email_fallback_emails_a_member_without_the_card(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    created = client.post(
        "/api/v1/event-automations",
        json={"name": "Abandoned cart", "trigger_event": "cart_abandoned", "delay_minutes": 60,
              "message": "Your cart is waiting, {name}.", "email_fallback": True},
        headers=brand.admin,
    )  # fmt: skip
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["email_fallback"] is True
    mail = join(shop, "Ann", email="ann@example.com")
    card = join(shop, "Bob", email="bob@example.com", token=push_token(5))
    for member in (mail, card):
        sent = client.post(
            "/api/v1/events",
            json={"member_id": member, "type": "cart_abandoned"},
            headers=brand.admin,
        )
        assert sent.status_code == 201, sent.get_data(as_text=True)
    clock.advance(minutes=60)
    assert fire_event_automations(shop.svc) == 2

    with shop.svc.db.transaction() as session:
        rows = session.execute(select(Email.member_id, Email.kind, Email.subject)).all()
    assert [tuple(r) for r in rows] == [(mail, "automation", "Your cart is waiting, Ann.")]


def test_cancelling_a_campaign_cancels_its_unsent_emails(
    client: FlaskClient,
    brand: BrandKeys,
    shop: Shop,
    smtp: RunningRelay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 1)
    join(shop, "Ann", email="ann@example.com")
    join(shop, "Bob", email="bob@example.com")
    campaign = create_campaign(client, brand, email_fallback=True)
    assert campaign_step(shop.svc, "worker-a", set(), max_chunks=1) == 1
    response = client.post(f"/api/v1/campaigns/{campaign['id']}/cancel", headers=brand.admin)
    assert response.status_code == 200
    shop.fan_out()
    shop.deliver()

    assert smtp.relay.messages == []
    assert show_campaign(client, brand, campaign["id"])["by_channel"]["email"] == {
        "queued": 0, "sent": 0, "failed": 0, "bounced": 0, "cancelled": 1
    }  # fmt: skip


def test_email_keeps_the_weekly_cap_and_the_quiet_hours_like_pushes(
    client: FlaskClient, brand: BrandKeys, shop: Shop, clock: FrozenClock
) -> None:
    shop.set_program(messages_per_week_cap=1)
    member = join(shop, "Ann", email="ann@example.com")
    first = create_campaign(client, brand, email_fallback=True)
    shop.fan_out()
    second = create_campaign(client, brand, name="Again", email_fallback=True)
    shop.fan_out()
    assert list(emails_of(shop, first["id"])) == [member]
    assert emails_of(shop, second["id"]) == {}
    assert groups_of(shop, second["id"]) == {member: ("skipped", "frequency_cap")}

    # 12:00 UTC is 21:00 in Tokyo, inside the default quiet hours: nothing is queued yet.
    shop.set_program(timezone="Asia/Tokyo", messages_per_week_cap=5)
    third = create_campaign(client, brand, name="Night", email_fallback=True)
    shop.fan_out()
    assert show_campaign(client, brand, third["id"])["deferred_reason"] == "quiet_hours"
    assert emails_of(shop, third["id"]) == {}


def test_a_campaign_name_cannot_inject_headers_into_the_email() -> None:
    content = email_fallback.fallback_content(
        subject="Promo\r\nBcc: everyone@example.com\x00",
        message="<b>Hi</b>\nline two",
        program_name="Bean <There>",
        language="en",
        card_url="https://shop.example/card/X?sig=1",
        unsubscribe="https://shop.example/unsubscribe?m=1&sig=2",
    )
    assert content.subject == "Promo Bcc: everyone@example.com"
    assert "<b>" not in content.html and "&lt;b&gt;Hi&lt;/b&gt;" in content.html
    assert "Bean &lt;There&gt;" in content.html
    assert 'href="https://shop.example/unsubscribe?m=1&amp;sig=2"' in content.html
