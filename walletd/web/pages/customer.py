"""Customer pages: join a program, see the card with its wallet buttons, recover a lost card."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from flask import Blueprint, abort, make_response, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from walletd.email import email_enabled
from walletd.email_links.recovery import send_recovery_link
from walletd.errors import MemberExistsError, NotFoundError, ValidationError
from walletd.loyalty import google_prefill  # [google-signup]
from walletd.loyalty.members import Enrollment, enroll_member
from walletd.loyalty.programs import find_program, program_brand_name
from walletd.loyalty.recovery import MAX_CONTACT_LENGTH, Contact, parse_contact, recover_card
from walletd.models import Card, Member, Offer, Program
from walletd.offers.coupons import list_member_coupons
from walletd.passes.cards import card_view, find_card_by_serial
from walletd.passes.pkpass import load_template
from walletd.privacy.consent import set_consent_from_card
from walletd.web import limits, links
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.email_api import send_card_email_on_join  # [email]
from walletd.web.pages import security
from walletd.web.pages.coupon_text import headline_text
from walletd.web.pages.preview import AppleCard, GoogleCard, apple_card, google_card
from walletd.web.pages.render import (
    _,
    add_error_pages,
    error_text,
    language,
    prefer_program_language,
    render,
)
from walletd.web.wallets import google_object_face, google_save_url
from walletd.wiring import web_service_url

bp = Blueprint("customer", __name__)
add_error_pages(bp)


def wallet_of(user_agent: str) -> str:
    """The wallet that fits the visitor's device: apple, google, or other."""
    if any(word in user_agent for word in ("iPhone", "iPad", "iPod", "Macintosh")):
        return "apple"
    if "Android" in user_agent:
        return "google"
    return "other"


def card_page_url(serial: str) -> str:
    """The signed, bookmarkable address of a member's card page."""
    sig = links.link_signature("page", serial, services().settings.secret_key)
    return url_for("customer.card", serial=serial, sig=sig)


@dataclass(frozen=True)
class JoinPage:
    """What the join form shows about the program."""

    program_id: int
    program_name: str
    brand_name: str
    default_language: str | None = None


def _join_page(session: Session, program_id: int) -> JoinPage:
    program = find_program(session, program_id)
    if program is None:
        abort(404)
    return JoinPage(
        program.id, program.name, program_brand_name(session, program), program.default_language
    )


def _parse_join(form: MultiDict[str, str], program_id: int) -> Enrollment:
    email = form.get("email", "").strip() or None
    phone = form.get("phone", "").strip() or None
    if email is None and phone is None:
        raise ValidationError("enter an e-mail or a phone number", field="email")
    birthday_text = form.get("birthday", "").strip()
    birthday = None
    if birthday_text:
        try:
            birthday = date.fromisoformat(birthday_text)
        except ValueError as exc:
            raise ValidationError("birthday must be a date", field="birthday") from exc
    return Enrollment(
        name=form.get("name", ""),
        email=email,
        phone=phone,
        birthday=birthday,
        marketing_consent=form.get("marketing_consent") == "yes",
        referral_code=form.get("referral_code", "").strip() or None,
        program_id=program_id,
    )


@bp.route("/join/<int:program_id>", methods=["GET", "POST"])
def join(program_id: int) -> Any:
    """The enrollment form; a valid form creates the member and shows their card."""
    page = run_in_transaction(lambda s: _join_page(s, program_id))
    prefer_program_language(page.default_language)
    values: dict[str, str] = {"referral_code": request.args.get("ref", "")[:16]}
    errors: dict[str, str] = {}
    # The e-mail or phone is a member's already: lead to the recovery page, not a second card.
    known = False
    if request.method == "POST":
        values = {k: v for k, v in request.form.items() if k != security.CSRF_FIELD}
        try:
            # The member's messages come in the language the join page was shown in.
            enrollment = replace(_parse_join(request.form, program_id), language=language())

            def work(session: Session) -> str:
                program = find_program(session, program_id)
                assert program is not None
                member, card = enroll_member(session, program.brand_id, enrollment, context())
                send_card_email_on_join(session, member, card)  # [email]
                return card.serial_number

            serial = run_in_transaction(work)
        except ValidationError as exc:
            errors[exc.field or "name"] = error_text(exc)
        except MemberExistsError:
            known = True
        else:
            # [google-signup] from Google Wallet: straight to its save link, one step.
            save_link = (
                _google_save_link(serial, program_id) if values.get("via") == "google" else None
            )
            return redirect(save_link or card_page_url(serial), 303)
    status = 409 if known else 422 if errors else 200
    return render("customer/join.html", status, page=page, values=values, errors=errors,
                  known=known)  # fmt: skip


# [google-signup] --------------------------------------------------------------------------------


