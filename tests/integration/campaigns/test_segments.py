"""Segments: every preset, field and operator counted on a history whose answers are known."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.factories import BrandKeys
from tests.integration.campaigns.conftest import Shop, push_token
from walletd.campaigns.segments import (
    FIELD_OPS,
    MAX_DEPTH,
    MAX_LEAVES,
    PRESETS,
    count_segment,
    member_ids_after,
    parse_segment,
)
from walletd.errors import ValidationError

# now = 2026-03-10 12:00 UTC. Each member's history, in days before now:
#   name  enrolled  visits (days ago x amount)         consent  birthday    wallet
#   Ann   200       100,50,25,10,3 x $20 (3 at store)  yes      1990-03-25  apple
#   Ben   150       90,60,45 x $200 -> Gold            yes      1985-07-01  google
#   Cat   300       200,90 x $10                       no       -           -
#   Dan   800       400 x $2500 -> VIP                 yes      1970-03-01  apple + google
#   Eve   20        5 x $15 at the store               yes      1995-04-15  apple
#   Fay   1         -                                  no       -           -
#   Gus   0 (1 h)   -                                  yes      -           google, deleted
#   Hal   400       380,300,200,130 x $50              yes      2000-12-24  -
# Points are the 50-point welcome bonus plus one per dollar (Silver earns x1 at every scan here).
# Rival Roasters has two members of its own that would match every segment below.


def seed(shop: Shop, rival: Shop) -> dict[str, int]:
    """Write the history above; returns member ids by name."""
    store = shop.location_id()
    ids: dict[str, int] = {}

    def member(
        name: str, enrolled: float, visits: list[tuple[float, str]], *, consent: bool = True,
        birthday: date | None = None, at_store: tuple[float, ...] = (),
    ) -> int:  # fmt: skip
        member_id = shop.enroll(
            name, at=shop.days_ago(enrolled), consent=consent, birthday=birthday
        )
        for days, amount in visits:
            location = store if days in at_store else None
            shop.visit(member_id, amount, at=shop.days_ago(days), location_id=location)
        ids[name] = member_id
        return member_id

    member("Ann", 200, [(d, "20") for d in (100, 50, 25, 10, 3)], birthday=date(1990, 3, 25),
           at_store=(3,))  # fmt: skip
    member("Ben", 150, [(d, "200.00") for d in (90, 60, 45)], birthday=date(1985, 7, 1))
    member("Cat", 300, [(200, "10"), (90, "10")], consent=False)
    member("Dan", 800, [(400, "2500")], birthday=date(1970, 3, 1))
    member("Eve", 20, [(5, "15")], birthday=date(1995, 4, 15), at_store=(5,))
    member("Fay", 1, [], consent=False)
    member("Gus", 1 / 24, [])
    member("Hal", 400, [(d, "50") for d in (380, 300, 200, 130)], birthday=date(2000, 12, 24))
    shop.install_apple(ids["Ann"], push_token(1))
    shop.install_apple(ids["Dan"], push_token(2))
    shop.install_apple(ids["Eve"], push_token(3))
    shop.install_apple(ids["Eve"], push_token(4))  # a second device: still one member
    shop.save_google(ids["Ben"], at=shop.days_ago(40))
    shop.save_google(ids["Dan"], at=shop.days_ago(300))
    shop.save_google(ids["Gus"], at=shop.days_ago(0.03), deleted_at=shop.days_ago(0.01))
    for name in ("Rex", "Roz"):
        rival_id = rival.enroll(name, at=rival.days_ago(30), birthday=date(1990, 3, 3))
        rival.visit(rival_id, "2500", at=rival.days_ago(2))
        rival.install_apple(rival_id, push_token(900 + rival_id))
    return ids


def leaf(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


PRESET_MEMBERS: dict[str, set[str]] = {
    "all": {"Ann", "Ben", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal"},
    "subscribed_only": {"Fay", "Gus"},
    "one_purchase": {"Dan", "Eve"},
    "three_or_more": {"Ann", "Ben", "Hal"},
    "champions": {"Ann"},
    "loyal": {"Ben"},
    "at_risk": {"Cat"},
    "sleeping": {"Dan", "Hal"},
    "birthday_this_month": {"Ann", "Dan"},
}

# (condition, the members it selects)
FIELD_CASES: list[tuple[dict[str, Any], set[str]]] = [
    (leaf("tier", "eq", "Gold"), {"Ben"}),
    (leaf("tier", "ne", "Silver"), {"Ben", "Dan"}),
    (leaf("tier", "in", ["Gold", "VIP"]), {"Ben", "Dan"}),
    (leaf("tier", "eq", "Platinum"), set()),
    (leaf("points", "eq", 650), {"Ben"}),
    (leaf("points", "ne", 50), {"Ann", "Ben", "Cat", "Dan", "Eve", "Hal"}),
    (leaf("points", "lt", 65), {"Fay", "Gus"}),
    (leaf("points", "lte", 65), {"Eve", "Fay", "Gus"}),
    (leaf("points", "gt", 250), {"Ben", "Dan"}),
    (leaf("points", "gte", 250), {"Ben", "Dan", "Hal"}),
    (leaf("points", "in", [70, 150]), {"Ann", "Cat"}),
    (leaf("spend_12m", "gt", "100"), {"Ben", "Hal"}),
    (leaf("spend_12m", "gte", 100), {"Ann", "Ben", "Hal"}),
    (leaf("spend_12m", "eq", "20.00"), {"Cat"}),
    (leaf("spend_12m", "ne", "0"), {"Ann", "Ben", "Cat", "Eve", "Hal"}),
    (leaf("spend_12m", "lt", "20"), {"Dan", "Eve", "Fay", "Gus"}),
    (leaf("spend_12m", "lte", "20"), {"Cat", "Dan", "Eve", "Fay", "Gus"}),
    (leaf("spend_12m", "in", ["15", "150"]), {"Eve", "Hal"}),
    (leaf("spend_12m", "gt", "14.99"), {"Ann", "Ben", "Cat", "Eve", "Hal"}),
    # Members who bought nothing in twelve months spent 0.
    (leaf("spend_12m", "in", ["0", "20"]), {"Cat", "Dan", "Fay", "Gus"}),
    (leaf("spend_12m", "gte", 0), {"Ann", "Ben", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal"}),
    (leaf("lifetime_spend", "gte", "600"), {"Ben", "Dan"}),
    (leaf("lifetime_spend", "eq", 2500), {"Dan"}),
    (leaf("lifetime_spend", "ne", "0"), {"Ann", "Ben", "Cat", "Dan", "Eve", "Hal"}),
    (leaf("lifetime_spend", "lt", "20"), {"Eve", "Fay", "Gus"}),
    (leaf("lifetime_spend", "lte", "15"), {"Eve", "Fay", "Gus"}),
    (leaf("lifetime_spend", "gt", "200"), {"Ben", "Dan"}),
    (leaf("lifetime_spend", "in", ["200", "100.00"]), {"Ann", "Hal"}),
    (leaf("visits", "eq", 0), {"Fay", "Gus"}),
    (leaf("visits", "ne", 1), {"Ann", "Ben", "Cat", "Fay", "Gus", "Hal"}),
    (leaf("visits", "gt", 3), {"Ann", "Hal"}),
    (leaf("visits", "gte", 3), {"Ann", "Ben", "Hal"}),
    (leaf("visits", "lt", 2), {"Dan", "Eve", "Fay", "Gus"}),
    (leaf("visits", "lte", 1), {"Dan", "Eve", "Fay", "Gus"}),
    (leaf("visits", "in", [1, 2]), {"Cat", "Dan", "Eve"}),
    # Whole days since the last visit; members who never came match none of these.
    (leaf("last_visit_days", "eq", 45), {"Ben"}),
    (leaf("last_visit_days", "ne", 45), {"Ann", "Cat", "Dan", "Eve", "Hal"}),
    (leaf("last_visit_days", "lt", 5), {"Ann"}),
    (leaf("last_visit_days", "lte", 5), {"Ann", "Eve"}),
    (leaf("last_visit_days", "gt", 90), {"Dan", "Hal"}),
    (leaf("last_visit_days", "gte", 90), {"Cat", "Dan", "Hal"}),
    (leaf("last_visit_days", "in", [3, 90]), {"Ann", "Cat"}),
    (leaf("enrolled_days", "eq", 0), {"Gus"}),
    (leaf("enrolled_days", "ne", 0), {"Ann", "Ben", "Cat", "Dan", "Eve", "Fay", "Hal"}),
    (leaf("enrolled_days", "lt", 2), {"Fay", "Gus"}),
    (leaf("enrolled_days", "lte", 20), {"Eve", "Fay", "Gus"}),
    (leaf("enrolled_days", "gt", 200), {"Cat", "Dan", "Hal"}),
    (leaf("enrolled_days", "gte", 200), {"Ann", "Cat", "Dan", "Hal"}),
    (leaf("enrolled_days", "in", [1, 150]), {"Ben", "Fay"}),
    # Members without a birthday match no birthday condition.
    (leaf("birthday_month", "eq", "current"), {"Ann", "Dan"}),
    (leaf("birthday_month", "eq", 7), {"Ben"}),
    (leaf("birthday_month", "ne", 3), {"Ben", "Eve", "Hal"}),
    (leaf("birthday_month", "lt", 4), {"Ann", "Dan"}),
    (leaf("birthday_month", "lte", 4), {"Ann", "Dan", "Eve"}),
    (leaf("birthday_month", "gt", 7), {"Hal"}),
    (leaf("birthday_month", "gte", 7), {"Ben", "Hal"}),
    (leaf("birthday_month", "in", [12, "current"]), {"Ann", "Dan", "Hal"}),
    (leaf("marketing_consent", "eq", True), {"Ann", "Ben", "Dan", "Eve", "Gus", "Hal"}),
    (leaf("marketing_consent", "eq", False), {"Cat", "Fay"}),
    (leaf("marketing_consent", "ne", True), {"Cat", "Fay"}),
    (leaf("wallet", "eq", "apple"), {"Ann", "Dan", "Eve"}),
    (leaf("wallet", "eq", "google"), {"Ben", "Dan"}),
    (leaf("wallet", "eq", "any"), {"Ann", "Ben", "Dan", "Eve"}),
    (leaf("wallet", "eq", "none"), {"Cat", "Fay", "Gus", "Hal"}),
    (leaf("wallet", "ne", "apple"), {"Ben", "Cat", "Fay", "Gus", "Hal"}),
    (leaf("wallet", "in", ["google", "none"]), {"Ben", "Cat", "Dan", "Fay", "Gus", "Hal"}),
    (leaf("location", "in", [999_999]), set()),
    # Nested groups.
    ({"and": []}, PRESET_MEMBERS["all"]),
    ({"or": []}, set()),
    (
        {
            "or": [
                {"preset": "champions"},
                {"and": [leaf("wallet", "eq", "none"), leaf("marketing_consent", "eq", True)]},
            ]
        },
        {"Ann", "Gus", "Hal"},
    ),  # fmt: skip
    (
        {
            "and": [
                {"preset": "three_or_more"},
                {
                    "or": [
                        leaf("tier", "eq", "Gold"),
                        {"and": [leaf("wallet", "eq", "apple"), leaf("points", "lt", 200)]},
                    ]
                },
            ]
        },
        {"Ann", "Ben"},
    ),  # fmt: skip
]


def _preview(client: FlaskClient, brand: BrandKeys, segment: Any) -> Any:
    raw = segment if isinstance(segment, str) else json.dumps(segment)
    return client.get(
        "/api/v1/segments/preview", query_string={"segment": raw}, headers=brand.admin
    )


def _previewed(client: FlaskClient, brand: BrandKeys, segment: Any) -> int:
    response = _preview(client, brand, segment)
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(response.get_json()["count"])


def test_every_preset_counts_the_members_it_describes(
    client: FlaskClient, brand: BrandKeys, shop: Shop, other_shop: Shop
) -> None:
    ids = seed(shop, other_shop)
    assert set(PRESET_MEMBERS) == set(PRESETS)
    found: dict[str, tuple[int, list[int]]] = {}
    with shop.svc.db.transaction() as session:
        for preset in PRESET_MEMBERS:
            segment = parse_segment({"preset": preset})
            counted = count_segment(session, shop.brand.brand_id, segment, shop.clock())
            listed = member_ids_after(
                session, shop.brand.brand_id, segment, shop.clock(), after_id=0, limit=100
            )
            found[preset] = (counted, listed)
    mismatches = []
    for preset, members in PRESET_MEMBERS.items():
        previewed = _previewed(client, brand, {"preset": preset})
        counted, listed = found[preset]
        expected = sorted(ids[name] for name in members)
        if not counted == previewed == len(expected) or listed != expected:
            mismatches.append((preset, expected, counted, previewed, listed))
    assert mismatches == []
    assert _previewed(client, other_shop.brand, {"preset": "all"}) == 2


def test_every_field_and_operator_counts_the_members_it_describes(
    client: FlaskClient, brand: BrandKeys, shop: Shop, other_shop: Shop
) -> None:
    ids = seed(shop, other_shop)
    store = shop.location_id()
    cases = [
        *FIELD_CASES,
        (leaf("location", "eq", store), {"Ann", "Eve"}),
        (leaf("location", "in", [store, 999_999]), {"Ann", "Eve"}),
    ]
    with shop.svc.db.transaction() as session:
        listed = [
            member_ids_after(
                session, shop.brand.brand_id, parse_segment(definition), shop.clock(),
                after_id=0, limit=100,
            )
            for definition, _ in cases
        ]  # fmt: skip
    mismatches = []
    for (definition, members), members_listed in zip(cases, listed, strict=True):
        previewed = _previewed(client, brand, definition)
        expected = sorted(ids[name] for name in members)
        if members_listed != expected or previewed != len(expected):
            got = sorted(name for name, i in ids.items() if i in members_listed)
            mismatches.append((definition, sorted(members), got, previewed))
    assert mismatches == []
    operators = {(d["field"], d["op"]) for d, _ in cases if "field" in d}
    assert operators == {(f, op) for f, ops in FIELD_OPS.items() for op in ops}
    # A decimal in the query is read exactly, never as a binary float.
    exact = ['{"field": "spend_12m", "op": "gte", "value": 15.00}',
             '{"field": "spend_12m", "op": "gt", "value": 14.999}']  # fmt: skip
    assert [_previewed(client, brand, raw) for raw in exact] == [5, 5]


def test_segment_members_come_in_id_order_chunk_after_chunk(shop: Shop, other_shop: Shop) -> None:
    ids = shop.enroll_many([f"Member {i}" for i in range(8)])
    other_shop.enroll_many(["Rival"])
    segment = parse_segment({"preset": "all"})
    pages: list[list[int]] = []
    after = 0
    with shop.svc.db.transaction() as session:
        while page := member_ids_after(
            session, shop.brand.brand_id, segment, shop.clock(), after_id=after, limit=3
        ):
            pages.append(page)
            after = page[-1]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for p in pages for i in p] == ids


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = leaf("visits", "gt", 0)
    for _ in range(depth):
        node = {"and": [node]}
    return node


INVALID: dict[str, str] = {
    "unknown preset": json.dumps({"preset": "whales"}),
    "preset with extra keys": json.dumps({"preset": "all", "limit": 5}),
    "unknown field": json.dumps(leaf("shoe_size", "eq", 42)),
    "unknown operator": json.dumps(leaf("visits", "between", [1, 2])),
    "operator the field does not take": json.dumps(leaf("tier", "gt", "Gold")),
    "missing value": json.dumps({"field": "visits", "op": "eq"}),
    "text where a number goes": json.dumps(leaf("visits", "gt", "3")),
    "true where a number goes": json.dumps(leaf("points", "gte", True)),
    "negative number": json.dumps(leaf("last_visit_days", "gt", -1)),
    "fraction of a visit": '{"field": "visits", "op": "gt", "value": 2.5}',
    "amount that is not a number": json.dumps(leaf("spend_12m", "gt", "lots")),
    "negative amount": json.dumps(leaf("lifetime_spend", "gt", "-5")),
    "month thirteen": json.dumps(leaf("birthday_month", "eq", 13)),
    "consent as a string": json.dumps(leaf("marketing_consent", "eq", "yes")),
    "unknown wallet": json.dumps(leaf("wallet", "eq", "samsung")),
    "empty tier name": json.dumps(leaf("tier", "eq", "")),
    "in without a list": json.dumps(leaf("visits", "in", 3)),
    "in with an empty list": json.dumps(leaf("visits", "in", [])),
    "in with a bad item": json.dumps(leaf("wallet", "in", ["apple", "palm"])),
    "and without a list": json.dumps({"and": leaf("visits", "gt", 0)}),
    "and beside or": json.dumps({"and": [], "or": []}),
    "a list at the top": json.dumps([leaf("visits", "gt", 0)]),
    "too deep": json.dumps(_nested(MAX_DEPTH + 1)),
    "too many conditions": json.dumps({"or": [leaf("points", "gt", n) for n in range(51)]}),
}
NOT_JSON: dict[str, str] = {"not JSON": "{preset: all}", "empty": "", "truncated": '{"preset": '}
# The field of each refusal is the path of the part that is wrong.
INVALID_PATHS: dict[str, str] = {
    "unknown preset": "segment.preset",
    "unknown field": "segment.field",
    "unknown operator": "segment.op",
    "operator the field does not take": "segment.op",
    "text where a number goes": "segment.value",
    "true where a number goes": "segment.value",
    "negative number": "segment.value",
    "fraction of a visit": "segment.value",
    "amount that is not a number": "segment.value",
    "negative amount": "segment.value",
    "month thirteen": "segment.value",
    "consent as a string": "segment.value",
    "unknown wallet": "segment.value",
    "empty tier name": "segment.value",
    "in without a list": "segment.value",
    "in with an empty list": "segment.value",
    "in with a bad item": "segment.value[1]",
    "and without a list": "segment.and",
    "too deep": "segment" + ".and[0]" * (MAX_DEPTH + 1),
    "too many conditions": f"segment.or[{MAX_LEAVES}]",
}


@pytest.mark.parametrize("name", list(INVALID))
def test_a_bad_segment_is_refused_on_the_path_of_the_bad_part(name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_segment(json.loads(INVALID[name], parse_float=Decimal))
    assert refused.value.field == INVALID_PATHS.get(name, "segment")


def test_preview_refuses_every_bad_segment_with_422_on_the_path_of_the_bad_part(
    client: FlaskClient, brand: BrandKeys
) -> None:
    answers = {}
    for name, raw in {**INVALID, **NOT_JSON}.items():
        response = _preview(client, brand, raw)
        error = response.get_json()["error"]
        answers[name] = (response.status_code, error["code"], error.get("field"))
    missing = client.get("/api/v1/segments/preview", headers=brand.admin)
    answers["no segment at all"] = (missing.status_code, "validation_error",
                                    missing.get_json()["error"]["field"])  # fmt: skip
    expected = {
        name: (422, "validation_error", INVALID_PATHS.get(name, "segment"))
        for name in {**INVALID, **NOT_JSON}
    }
    assert answers == {**expected, "no segment at all": (422, "validation_error", "segment")}


def test_the_deepest_and_widest_segments_are_accepted_from_admin_keys_only(
    client: FlaskClient, brand: BrandKeys
) -> None:
    deepest = _preview(client, brand, _nested(MAX_DEPTH))
    widest = _preview(client, brand, {"or": [leaf("points", "gt", n) for n in range(MAX_LEAVES)]})
    assert (deepest.status_code, widest.status_code) == (200, 200)
    as_cashier = client.get(
        "/api/v1/segments/preview",
        query_string={"segment": json.dumps({"preset": "all"})},
        headers=brand.cashier,
    )
    assert as_cashier.status_code == 403
