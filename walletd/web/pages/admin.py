"""Dashboard pages to run the brand: locations, API keys, staff accounts, and the invitee's
set-password page. Each change goes through the same services (and audit) as the API."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from walletd.admin import accounts, keys, locations
from walletd.email import email_enabled  # [email-links]
from walletd.email_links.staff import email_password_link, password_link_state  # [email-links]
from walletd.errors import N_, ConflictError, NotFoundError, ValidationError, WalletdError
from walletd.loyalty.brands import get_program
from walletd.models import ApiKey, Location, StaffUser
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.pages import security
from walletd.web.pages.dashboard import bp, me, staff_only
from walletd.web.pages.forms import MAX_ID
from walletd.web.pages.render import _, error_text, language, page_error, render

LOCATION_FIELDS = ("name", "address", "latitude", "longitude", "timezone")


def _typed(form: MultiDict[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != security.CSRF_FIELD}


def _location_id(text: str) -> int | None:
    """A location chosen in a form: empty is none; a forged value is refused by the service."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 10 or not 0 < int(text) <= MAX_ID:
        raise ValidationError("location_id is not a location of this brand", field="location_id")
    return int(text)


# --- locations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocationsPage:
    """The brand's locations and its program's time zone (the default of a location's)."""

    locations: list[Location]
    program_timezone: str


def _locations_page(session: Session, brand_id: int) -> LocationsPage:
    return LocationsPage(
        locations.list_locations(session, brand_id), get_program(session, brand_id).timezone
    )


def location_data(form: MultiDict[str, str]) -> dict[str, Any]:
    """A location's fields from the form; an empty optional field clears it."""
    data: dict[str, Any] = {}
    for name in LOCATION_FIELDS:
        value = form.get(name, "").strip()
        data[name] = value if value or name == "name" else None
    return data


def _location_values(location: Location) -> dict[str, str]:
    return {
        "name": location.name,
        "address": location.address or "",
        "latitude": "" if location.latitude is None else f"{location.latitude:f}",
        "longitude": "" if location.longitude is None else f"{location.longitude:f}",
        "timezone": location.timezone or "",
    }


@bp.route("/locations", methods=["GET", "POST"])
@staff_only
def locations_page() -> Any:
    """The brand's stores and tills, and the form for a new one."""
    viewer = me()
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _typed(request.form)
        data, actor, now = location_data(request.form), viewer.actor, context().now
        try:
            ctx = context()  # [google-signup] a new store updates the cards
            run_in_transaction(
                lambda s: locations.create_location(s, actor, data, now=now, ctx=ctx)
            )
        except WalletdError as exc:
            errors[exc.field or "name"] = error_text(exc)
        else:
            flash(_("Location saved."))
            return redirect(url_for("dashboard.locations_page"), 303)
    page = run_in_transaction(lambda s: _locations_page(s, viewer.brand_id))
    return render("dashboard/admin_locations.html", 422 if errors else 200, page=page,
                  values=values, errors=errors, editing=None)  # fmt: skip


@bp.route("/locations/<int:location_id>", methods=["GET", "POST"])
@staff_only
def location(location_id: int) -> Any:
    """Edit one location."""
    viewer = me()
    errors: dict[str, str] = {}
    try:
        values = run_in_transaction(
            lambda s: _location_values(locations.get_location(s, viewer.brand_id, location_id))
        )
    except NotFoundError:
        abort(404)
    if request.method == "POST":
        values = _typed(request.form)
        data, actor, now = location_data(request.form), viewer.actor, context().now
        try:
            run_in_transaction(
                lambda s: locations.update_location(  # [google-signup] ctx
                    s, actor, location_id, data, now=now, ctx=context()
                )
            )
        except WalletdError as exc:
            errors[exc.field or "name"] = error_text(exc)
        else:
            flash(_("Location saved."))
            return redirect(url_for("dashboard.locations_page"), 303)
    page = run_in_transaction(lambda s: _locations_page(s, viewer.brand_id))
    return render("dashboard/admin_locations.html", 422 if errors else 200, page=page,
                  values=values, errors=errors, editing=location_id)  # fmt: skip


@bp.post("/locations/<int:location_id>/delete")
@staff_only
def delete_location(location_id: int) -> Any:
    """Delete a location; refused while live keys are bound to it."""
    viewer = me()
    actor, now = viewer.actor, context().now
    try:
        run_in_transaction(  # [google-signup] ctx
            lambda s: locations.delete_location(s, actor, location_id, now=now, ctx=context())
        )
    except NotFoundError:
        abort(404)
    except ConflictError:
        flash(_("Keys are bound to this location: revoke them first."))
    else:
        flash(_("Location deleted."))
    return redirect(url_for("dashboard.locations_page"), 303)