@bp.route("/join/<int:program_id>/google", methods=["GET", "POST"])
def join_from_google(program_id: int) -> Any:
    """Sign-up from Google Wallet: the join form, prefilled with what Google shared.

    Google Wallet posts here without our CSRF token (the route is exempt), so nothing is saved:
    the visitor checks the form and sends it to /join/{id} like any other.
    """
    page = run_in_transaction(lambda s: _join_page(s, program_id))
    prefer_program_language(page.default_language)
    sent = {**request.args.to_dict(), **request.form.to_dict()}
    values = {**google_prefill.prefill_values(sent), "via": "google"}
    return render("customer/join.html", 200, page=page, values=values, errors={}, known=False)


def _google_save_link(serial: str, program_id: int) -> str | None:
    """The new card's Google Wallet save link, or None while Google is not configured."""

    def work(session: Session) -> str | None:
        card = find_card_by_serial(session, serial)
        if card is None:
            return None
        # The whole face rides in the link: the worker may not have inserted the object yet.
        return google_save_url(card, program_id, google_object_face(session, card, program_id))

    return run_in_transaction(work)


@dataclass(frozen=True)
class CouponEntry:
    """One of the member's usable coupons on the card page."""

    name: str
    kind: str
    value: Decimal | None
    item: str | None
    currency: str
    code: str
    expires_at: datetime | None
    terms: str | None
    apple_url: str | None

    @property
    def headline(self) -> str:
        """What the coupon gives, in the reader's language."""
        return headline_text(self.kind, self.value, self.item, self.currency)


def member_coupons(session: Session, member: Member, now: datetime) -> tuple[CouponEntry, ...]:
    """The member's active coupons, soonest to expire first, with their Apple Wallet links."""
    settings = services().settings
    currency = session.get_one(Program, member.program_id).currency
    found = list_member_coupons(session, member.brand_id, member.id, status="active", now=now)
    entries = []
    for coupon in sorted(found, key=lambda c: (c.expires_at is None, c.expires_at, c.id)):
        offer = session.get_one(Offer, coupon.offer_id)
        card = session.get(Card, coupon.card_id) if coupon.card_id is not None else None
        entries.append(
            CouponEntry(
                name=offer.name,
                kind=offer.kind,
                value=coupon.value,
                item=offer.item,
                currency=currency,
                code=coupon.code,
                expires_at=coupon.expires_at,
                terms=offer.terms,
                apple_url=None
                if card is None
                else links.apple_pass_url(settings, card.serial_number),
            )
        )
    return tuple(entries)


@dataclass(frozen=True)
class CardPage:
    """Everything the card page shows."""

    serial: str
    member_name: str
    program_id: int
    program_name: str
    organization: str
    points: int
    apple: AppleCard
    google: GoogleCard
    apple_url: str
    google_url: str | None
    qr_url: str
    barcode: str
    referral_code: str
    invite_url: str
    coupons: tuple[CouponEntry, ...] = ()
    # The program's time zone: a coupon's last day is the day in the shop's zone.
    timezone: str = "UTC"
    # Promotional messages: the member's switch, posted to the signed consent route.
    marketing_consent: bool = False
    consent_url: str = ""


def build_card_page(session: Session, card: Card, lang: str) -> CardPage:
    """The card page of one card, with both wallets' previews."""
    settings = services().settings
    view = card_view(session, card)
    member = session.get_one(Member, card.member_id)
    template = load_template(settings.pass_templates_path, view.template)
    return CardPage(
        serial=card.serial_number,
        member_name=view.member_name,
        program_id=view.program_id,
        program_name=view.program_name,
        organization=view.organization_name,
        points=view.points,
        apple=apple_card(view, template, language=lang, web_service_url=web_service_url(settings)),
        google=google_card(
            view,
            issuer_id=settings.google_issuer_id,
            logo_uri=f"{settings.base_url}/pass-images/{view.template}/logo@2x.png",
            language=lang,
        ),
        apple_url=url_for(
            "downloads.download",
            serial=card.serial_number,
            sig=links.link_signature("pkpass", card.serial_number, settings.secret_key),
        ),
        google_url=google_save_url(card),
        qr_url=url_for(
            "public.card_qr",
            serial=card.serial_number,
            sig=links.link_signature("qr", card.serial_number, settings.secret_key),
        ),
        barcode=card.barcode,
        referral_code=member.referral_code,
        invite_url=f"{settings.base_url}"
        f"{url_for('customer.join', program_id=view.program_id, ref=member.referral_code)}",
        coupons=member_coupons(session, member, context().now),
        timezone=session.get_one(Program, member.program_id).timezone,
        marketing_consent=member.marketing_consent,
        consent_url=url_for(
            "customer.card_consent",
            serial=card.serial_number,
            sig=links.link_signature("page", card.serial_number, settings.secret_key),
        ),
    )


@bp.get("/card/<serial>")
def card(serial: str) -> Any:
    """A member's card: wallet buttons (the fitting one first), a preview, and the QR code."""
    settings = services().settings
    if not links.check_link("page", serial, request.args.get("sig", ""), settings.secret_keys):
        abort(404)

    def work(session: Session) -> CardPage:
        found = find_card_by_serial(session, serial)
        if found is None:
            abort(404)
        member = session.get_one(Member, found.member_id)
        prefer_program_language(session.get_one(Program, member.program_id).default_language)
        return build_card_page(session, found, language())

    page = run_in_transaction(work)
    wallet = wallet_of(request.headers.get("User-Agent", ""))
    saved = request.args.get("saved") == "1"
    return render("customer/card.html", page=page, wallet=wallet, saved=saved)


