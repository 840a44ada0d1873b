"""A refresh storm: every card changed, every device fetches its new pass once.

    python bench/storm.py [--cards 20000] [--seconds 8] [--server gunicorn granian]

Two ways to have the new passes signed, measured in one run on one database:
  on demand  each fetch of a changed pass signs it on the web's request path (then stores it);
  presigned  the worker signed and stored every changed pass before the pushes (walletd's
             default for single-card changes), so a fetch reads stored bytes.
Each fetch is a distinct card (a fresh changed pass), `wrk` with --connections, against the raw
RSA-2048 PKCS#1 v1.5 SHA-256 signing rate of one core measured in this process beforehand.
Cards are copied in SQL from one enrolled member, so 20,000 take seconds to create.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/ (it holds a google.py)

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.common import DEFAULT_PG, SECRET, gunicorn, machine, private_database, wrk  # noqa: E402
from walletd.db import Database, utcnow  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.context import Context  # noqa: E402
from walletd.loyalty.members import Enrollment, enroll_member  # noqa: E402
from walletd.models import Card, Member  # noqa: E402
from walletd.passes import serving  # noqa: E402
from walletd.passes.certs import ensure_dev_certs  # noqa: E402
from walletd.schema import upgrade  # noqa: E402
from walletd.wiring import apple_passes  # noqa: E402

FETCH_SCRIPT = """
local serials = {%(serials)s}
local counter = 0
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
request = function()
  -- Each wrk thread walks its own half of the cards: every request a card not fetched before.
  local i = (counter * 2 + tid) %% #serials + 1
  counter = counter + 1
  return wrk.format("GET", "/passes/v1/passes/%(ptid)s/" .. serials[i], {
    ["Authorization"] = "ApplePass %(token)s",
  })
end
"""


def raw_rsa_rate(seconds: float = 3.0) -> float:
    """RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second on one core."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = os.urandom(64)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - start)


def seed(url: str, cards: int) -> tuple[list[str], str]:
    """A brand with `cards` members and cards (copies of one enrolled member); serials, token."""
    upgrade(url)
    db = Database(url)
    ctx = Context(now=utcnow(), secret_key=SECRET)
    with db.transaction() as session:
        creds = create_brand(session, "Storm Coffee", now=ctx.now)
        member, card = enroll_member(session, creds.brand_id, Enrollment(name="Template"), ctx)
        member_id, card_id = member.id, card.id
    member_columns = [c.name for c in Member.__table__.columns if c.name != "id"]
    card_columns = [c.name for c in Card.__table__.columns if c.name != "id"]
    copied = {"serial_number": "'ST' || lpad(m.id::text, 10, '0')",
              "barcode": "'STORM' || lpad(m.id::text, 10, '0')", "member_id": "m.id"}  # fmt: skip
    with db.engine.begin() as connection:
        names = ", ".join(member_columns)
        # Unique per member: a referral code made from the row's number.
        unique = {"referral_code": "'R' || lpad(g::text, 9, '0')"}
        values = ", ".join(unique.get(c, c) for c in member_columns)
        connection.execute(text(
            f"INSERT INTO members ({names}) SELECT {values} FROM members, generate_series(2, :n) g "
            "WHERE id = :id"
        ), {"n": cards, "id": member_id})  # fmt: skip
        select_list = ", ".join(copied.get(c, f"c.{c}") for c in card_columns)
        connection.execute(text(
            f"INSERT INTO cards ({', '.join(card_columns)}) SELECT {select_list} "
            "FROM members m, cards c WHERE c.id = :card AND m.id <> :member"
        ), {"card": card_id, "member": member_id})  # fmt: skip
        serials = [row[0] for row in connection.execute(text("SELECT serial_number FROM cards"))]
        token = connection.execute(
            text("SELECT auth_token FROM cards WHERE id = :id"), {"id": card_id}
        ).scalar_one()
    db.dispose()
    return serials, token