# --- API keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeysPage:
    """The brand's keys and the locations a new key can be bound to."""

    keys: list[ApiKey]
    locations: dict[int, str]
    created: str | None = None  # the new key, shown on this one answer only
    created_id: int | None = None
    timezone: str = "UTC"  # the brand's program's: when each key was last used


def _brand_zone(session: Session, brand_id: int) -> str:
    """The time zone the brand's pages speak in: its (first) program's."""
    try:
        return get_program(session, brand_id).timezone
    except NotFoundError:
        return "UTC"


def _keys_page(session: Session, brand_id: int) -> KeysPage:
    places = {loc.id: loc.name for loc in locations.list_locations(session, brand_id)}
    return KeysPage(
        keys.list_keys(session, brand_id), places, timezone=_brand_zone(session, brand_id)
    )


@bp.route("/keys", methods=["GET", "POST"])
@staff_only
def keys_page() -> Any:
    """API keys with their last use; a new key is shown once, on the answer that made it."""
    viewer = me()
    values: dict[str, str] = {"role": "cashier"}
    errors: dict[str, str] = {}
    created: tuple[int, str] | None = None
    if request.method == "POST":
        values = _typed(request.form)
        actor, now = viewer.actor, context().now

        def work(session: Session) -> tuple[int, str]:
            api_key, key = keys.create_key(
                session, actor, role=values.get("role", ""), name=values.get("name", ""),
                location_id=_location_id(values.get("location_id", "")), now=now,
            )  # fmt: skip
            return api_key.id, key

        try:
            created = run_in_transaction(work)
        except WalletdError as exc:
            errors[exc.field or "name"] = error_text(exc)
        else:
            values = {"role": "cashier"}
    page = run_in_transaction(lambda s: _keys_page(s, viewer.brand_id))
    if created is not None:
        page = replace(page, created=created[1], created_id=created[0])
    # The page that shows a new key is the answer to the POST itself: never a redirect, so the
    # key is not kept in a flash message in the session cookie.
    return render("dashboard/admin_keys.html", 422 if errors else 200, page=page, values=values,
                  errors=errors)  # fmt: skip


@bp.post("/keys/<int:key_id>/revoke")
@staff_only
def revoke_key(key_id: int) -> Any:
    """Revoke a key; refused for the brand's last live admin key."""
    viewer = me()
    actor, now = viewer.actor, context().now
    try:
        run_in_transaction(lambda s: keys.revoke_key(s, actor, key_id, now=now))
    except NotFoundError:
        abort(404)
    except ConflictError:
        flash(_("This is the last admin key: issue another admin key first."))
    else:
        flash(_("Key revoked."))
    return redirect(url_for("dashboard.keys_page"), 303)


# --- staff --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffPage:
    """The brand's staff accounts; a set-password link just made is shown once."""

    staff: list[StaffUser]
    me: int | None
    link: str | None = None
    link_for: str | None = None
    statuses: dict[int, str] = field(default_factory=dict)
    emailed: bool = False  # [email-links] the link went to the account's address too
    email_on: bool = False  # [email-links]
    timezone: str = "UTC"  # the brand's program's: when each account last logged in


def _staff_page(session: Session, brand_id: int, me_id: int | None) -> StaffPage:
    rows = accounts.list_staff(session, brand_id)
    return StaffPage(rows, me_id, statuses={u.id: accounts.status_of(u) for u in rows},
                     email_on=email_enabled(services().settings),
                     timezone=_brand_zone(session, brand_id))  # fmt: skip


def _link_url(token: str) -> str:
    return services().settings.base_url + url_for("dashboard.set_password", token=token)


@bp.route("/staff", methods=["GET", "POST"])
@staff_only
def staff_page() -> Any:
    """Staff accounts: invite (a one-time set-password link), change role, disable, remove."""
    viewer = me()
    values: dict[str, str] = {"role": "cashier"}
    errors: dict[str, str] = {}
    link: tuple[str, str, bool] | None = None
    if request.method == "POST":
        values = _typed(request.form)
        actor, now = viewer.actor, context().now
        send, lang = email_enabled(services().settings), language()  # [email-links]

        def work(session: Session) -> tuple[str, str, bool]:
            made = accounts.invite_staff(
                session, actor, email=values.get("email", "")[:320],
                role=values.get("role", ""), name=values.get("name") or None, now=now,
            )  # fmt: skip
            url = _link_url(made.token)
            sent = send and email_password_link(session, made, url, language=lang, now=now)
            return made.staff.email, url, bool(sent)

        try:
            link = run_in_transaction(work)
        except WalletdError as exc:
            errors[exc.field or "email"] = error_text(exc)
        else:
            values = {"role": "cashier"}
    page = run_in_transaction(lambda s: _staff_page(s, viewer.brand_id, viewer.staff_id))
    if link is not None:
        page = replace(page, link=link[1], link_for=link[0], emailed=link[2])
    return render("dashboard/admin_staff.html", 422 if errors else 200, page=page, values=values,
                  errors=errors)  # fmt: skip