@bp.post("/card/<serial>/consent")
def card_consent(serial: str) -> Any:
    """The member turns promotional messages on or off (the same signed link as the page)."""
    settings = services().settings
    if not links.check_link("page", serial, request.args.get("sig", ""), settings.secret_keys):
        abort(404)
    choice = request.form.get("consent", "")
    if choice not in ("on", "off"):
        abort(400)
    now = context().now
    try:
        run_in_transaction(lambda s: set_consent_from_card(s, serial, choice == "on", now=now))
    except NotFoundError:
        abort(404)
    return redirect(f"{card_page_url(serial)}&saved=1#messages", 303)


def recovery_link_url(program_id: int, token: str) -> str:
    """[email-links] The absolute address of an e-mailed one-time recovery link."""
    path = url_for("customer.recovery_link", program_id=program_id, token=token)
    return services().settings.base_url + path


# [email-links] What the recovery of a phone and birthday did when the member holds an e-mail.
_EMAILED = "emailed"


@bp.route("/join/<int:program_id>/recover", methods=["GET", "POST"])
def recover(program_id: int) -> Any:
    """Find a lost card: by e-mail a one-time link is sent; by phone, with the birthday.

    With e-mail on, an e-mail address gets the same answer whether or not it is known, and a
    phone and birthday of a member who holds an e-mail send the link there too: the birthday
    alone opens a card only where no e-mail is held (or e-mail is off). Attempts are counted
    per client and per e-mail or phone, in windows a success does not reset (every e-mail
    request counts), so finding one's own card buys no more guesses at another member's.
    """
    page = run_in_transaction(lambda s: _join_page(s, program_id))
    by_email = email_enabled(services().settings)  # [email-links]
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    not_found = sent = emailed = False
    if request.method == "POST":
        values = {"contact": request.form.get("contact", "")[:MAX_CONTACT_LENGTH]}
        birthday: date | None = None
        contact: Contact | None = None
        try:
            contact = parse_contact(request.form.get("contact", ""), context().phone_region)
        except ValidationError as exc:
            errors[exc.field or "contact"] = error_text(exc)
        linked = by_email and contact is not None and contact.kind == "email"
        if not linked:
            try:
                birthday = date.fromisoformat(request.form.get("birthday", "").strip())
            except ValueError:
                errors["birthday"] = _("birthday must be a date")
        if contact is not None and (linked or birthday is not None):
            target = limits.recovery_target(program_id, contact.value)
            wait = limits.recovery_wait(target)
            if wait is not None:
                html, status = render("customer/recover.html", 429, page=page, values=values,
                                      errors={}, not_found=False, throttled=True,
                                      by_email=by_email, sent=False, emailed=False)  # fmt: skip
                return limits.with_retry_after(make_response(html, status), wait)
            lang, now, wanted = language(), context().now, contact
            link_for = partial(recovery_link_url, program_id)
            if linked:
                limits.recovery_failed(target)  # counted always: the answer never says more

                def send(session: Session) -> int | None:
                    return send_recovery_link(session, program_id, wanted.value, now=now,
                                              link_for=link_for, language=lang)  # fmt: skip

                run_in_transaction(send)
                sent = True
            else:
                day = birthday

                def find(session: Session) -> str | None:
                    return _recovered_serial(session, program_id, wanted, day, now=now,
                                             link_for=link_for if by_email else None,
                                             language=lang)  # fmt: skip

                found = run_in_transaction(find)
                if found == _EMAILED:
                    emailed = True
                elif found is not None:
                    return redirect(card_page_url(found), 303)
                else:
                    limits.recovery_failed(target)
                    not_found = True
    status = 422 if errors else 200
    return render("customer/recover.html", status, page=page, values=values, errors=errors,
                  not_found=not_found, throttled=False, by_email=by_email, sent=sent,
                  emailed=emailed)  # fmt: skip


def _recovered_serial(
    session: Session,
    program_id: int,
    contact: Contact,
    birthday: date | None,
    *,
    now: datetime,
    link_for: Callable[[str], str] | None = None,
    language: str = "en",
) -> str | None:
    """The serial of the recovered card; `_EMAILED` when its link went to the member's e-mail
    instead (`link_for` given: e-mail is on)."""
    if birthday is None:
        return None
    found = recover_card(session, program_id, contact, birthday)
    if found is None:
        return None
    member = session.get_one(Member, found.member_id)
    if link_for is not None and member.email:  # [email-links] the e-mail, not the birthday
        queued = send_recovery_link(session, program_id, member.email, now=now,
                                    link_for=link_for, language=language)  # fmt: skip
        if queued is not None:
            return _EMAILED
    return found.serial_number