def change_all(url: str) -> None:
    """Every card changes (one campaign-sized UPDATE) and no pass is stored for the new tags."""
    db = Database(url)
    with db.engine.begin() as connection:
        connection.execute(text(
            "UPDATE cards SET update_tag = pg_current_xact_id()::text::bigint, "
            "updated_at = now()"
        ))  # fmt: skip
        connection.execute(text("DELETE FROM pass_packages"))
    db.dispose()


def presign_all(url: str, settings_env: dict[str, str]) -> tuple[int, float]:
    """Sign and store every card's pass as the worker does; (count, seconds)."""
    from walletd.config import Settings

    settings = Settings.from_env({**os.environ, **settings_env}).finalise()
    passes = apple_passes(settings)
    db = Database(url)
    ctx = Context(now=utcnow(), secret_key=SECRET)
    with db.engine.connect() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT id FROM cards ORDER BY id"))]
    start, signed = time.perf_counter(), 0
    for i in range(0, len(ids), 500):
        with db.transaction() as session:
            signed += serving.presign_passes(
                session, ids[i : i + 500], ctx, passes=passes,
                base_url=settings.base_url, secret_key=SECRET,
            )  # fmt: skip
    db.dispose()
    return signed, time.perf_counter() - start


def main() -> None:
    """Seed, measure raw RSA, then both modes under each server."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cards", type=int, default=20000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--server", nargs="+", default=["gunicorn"], choices=["gunicorn", "granian"]
    )
    parser.add_argument(
        "--modes", nargs="+", default=["on_demand", "presigned"], choices=["on_demand", "presigned"]
    )
    parser.add_argument("--sweep", action="store_true", help="several process models in a row")
    args = parser.parse_args()
    configs = [(args.workers, args.threads)]
    if args.sweep:
        configs = [(2, 1), (2, 2), (2, 4), (4, 4)]
    print(f"machine: {machine()}")
    print(f"command: python bench/storm.py {' '.join(sys.argv[1:])}")
    rsa_rate = raw_rsa_rate()
    print(json.dumps({"raw_rsa_2048_signs_per_s_one_core": round(rsa_rate)}))
    certs = ensure_dev_certs(Path("certs/dev"))
    cert_env = {
        "WALLETD_APPLE_CERT": str(certs.cert_path),
        "WALLETD_APPLE_KEY": str(certs.key_path),
        "WALLETD_APPLE_WWDR": str(certs.wwdr_path),
    }
    with private_database(os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)) as url:
        serials, token = seed(url, args.cards)
        ptid = certs.pass_type_id
        script = FETCH_SCRIPT % {
            "serials": ", ".join(f'"{s}"' for s in serials), "ptid": ptid, "token": token
        }  # fmt: skip
        for server in args.server:
            env = {**cert_env, "WALLETD_SECRET_KEY": SECRET}
            for mode in args.modes:
                change_all(url)
                presign = None
                if mode == "presigned":
                    signed, took = presign_all(url, {**env, "WALLETD_DATABASE_URL": url})
                    presign = {"signed": signed, "seconds": round(took, 1),
                               "per_s": round(signed / took)}  # fmt: skip
                for workers, threads in configs:
                    with gunicorn(url, workers=workers, threads=threads, server=server,
                                  env=env) as base:  # fmt: skip
                        # Warm processes (imports, pooled connections), not passes.
                        wrk(f"{base}/healthz", connections=args.connections, seconds=2)
                        result = wrk(base, connections=args.connections, seconds=args.seconds,
                                     script=script)  # fmt: skip
                    fetched = result["requests"]
                    print(json.dumps({
                        "server": server, "workers": workers, "threads": threads, "mode": mode,
                        "served_per_s": round(result["rps"]),
                        "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
                        "non_2xx": result["non_2xx"], "requests": fetched,
                        "distinct_cards": len(serials), "worker_presign": presign,
                        "ratio_to_raw_rsa_one_core": round(result["rps"] / rsa_rate, 2),
                    }))  # fmt: skip
                    if fetched > len(serials):
                        print("  (more requests than cards: later fetches were of stored passes)")


if __name__ == "__main__":
    main()
