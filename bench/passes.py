"""Signed passes per second: one core in process beside raw RSA, then the latest-pass endpoint.

Usage: python bench/passes.py [--seconds 3] [--http-seconds 5] [--cards 6000] [--no-http]
The HTTP part needs Postgres on 127.0.0.1:5432 (or BENCH_DATABASE_URL) and wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402
from werkzeug.http import http_date  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_PG,
    SECRET,
    gunicorn,
    machine,
    private_database,
    wrk,
)
from walletd.config import BUNDLED_PASS_TEMPLATES
from walletd.db import Database, utcnow  # noqa: E402
from walletd.loyalty.barcodes import make_barcode, new_auth_token, new_serial  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.context import Context  # noqa: E402
from walletd.loyalty.members import Enrollment, enroll_member  # noqa: E402
from walletd.models import Card, Member  # noqa: E402
from walletd.passes.certs import DevCertPaths, write_dev_certs  # noqa: E402
from walletd.passes.pkpass import build_pkpass, load_template  # noqa: E402
from walletd.passes.signing import PassSigner, load_private_key  # noqa: E402
from walletd.passes.view import CardView  # noqa: E402
from walletd.schema import upgrade  # noqa: E402

WEB_SERVICE_URL = "https://wallet.example.com/passes/"
WARM_UP_CARDS = 500


def rates(works: dict[str, Callable[[int], object]], seconds: float) -> dict[str, float]:
    """Calls per second of each `work(n)` on this thread, each call with a new n.

    The works take turns in 50 ms slices, so a neighbour's load drifting during the run
    (CI, other benchmarks) slows them all alike and leaves their ratios honest.
    """
    calls = dict.fromkeys(works, 0)
    spent = dict.fromkeys(works, 0.0)
    n = 0
    deadline = time.perf_counter() + seconds * len(works)
    while time.perf_counter() < deadline:
        for name, work in works.items():
            start = time.perf_counter()
            while time.perf_counter() - start < 0.05:
                work(n)
                n += 1
                calls[name] += 1
            spent[name] += time.perf_counter() - start
    return {name: calls[name] / spent[name] for name in works}


def view(n: int) -> CardView:
    """A distinct card (serial and points differ), so no two packages are alike."""
    return CardView(
        serial_number=f"BENCH{n:012d}",
        authentication_token=f"bench-authentication-token-{n:012d}",
        barcode_message=f"WALLETD-BENCH-{n}",
        barcode_alt_text=f"{n:08d}",
        organization_name="Bench Coffee",
        program_name="Rewards",
        member_name="Ada Lovelace",
        points=n % 100_000,
        tier="Gold",
        background_color="#182C52",
        foreground_color="#FFFFFF",
        label_color="#DEAD28",
        template="default",
        updated_at=datetime(2026, 3, 10, 12, 0, tzinfo=UTC),
        message="Double points this weekend",
        member_since="2025-01-01",
    )


def signing_rates(certs: DevCertPaths, seconds: float) -> dict[str, float]:
    """Packages, CMS signatures and raw RSA signatures per second on one core."""
    signer = PassSigner.from_files(
        cert_path=certs.cert_path,
        key_path=certs.key_path,
        key_password=None,
        wwdr_path=certs.wwdr_path,
    )
    key = load_private_key(certs.key_path, None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    template = load_template(BUNDLED_PASS_TEMPLATES, "default")
    manifest = template.manifest(b'{"formatVersion":1}')

    def package(n: int) -> object:
        return build_pkpass(
            view(n), signer=signer, template=template, web_service_url=WEB_SERVICE_URL
        )

    def cms(n: int) -> object:
        return signer.sign(manifest + str(n).encode())

    def raw(n: int) -> object:
        return key.sign(manifest + str(n).encode(), padding.PKCS1v15(), hashes.SHA256())

    package(0)  # warm-up: template caches, lazy imports
    measured = rates({"pkpass": package, "cms": cms, "rsa": raw}, seconds)
    return {
        "pkpass_per_s": measured["pkpass"],
        "cms_per_s": measured["cms"],
        "rsa2048_per_s": measured["rsa"],
    }


@dataclass(frozen=True)
class SeededCard:
    """What a device needs to fetch a pass: path, token, and its Last-Modified."""

    path: str
    token: str
    last_modified: str


def seed(url: str, cards: int, pass_type_id: str) -> list[SeededCard]:
    """A brand with `cards` members; returns their latest-pass requests.

    One member is enrolled through the service; the rest copy it in two bulk INSERTs, since
    enrolling thousands one by one would take longer than the measurement.
    """
    upgrade(url)
    db = Database(url)
    ctx = Context(now=utcnow(), secret_key=SECRET)
    with db.transaction() as session:
        creds = create_brand(session, "Bench Coffee", now=ctx.now)
        model, card = enroll_member(session, creds.brand_id, Enrollment(name="Member 0"), ctx)
        member_ids = session.scalars(
            insert(Member).returning(Member.id, sort_by_parameter_order=True),
            [
                {
                    "brand_id": model.brand_id,
                    "program_id": model.program_id,
                    "name": f"Member {n}",
                    "referral_code": f"B{n:07d}",
                    "tier_id": model.tier_id,
                    "points": model.points,
                    "created_at": ctx.now,
                }
                for n in range(1, cards)
            ],
        ).all()
        serials = [new_serial() for _ in member_ids]
        session.execute(
            insert(Card),
            [
                {
                    "brand_id": model.brand_id,
                    "member_id": member_id,
                    "serial_number": serial,
                    "auth_token": new_auth_token(),
                    "barcode": make_barcode(serial, SECRET),
                    "update_tag": card.update_tag,
                    "updated_at": card.updated_at,
                    "created_at": ctx.now,
                }
                for member_id, serial in zip(member_ids, serials, strict=True)
            ],
        )
        rows = session.execute(select(Card.serial_number, Card.auth_token, Card.updated_at)).all()
    db.dispose()
    return [
        SeededCard(
            path=f"/passes/v1/passes/{pass_type_id}/{serial}",
            token=token,
            last_modified=http_date(updated_at.replace(microsecond=0)),
        )
        for serial, token, updated_at in rows
    ]


# Each wrk thread walks its own slice of the cards in order: thread t of T asks for cards
# t, t+T, t+2T, ... so no card is asked for twice until the list runs out (`wrapped`).
# `tid` must stay global: thread:set() writes globals, a `local tid` would shadow it.
PASS_SCRIPT = """
local cards = {%(cards)s}
local counter = 0
local thread_count = 0
local threads = %(threads)d
local conditional = %(conditional)s
setup = function(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end
request = function()
  local index = counter * threads + tid
  counter = counter + 1
  local card = cards[(index %% #cards) + 1]
  local headers = {["Authorization"] = "ApplePass " .. card[2]}
  if conditional then headers["If-Modified-Since"] = card[3] end
  return wrk.format("GET", card[1], headers)
end
"""


def pass_script(cards: list[SeededCard], *, conditional: bool) -> str:
    """The wrk script fetching `cards` in turn, conditionally or not."""
    table = ", ".join(f'{{"{c.path}", "{c.token}", "{c.last_modified}"}}' for c in cards)
    return PASS_SCRIPT % {
        "cards": table,
        "threads": 2,  # bench.common.wrk runs min(connections, 2) threads
        "conditional": "true" if conditional else "false",
    }


def check_conditional_get(base: str, card: SeededCard) -> None:
    """The last card answers 200 with a package, then 304 with its own Last-Modified."""
    auth = {"Authorization": f"ApplePass {card.token}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        full = http.get(card.path, headers=auth)
        assert full.status_code == 200 and full.content.startswith(b"PK"), full.status_code
        assert full.headers["Last-Modified"] == card.last_modified
        again = http.get(card.path, headers={**auth, "If-Modified-Since": card.last_modified})
        assert again.status_code == 304, again.status_code


def http_rates(certs: DevCertPaths, args: argparse.Namespace) -> dict[str, float | int | bool]:
    """Fresh passes, cached passes and 304s per second from gunicorn on Postgres."""
    # gunicorn (bench.common) passes this process's environment on to the server.
    os.environ.update(
        WALLETD_APPLE_CERT=str(certs.cert_path),
        WALLETD_APPLE_KEY=str(certs.key_path),
        WALLETD_APPLE_WWDR=str(certs.wwdr_path),
    )
    with private_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)) as url:
        cards = seed(url, args.cards, certs.pass_type_id)
        with gunicorn(url, workers=args.workers, threads=args.threads) as base:

            def measure(
                chosen: list[SeededCard], *, conditional: bool, seconds: int | None = None
            ) -> dict[str, Any]:
                script = pass_script(chosen, conditional=conditional)
                duration = seconds or args.http_seconds
                return wrk(base, connections=args.connections, seconds=duration, script=script)

            # Warm every worker up (imports, signer, template, connections) on cards of its own.
            warm, cards = cards[:WARM_UP_CARDS], cards[WARM_UP_CARDS:]
            measure(warm, conditional=False, seconds=2)
            # Never-fetched cards: every request renders and signs a package.
            fresh = measure(cards, conditional=False)
            # A few cards over and over: served from each worker's cache.
            few = cards[: args.workers * 8]
            measure(few, conditional=False, seconds=1)  # warm every worker's cache
            cached = measure(few, conditional=False)
            # Wallet's pull-to-refresh with the Last-Modified it holds.
            check_conditional_get(base, cards[-1])
            not_modified = measure(cards, conditional=True)
    return {
        "fresh_pass_rps": round(fresh["rps"], 1),
        "fresh_p50_ms": fresh["p50_ms"],
        "fresh_p99_ms": fresh["p99_ms"],
        "fresh_requests": fresh["requests"],
        "fresh_wrapped": fresh["requests"] > len(cards),
        "cached_pass_rps": round(cached["rps"], 1),
        "not_modified_rps": round(not_modified["rps"], 1),
        "not_modified_p50_ms": not_modified["p50_ms"],
        # wrk counts statuses of 400 and above here, so a 304 is not an error.
        "errors": fresh["non_2xx"] + cached["non_2xx"] + not_modified["non_2xx"],
    }


def main() -> None:
    """Measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per in-process measurement")
    parser.add_argument("--http-seconds", type=int, default=5)
    parser.add_argument("--cards", type=int, default=6000, help="more than one run fetches")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-http", action="store_true", help="only the in-process figures")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"command: python bench/passes.py {' '.join(sys.argv[1:])}".rstrip())
    with tempfile.TemporaryDirectory(prefix="walletd-bench-certs-") as directory:
        certs = write_dev_certs(Path(directory))
        signing = signing_rates(certs, args.seconds)
        result: dict[str, object] = {
            "pkpass_per_s_one_core": round(signing["pkpass_per_s"], 1),
            "cms_sign_per_s_one_core": round(signing["cms_per_s"], 1),
            "rsa2048_pkcs1v15_sha256_per_s_one_core": round(signing["rsa2048_per_s"], 1),
            "pkpass_to_rsa_ratio": round(signing["pkpass_per_s"] / signing["rsa2048_per_s"], 3),
        }
        print(json.dumps(result))
        if not args.no_http:
            setup = {"workers": args.workers, "threads": args.threads}
            print(json.dumps({**setup, "connections": args.connections, **http_rates(certs, args)}))


if __name__ == "__main__":
    main()