@bp.post("/staff/<int:staff_id>")
@staff_only
def update_staff(staff_id: int) -> Any:
    """Change a staff account's role or disable / enable it (its sessions end at once)."""
    viewer = me()
    changes: dict[str, Any] = {}
    if "role" in request.form:
        changes["role"] = request.form["role"]
    if request.form.get("disabled") in ("yes", "no"):
        changes["disabled"] = request.form["disabled"] == "yes"
    actor, now = viewer.actor, context().now
    try:
        run_in_transaction(lambda s: accounts.update_staff(s, actor, staff_id, changes, now=now))
    except NotFoundError:
        abort(404)
    except ConflictError:
        flash(_("This is the last admin account: make another admin first."))
    except ValidationError as exc:
        flash(error_text(exc))
    else:
        flash(_("Staff account saved."))
    return redirect(url_for("dashboard.staff_page"), 303)


@bp.post("/staff/<int:staff_id>/delete")
@staff_only
def delete_staff(staff_id: int) -> Any:
    """Remove a staff account; its past entries keep naming it."""
    viewer = me()
    actor, now = viewer.actor, context().now
    try:
        run_in_transaction(lambda s: accounts.delete_staff(s, actor, staff_id, now=now))
    except NotFoundError:
        abort(404)
    except ConflictError:
        flash(_("This is the last admin account: make another admin first."))
    else:
        flash(_("Staff account removed."))
    return redirect(url_for("dashboard.staff_page"), 303)


@bp.post("/staff/<int:staff_id>/link")
@staff_only
def staff_link(staff_id: int) -> Any:
    """A new one-time set-password link for an account (earlier links stop working)."""
    viewer = me()
    actor, now = viewer.actor, context().now
    send, lang = email_enabled(services().settings), language()  # [email-links]

    def work(session: Session) -> tuple[str, str, bool]:
        user = accounts.get_staff(session, viewer.brand_id, staff_id)
        made = accounts.issue_password_link(session, actor, user, now=now)
        url = _link_url(made.token)
        sent = send and email_password_link(session, made, url, language=lang, now=now)
        return user.email, url, bool(sent)

    try:
        email, url, emailed = run_in_transaction(work)
    except NotFoundError:
        abort(404)
    page = run_in_transaction(lambda s: _staff_page(s, viewer.brand_id, viewer.staff_id))
    page = replace(page, link=url, link_for=email, emailed=emailed)
    return render("dashboard/admin_staff.html", page=page, values={"role": "cashier"}, errors={})


# --- the invitee's page -------------------------------------------------------------------------


def _stale_link(state: str = "unknown") -> tuple[str, int]:
    # [email-links] A used or expired link says so; every stale link answers 404.
    if state == "used":
        return page_error(404, N_("This link was used already"),
                          N_("Links work once. Log in with your password, or ask for a new link: "
                             "“Forgot your password?” on the login page."))  # fmt: skip
    if state == "expired":
        return page_error(404, N_("This link has expired"),
                          N_("Ask for a new link: “Forgot your password?” on the login page, "
                             "or ask your admin."))  # fmt: skip
    return page_error(
        404,
        N_("This link is not valid any more"),
        N_("Ask your admin for a new link: links work once, for 72 hours."),
    )


def _stale_state(token: str, now: datetime) -> str:
    return run_in_transaction(lambda s: password_link_state(s, token, now=now))  # [email-links]


@bp.route("/set-password/<token:token>", methods=["GET", "POST"])
def set_password(token: str) -> Any:
    """Choose a password with a one-time link, then be logged in."""
    now = context().now
    user = run_in_transaction(lambda s: accounts.find_password_link(s, token, now=now))
    if user is None:
        return _stale_link(_stale_state(token, now))
    errors: dict[str, str] = {}
    if request.method == "POST":
        password = request.form.get("password", "")
        if password != request.form.get("confirm", ""):
            errors["confirm"] = _("The two passwords differ.")
        else:
            try:
                principal = run_in_transaction(
                    lambda s: accounts.set_password_with_link(s, token, password, now=now)
                )
            except NotFoundError:
                return _stale_link(_stale_state(token, now))
            except ValidationError as exc:
                errors["password"] = error_text(exc)
            else:
                security.log_in_staff(principal)
                flash(_("Password saved. Welcome!"))
                home = "dashboard.home" if principal.role == "admin" else "cashier.home"
                return redirect(url_for(home), 303)
    return render("dashboard/admin_set_password.html", 422 if errors else 200, email=user.email,
                  token=token, errors=errors)  # fmt: skip
