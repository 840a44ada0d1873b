"""Staff accounts, program editing and card recovery as services on a real database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.factories import BrandKeys, FrozenClock, enroll, services_of
from walletd.errors import ConflictError, ValidationError
from walletd.loyalty.context import Context
from walletd.loyalty.programs import ProgramChanges, TierChange, update_program
from walletd.loyalty.recovery import recover_card
from walletd.loyalty.staff import (
    attempt_login,
    check_password,
    create_staff,
    hash_password,
)
from walletd.models import StaffUser


def test_passwords_are_scrypt_hashes_with_their_own_salt() -> None:
    first, second = hash_password("secret words"), hash_password("secret words")
    assert first.startswith("scrypt$") and first != second
    assert check_password("secret words", first) and not check_password("Secret words", first)
    assert not check_password("anything", "bcrypt$whatever")


def test_staff_accounts_refuse_bad_input_and_duplicates(app: Flask, brand: BrandKeys) -> None:
    svc = services_of(app)
    with svc.db.transaction() as session:
        user = create_staff(session, brand.brand_id, " Owner@Acme.example ", "long enough pw",
                            "admin", now=svc.clock())  # fmt: skip
        assert user.email == "owner@acme.example" and "long enough" not in user.password_hash
    for email, password, role, field in (
        ("not an email", "long enough pw", "admin", "email"),
        ("x@acme.example", "short", "admin", "password"),
        ("x@acme.example", "long enough pw", "boss", "role"),
    ):
        with pytest.raises(ValidationError) as caught, svc.db.transaction() as session:
            create_staff(session, brand.brand_id, email, password, role, now=svc.clock())
        assert caught.value.field == field
    with pytest.raises(ConflictError), svc.db.transaction() as session:
        create_staff(session, brand.brand_id, "OWNER@acme.example", "long enough pw", "admin",
                     now=svc.clock())  # fmt: skip


def test_wrong_passwords_never_lock_an_account(
    app: Flask, brand: BrandKeys, clock: FrozenClock
) -> None:
    # Deliberately changed (issue 9): a lockout in the account row let strangers keep the owner
    # out; guessing is now slowed down per client and account by walletd.web.limits instead.
    svc = services_of(app)
    with svc.db.transaction() as session:
        create_staff(session, brand.brand_id, "o@acme.example", "right password", "admin",
                     now=clock())  # fmt: skip
    for _ in range(20):
        with svc.db.transaction() as session:
            assert (
                attempt_login(session, "o@acme.example", "wrong", now=clock()).failure == "invalid"
            )
    with svc.db.transaction() as session:
        result = attempt_login(session, "O@ACME.example", "right password", now=clock())
        assert result.principal is not None and result.principal.role == "admin"
        user = session.scalars(select(StaffUser)).one()
        assert (user.failed_logins, user.locked_until, user.last_login_at) == (0, None, clock())
    with svc.db.transaction() as session:
        assert attempt_login(session, "nobody@acme.example", "x", now=clock()).failure == "invalid"


def _changes(**overrides: object) -> ProgramChanges:
    fields: dict[str, object] = {
        "name": "Acme Club", "points_per_unit": "2", "rounding": "floor", "welcome_bonus": "10",
        "birthday_bonus": "20", "referral_bonus_referrer": "0", "referral_bonus_referee": "0",
        "points_expiry_months": "", "tier_basis": "spend", "background_color": "#000000",
        "foreground_color": "#ffffff", "label_color": "#cccccc", "template": "default",
    }  # fmt: skip
    fields.update(overrides)
    return ProgramChanges(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"points_per_unit": "-1"}, "points_per_unit"),
        ({"points_per_unit": "1.123456"}, "points_per_unit"),
        ({"welcome_bonus": "ten"}, "welcome_bonus"),
        ({"points_expiry_months": "0"}, "points_expiry_months"),
        ({"background_color": "red"}, "background_color"),
        ({"template": "../etc"}, "template"),
        ({"rounding": "banker"}, "rounding"),
        ({"tiers": [TierChange(None, "Gold", "1.001", "1")]}, "tier-0-threshold"),
        ({"tiers": [TierChange(None, "Gold", "10", "0.5")]}, "tier-0-multiplier"),
        ({"tiers": [TierChange(999_999, "Gold", "10", "1")]}, "tier-0-name"),
    ],
)
def test_program_changes_are_validated_field_by_field(
    app: Flask, brand: BrandKeys, overrides: dict[str, object], field: str
) -> None:
    svc = services_of(app)
    ctx = Context(now=svc.clock(), secret_key=svc.settings.secret_key)
    with pytest.raises(ValidationError) as caught, svc.db.transaction() as session:
        update_program(session, brand.brand_id, brand.program_id, _changes(**overrides), ctx,
                       templates=["default", "mono"])  # fmt: skip
    assert caught.value.field == field


def test_removing_a_tier_leaves_its_members_without_one(app: Flask, brand: BrandKeys) -> None:
    client = app.test_client()
    member = enroll(client, brand)
    assert member["tier"] == "Silver"
    svc = services_of(app)
    ctx = Context(now=svc.clock() + timedelta(minutes=1), secret_key=svc.settings.secret_key)
    from walletd.models import Tier

    with svc.db.transaction() as session:
        silver = session.scalars(select(Tier).where(Tier.name == "Silver")).one()
        touched = update_program(
            session, brand.brand_id, brand.program_id,
            _changes(tiers=[TierChange(silver.id, "Silver", "0", "1", delete=True)]),
            ctx, templates=["default"],
        )  # fmt: skip
        assert touched == 1
    assert (
        client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()["tier"]
        is None
    )


def test_cards_are_touched_in_chunks(app: Flask, brand: BrandKeys) -> None:
    from walletd.loyalty.programs import touch_program_cards

    client = app.test_client()
    for i in range(5):
        enroll(client, brand, name=f"Member {i}")
    svc = services_of(app)
    ctx = Context(now=svc.clock() + timedelta(minutes=1), secret_key=svc.settings.secret_key)
    with svc.db.transaction() as session:
        assert touch_program_cards(session, brand.program_id, ctx, chunk=2) == 5


def test_recovery_needs_contact_and_birthday(app: Flask, brand: BrandKeys) -> None:
    client = app.test_client()
    enroll(client, brand, email="ada@example.com", birthday="1990-01-02")
    enroll(client, brand, name="No birthday", email="nob@example.com")
    svc = services_of(app)
    with svc.db.transaction() as session:
        assert recover_card(session, brand.program_id, "ada@example.com", date(1990, 1, 2))
        assert recover_card(session, brand.program_id, "ada@example.com", date(1990, 1, 3)) is None
        assert recover_card(session, brand.program_id, "nob@example.com", date(1990, 1, 2)) is None
        with pytest.raises(ValidationError):
            recover_card(session, brand.program_id, "12", date(1990, 1, 2))


def test_create_staff_command_reads_the_password_from_the_environment(
    app: Flask, brand: BrandKeys
) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-staff", "Boss@Acme.example", "--brand-id", str(brand.brand_id)],
        env={"WALLETD_STAFF_PASSWORD": "a good long password"},
    )
    assert result.exit_code == 0, result.output
    assert "boss@acme.example" in result.output and "a good long password" not in result.output
    again = runner.invoke(
        args=["create-staff", "boss@acme.example", "--brand-id", str(brand.brand_id),
              "--role", "cashier"],
        input="another long password\nanother long password\n",
    )  # fmt: skip
    assert again.exit_code == 1 and "already exists" in again.output
    svc = services_of(app)
    with svc.db.transaction() as session:
        result_login = attempt_login(
            session, "boss@acme.example", "a good long password", now=svc.clock()
        )
        assert result_login.principal is not None
