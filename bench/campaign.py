"""A campaign to every card of a big brand, pushed to the APNs fake by a real worker process.

Usage: python bench/campaign.py [--members 100000] [--segment-members 1000000]
                                [--ceiling-requests 50000] [--workers 1] [--skip-segments]
                                [--fetch 16]

Measures, in one run on one machine:
  1. the ceiling: requests/s a bare HTTP/2 client (raw h2 over several TLS connections, many
     concurrent streams each) gets from the APNs fake, which runs as its own process;
  2. a campaign to --members cards, each with a registered device of its own, sent by
     `flask --app walletd worker`: pushes/s (from the fake's counters), time to finish and the
     worker's peak RSS (VmHWM), and the ratio of its push rate to the ceiling;
  3. segment counts over --segment-members members on Postgres.
With --fetch N, each device fetches its new pass from a web server (granian, walletd serve's
process model) as its push arrives, N at a time: the time until every device holds its new pass,
end to end. The devices are a Python process on the same cores (phones cost the server nothing).
Needs Postgres on 127.0.0.1:5432 (or BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import http.client
import json
import multiprocessing
import os
import queue
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: its google.py shadows google

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_PG,
    ROOT,
    SECRET,
    gunicorn,
    machine,
    private_database,
)
from walletd.campaigns.segments import count_segment, parse_segment  # noqa: E402
from walletd.campaigns.service import create_campaign  # noqa: E402
from walletd.db import Database  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.context import Context  # noqa: E402
from walletd.passes.certs import DevCertPaths, write_dev_certs  # noqa: E402
from walletd.schema import upgrade  # noqa: E402

# --- the APNs fake as its own process -----------------------------------------------------------


@dataclass(frozen=True)
class Fake:
    """The running fake: where it listens and how to trust it."""

    url: str
    port: int
    ca_file: Path
    process: subprocess.Popen[bytes]


@contextmanager
def apns_fake(workdir: Path, certs: DevCertPaths, record: int = 0) -> Iterator[Fake]:
    """`python -m tests.fakes.apns_server`, demanding the pass certificate like APNs does;
    keeping the last `record` requests (for /_fake/tokens) when asked."""
    bundle = workdir / "client-ca.pem"
    bundle.write_bytes(certs.ca_path.read_bytes() + certs.wwdr_path.read_bytes())
    ca_out = workdir / "apns-ca.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.apns_server", "--port", "0", "--ca-out", str(ca_out),
         "--require-client-ca", str(bundle), "--until-stdin-closes",
         "--max-recorded", str(record)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    ready = json.loads(process.stdout.readline())
    try:
        yield Fake(ready["url"], int(ready["port"]), ca_out, process)
    finally:
        process.stdin.close()
        process.terminate()
        process.wait(timeout=30)


def client_context(fake: Fake, certs: DevCertPaths) -> ssl.SSLContext:
    """TLS that trusts the fake and presents the pass certificate, offering only h2."""
    context = ssl.create_default_context(cafile=str(fake.ca_file))
    context.load_cert_chain(str(certs.cert_path), str(certs.key_path))
    context.set_alpn_protocols(["h2"])
    return context


def fake_stats(fake: Fake, certs: DevCertPaths) -> dict[str, Any]:
    """The fake's counters (GET /_fake/stats over h2)."""
    with httpx.Client(http1=False, http2=True, verify=client_context(fake, certs)) as http:
        data: dict[str, Any] = http.get(f"{fake.url}/_fake/stats").json()
    return data


# --- the devices: each fetches its new pass when its push arrives ------------------------------


def _device_fetches(
    web: str, fake: Fake, certs: DevCertPaths, members: int, connections: int, out: Any
) -> None:
    """In its own process: poll the fake for pushed tokens and, on `connections` keep-alive
    connections, fetch each token's pass as Wallet does after a push (the seeded token, serial and
    authentication token all derive from the member id). Puts (finish times, latencies in ms,
    statuses) on `out` when every device holds its pass or after 15 minutes."""
    ptid = certs.pass_type_id
    work: queue.Queue[str | None] = queue.Queue()
    done_at: list[float] = []
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + 900

    def poll() -> None:
        after, seen = -1, 0  # from now: not the ceiling's pushes before the campaign
        with httpx.Client(http1=False, http2=True, verify=client_context(fake, certs)) as http:
            while seen < members and time.monotonic() < deadline:
                data = http.get(f"{fake.url}/_fake/tokens?after={after}").json()
                after = data["next"]
                for token in data["tokens"]:
                    work.put(token)
                seen += len(data["tokens"])
                if not data["tokens"]:
                    time.sleep(0.05)
        for _ in range(connections):
            work.put(None)

    def device() -> None:
        host, port = web.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        while (token := work.get()) is not None:
            member = int(token, 16)
            auth = hashlib.md5(str(member).encode()).hexdigest()  # noqa: S324 - the seed's
            began = time.perf_counter()
            connection.request("GET", f"/passes/v1/passes/{ptid}/S{member}",
                               headers={"Authorization": f"ApplePass {auth}"})  # fmt: skip
            response = connection.getresponse()
            response.read()
            ended = time.perf_counter()
            with lock:
                latencies.append((ended - began) * 1000)
                statuses[response.status] += 1
                done_at.append(time.time())

    threads = [threading.Thread(target=poll)] + [
        threading.Thread(target=device) for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((done_at, latencies, dict(statuses)))


@contextmanager
def devices(
    url: str, fake: Fake, certs: DevCertPaths, members: int, connections: int
) -> Iterator[Callable[[], dict[str, Any]]]:
    """A web server (granian, one worker per core, two threads: walletd serve's default) and
    the devices fetching from it; yields a function that waits for them and sums them up."""
    cert_env = {
        "WALLETD_APPLE_CERT": str(certs.cert_path),
        "WALLETD_APPLE_KEY": str(certs.key_path),
        "WALLETD_APPLE_WWDR": str(certs.wwdr_path),
    }
    cores = os.cpu_count() or 2
    with gunicorn(url, workers=cores, threads=2, server="granian", env=cert_env) as web:
        out: Any = multiprocessing.Queue()
        process = multiprocessing.Process(
            target=_device_fetches, args=(web, fake, certs, members, connections, out)
        )
        process.start()

        def finish() -> dict[str, Any]:
            done_at, latencies, statuses = out.get(timeout=960)
            process.join()
            latencies.sort()
            return {
                "fetches": len(latencies),
                "statuses": statuses,
                "last_fetch_at": max(done_at) if done_at else None,
                "fetch_p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
                "fetch_p99_ms": round(latencies[int(len(latencies) * 0.99)], 1)
                if latencies else None,
            }  # fmt: skip

        try:
            yield finish
        finally:
            if process.is_alive():
                process.terminate()


# --- the ceiling: a bare h2 client --------------------------------------------------------------


async def _h2_lane(
    fake: Fake, context: ssl.SSLContext, topic: str, quota: int, streams: int, first: int
) -> int:
    """One TLS connection keeping up to `streams` pushes open until `quota` are answered."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", fake.port, ssl=context, server_hostname="localhost"
    )
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    conn.initiate_connection()
    writer.write(conn.data_to_send())
    authority = f"127.0.0.1:{fake.port}"
    sent = answered = ok = 0
    open_streams: set[int] = set()
    while answered < quota:
        limit = min(streams, conn.remote_settings.max_concurrent_streams)
        while len(open_streams) < limit and sent < quota:
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(
                stream_id,
                [(":method", "POST"), (":scheme", "https"), (":authority", authority),
                 (":path", f"/3/device/{first + sent:064x}"), ("apns-topic", topic),
                 ("content-length", "2")],
            )  # fmt: skip
            conn.send_data(stream_id, b"{}", end_stream=True)
            open_streams.add(stream_id)
            sent += 1
        writer.write(conn.data_to_send())
        data = await reader.read(1 << 16)
        if not data:
            raise RuntimeError("the fake closed the connection")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                # header_encoding makes these text, whatever h2's annotations say.
                headers = cast(list[tuple[str, str]], event.headers or [])
                ok += (":status", "200") in headers
            elif isinstance(event, h2.events.DataReceived) and event.stream_id:
                conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in open_streams:
                open_streams.discard(event.stream_id)
                answered += 1
        writer.write(conn.data_to_send())
    writer.close()
    await writer.wait_closed()
    return ok


def bare_h2_rate(
    fake: Fake, certs: DevCertPaths, topic: str, *, requests: int, connections: int, streams: int
) -> dict[str, Any]:
    """Requests/s of the bare client: `connections` lanes sharing `requests` pushes."""
    context = client_context(fake, certs)
    quota = requests // connections

    async def run() -> int:
        lanes = [
            _h2_lane(fake, context, topic, quota, streams, first=10**9 + i * quota)
            for i in range(connections)
        ]
        return sum(await asyncio.gather(*lanes))

    started, cpu, fake_cpu = time.perf_counter(), time.process_time(), cpu_seconds(fake.process.pid)
    ok = asyncio.run(run())
    seconds = time.perf_counter() - started
    total = quota * connections
    return {"connections": connections, "streams": streams, "requests": total, "ok": ok,
            "seconds": round(seconds, 2), "rps": round(total / seconds, 1),
            "client_cpu_ms_per_request": round((time.process_time() - cpu) / total * 1000, 3),
            "fake_cpu_ms_per_request":
                round((cpu_seconds(fake.process.pid) - fake_cpu) / total * 1000, 3)}  # fmt: skip


# --- seeding ------------------------------------------------------------------------------------


def seed_campaign_brand(url: str, members: int, pass_type_id: str) -> tuple[int, int]:
    """A brand whose `members` consenting members each have a card on a device of their own."""
    db = Database(url)
    now = datetime.now(UTC)
    with db.transaction() as session:
        creds = create_brand(session, "Bench Coffee", now=now)
        params = {"brand": creds.brand_id, "program": creds.program_id, "n": members,
                  "now": now, "ptid": pass_type_id}  # fmt: skip
        for statement in (
            """INSERT INTO members (brand_id, program_id, name, marketing_consent, referral_code,
                   points, lifetime_spend_minor, visits, created_at)
               SELECT :brand, :program, 'Member ' || g, true, 'C' || lpad(g::text, 15, '0'),
                   50, 0, 0, :now
               FROM generate_series(1, :n) AS g""",
            """INSERT INTO cards (brand_id, member_id, serial_number, auth_token, barcode,
                   update_tag, updated_at, created_at)
               SELECT brand_id, id, 'S' || id, md5(id::text), 'B' || id, 0, :now, :now
               FROM members WHERE brand_id = :brand""",
            """INSERT INTO devices (library_id, created_at, updated_at)
               SELECT 'lib' || id, :now, :now
               FROM members WHERE brand_id = :brand""",
            """INSERT INTO registrations (device_id, card_id, pass_type_id, push_token,
                   created_at, updated_at)
               SELECT d.id, c.id, :ptid, lpad(to_hex(c.member_id), 64, '0'), :now, :now
               FROM cards c JOIN devices d ON d.library_id = 'lib' || c.member_id
               WHERE c.brand_id = :brand""",
            # The wall clock decides quiet hours; a benchmark must run at any hour.
            """UPDATE programs SET quiet_start_minute = NULL, quiet_end_minute = NULL
               WHERE brand_id = :brand""",
        ):
            session.execute(text(statement), params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    db.dispose()
    return creds.brand_id, creds.program_id


def seed_segment_brand(url: str, members: int) -> int:
    """A brand with `members` members of varied history, a third of them with Apple Wallet."""
    db = Database(url)
    now = datetime.now(UTC)
    with db.transaction() as session:
        creds = create_brand(session, "Segment Coffee", now=now)
        params = {"brand": creds.brand_id, "program": creds.program_id, "n": members, "now": now}
        for statement in (
            """INSERT INTO members (brand_id, program_id, name, marketing_consent, referral_code,
                   birthday, tier_id, points, lifetime_spend_minor, visits, first_visit_at,
                   last_visit_at, created_at)
               SELECT :brand, :program, 'Member ' || g, g % 3 <> 0, 'S' || lpad(g::text, 15, '0'),
                   date '1970-01-01' + (g::bigint * 7919 % 18000)::int,
                   (SELECT id FROM tiers WHERE program_id = :program ORDER BY threshold
                    OFFSET (CASE WHEN g % 50 = 0 THEN 2 WHEN g % 7 = 0 THEN 1 ELSE 0 END) LIMIT 1),
                   g * 37 % 3000, g * 53 % 400000, g % 12,
                   CASE WHEN g % 12 > 0 THEN :now - make_interval(days => 200 + g % 300) END,
                   CASE WHEN g % 12 > 0 THEN :now - make_interval(days => g % 400) END,
                   :now - make_interval(days => 200 + g % 700)
               FROM generate_series(1, :n) AS g""",
            """INSERT INTO cards (brand_id, member_id, serial_number, auth_token, barcode,
                   update_tag, updated_at, created_at)
               SELECT brand_id, id, 'T' || id, md5(id::text), 'D' || id, 0, :now, :now
               FROM members WHERE brand_id = :brand""",
            """INSERT INTO devices (library_id, created_at, updated_at)
               SELECT 'seg' || id, :now, :now
               FROM members WHERE brand_id = :brand AND id % 3 = 0""",
            """INSERT INTO registrations (device_id, card_id, pass_type_id, push_token,
                   created_at, updated_at)
               SELECT d.id, c.id, 'pass.bench', lpad(to_hex(c.member_id), 64, '0'), :now, :now
               FROM cards c JOIN devices d ON d.library_id = 'seg' || c.member_id
               WHERE c.brand_id = :brand""",
            """INSERT INTO ledger_entries (brand_id, member_id, kind, points, amount_minor,
                   currency, remaining, created_at)
               SELECT :brand, id, 'earn', 10, 1000 + id % 5000, 'USD', 0,
                   :now - make_interval(days => id % 500)
               FROM members WHERE brand_id = :brand AND visits > 0""",
        ):
            session.execute(text(statement), params)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    db.dispose()
    return creds.brand_id


# --- the campaign under a real worker -----------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process (its peak resident set), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_campaign(
    url: str,
    brand_id: int,
    fake: Fake,
    certs: DevCertPaths,
    members: int,
    workdir: Path,
    workers: int = 1,
    fetch_connections: int = 0,
) -> dict[str, Any]:
    """Create a campaign to everyone, start the workers (the first with the scheduler, the rest
    `--no-scheduler` delivery workers, as README suggests), wait until every push is answered.

    With `fetch_connections`, devices fetch their passes from a web server as pushes arrive, and
    the figures say when the last device held its new pass."""
    if fetch_connections:
        with devices(url, fake, certs, members, fetch_connections) as finish:
            result = run_campaign(url, brand_id, fake, certs, members, workdir, workers)
            fetched = finish()
        last = fetched.pop("last_fetch_at")
        result["devices"] = {
            **fetched,
            "all_devices_updated_s": round(last - result.pop("started_at"), 1) if last else None,
        }
        return result
    db = Database(url)
    ctx = Context(now=datetime.now(UTC), secret_key=SECRET)
    with db.transaction() as session:
        body = {
            "name": "Bench",
            "message": "Double points all weekend",
            "segment": {"preset": "all"},
        }
        campaign_id = create_campaign(session, brand_id, body, ctx).id
    before = fake_stats(fake, certs)["requests"]
    fake_cpu = cpu_seconds(fake.process.pid)
    env = {
        **os.environ,
        "WALLETD_DATABASE_URL": url,
        "WALLETD_SECRET_KEY": SECRET,
        "WALLETD_INSTANCE_PATH": str(workdir / "instance"),
        "WALLETD_APNS_URL": fake.url,
        "WALLETD_APNS_CA_FILE": str(fake.ca_file),
        "WALLETD_APPLE_CERT": str(certs.cert_path),
        "WALLETD_APPLE_KEY": str(certs.key_path),
        "WALLETD_APPLE_WWDR": str(certs.wwdr_path),
    }
    log = (workdir / "worker.log").open("wb")
    started, started_at = time.perf_counter(), time.time()
    command = [sys.executable, "-m", "flask", "--app", "walletd", "worker"]
    processes = [
        subprocess.Popen(
            command + (["--no-scheduler"] if i else []),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for i in range(workers)
    ]
    samples: list[tuple[float, int]] = []
    first_push: float | None = None
    try:
        while True:
            time.sleep(0.5)
            for worker in processes:
                if worker.poll() is not None:
                    raise RuntimeError(f"a worker exited with {worker.returncode}; see {log.name}")
            pushed = fake_stats(fake, certs)["requests"] - before
            now = time.perf_counter()
            samples.append((now, pushed))
            if pushed and first_push is None:
                first_push = now
            if pushed >= members:
                break
        with db.transaction() as session:
            unfinished = session.scalar(
                text("SELECT count(*) FROM outbox WHERE campaign_id = :c AND status <> 'sent'"),
                {"c": campaign_id},
            )
            status = session.scalar(
                text("SELECT status FROM campaigns WHERE id = :c"), {"c": campaign_id}
            )
            while unfinished or status != "sent":
                time.sleep(0.1)
                unfinished = session.scalar(
                    text("SELECT count(*) FROM outbox WHERE campaign_id = :c "
                         "AND status <> 'sent'"), {"c": campaign_id},
                )  # fmt: skip
                status = session.scalar(
                    text("SELECT status FROM campaigns WHERE id = :c"), {"c": campaign_id}
                )
                session.commit()
        finished = time.perf_counter()
        peak = max(peak_rss_mb(worker.pid) for worker in processes)
        worker_cpu = sum(cpu_seconds(worker.pid) for worker in processes)
        fake_cpu = cpu_seconds(fake.process.pid) - fake_cpu
    finally:
        for worker in processes:
            worker.send_signal(signal.SIGTERM)
        for worker in processes:
            worker.wait(timeout=60)
        log.close()
        db.dispose()
    assert first_push is not None
    push_seconds = samples[-1][0] - first_push
    # The steady rate: the best 5-second window (after start-up, before the tail).
    window = [
        (b[1] - a[1]) / (b[0] - a[0])
        for a, b in zip(samples, samples[10:], strict=False)
        if b[0] - a[0] > 0
    ]
    return {
        "members": members,
        "workers": workers,
        "started_at": started_at,
        "time_to_finish_s": round(finished - started, 1),
        "time_to_first_push_s": round(first_push - started, 1),
        "pushes": samples[-1][1],
        "pushes_per_s": round(samples[-1][1] / max(push_seconds, 1e-9), 1),
        "best_5s_pushes_per_s": round(max(window), 1) if window else None,
        "worker_peak_rss_mb": round(peak, 1),  # of the largest worker process
        "worker_cpu_ms_per_push": round(worker_cpu / members * 1000, 3),  # all of them
        "fake_cpu_ms_per_push": round(fake_cpu / members * 1000, 3),
    }


# --- segment counts -----------------------------------------------------------------------------

SEGMENTS: dict[str, Any] = {
    "all": {"preset": "all"},
    "subscribed_only": {"preset": "subscribed_only"},
    "three_or_more": {"preset": "three_or_more"},
    "champions": {"preset": "champions"},
    "loyal": {"preset": "loyal"},
    "at_risk": {"preset": "at_risk"},
    "sleeping": {"preset": "sleeping"},
    "birthday_this_month": {"preset": "birthday_this_month"},
    "tier in Gold, VIP": {"field": "tier", "op": "in", "value": ["Gold", "VIP"]},
    "consent and 3+ visits": {"and": [{"field": "marketing_consent", "op": "eq", "value": True},
                                      {"field": "visits", "op": "gte", "value": 3}]},
    "wallet apple": {"field": "wallet", "op": "eq", "value": "apple"},
    "wallet none": {"field": "wallet", "op": "eq", "value": "none"},
    "spend_12m > 40": {"field": "spend_12m", "op": "gt", "value": "40"},
    "lifetime_spend >= 2000": {"field": "lifetime_spend", "op": "gte", "value": "2000"},
}  # fmt: skip


def time_segments(url: str, brand_id: int, repeat: int = 3) -> dict[str, Any]:
    """count_segment for each segment: the count and the median of `repeat` timings."""
    db = Database(url)
    results: dict[str, Any] = {}
    try:
        for name, definition in SEGMENTS.items():
            segment = parse_segment(definition)
            timings = []
            count = 0
            for _ in range(repeat):
                with db.transaction() as session:
                    started = time.perf_counter()
                    count = count_segment(session, brand_id, segment, datetime.now(UTC))
                    timings.append(time.perf_counter() - started)
            results[name] = {"count": count, "median_s": round(statistics.median(timings), 3),
                             "max_s": round(max(timings), 3)}  # fmt: skip
    finally:
        db.dispose()
    return results


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    """Seed, measure the ceiling, run the campaign, count segments, print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--segment-members", type=int, default=1_000_000)
    parser.add_argument("--ceiling-requests", type=int, default=50_000)
    parser.add_argument(
        "--ceiling",
        default="2x100,4x250,8x250",
        help="bare-client shapes to try, CONNECTIONSxSTREAMS, comma-separated; the best counts",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the campaign")
    parser.add_argument(
        "--fetch",
        type=int,
        default=0,
        metavar="CONNECTIONS",
        help="devices fetch their passes from a web server as pushes arrive, on this many "
        "connections; reports when the last device held its new pass",
    )
    parser.add_argument("--skip-campaign", action="store_true")
    parser.add_argument("--skip-segments", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()}")
    print(f"command: python bench/campaign.py {' '.join(sys.argv[1:])}", flush=True)
    base = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    with tempfile.TemporaryDirectory(prefix="walletd-campaign-bench-") as tmp:
        workdir = Path(tmp)
        certs = write_dev_certs(workdir / "certs")
        if not args.skip_campaign:
            with private_database(base) as url:
                upgrade(url)
                started = time.perf_counter()
                brand_id, _ = seed_campaign_brand(url, args.members, certs.pass_type_id)
                print(json.dumps({"seeded_members": args.members,
                                  "seconds": round(time.perf_counter() - started, 1)}),
                      flush=True)  # fmt: skip
                with apns_fake(
                    workdir, certs, record=args.members * 2 if args.fetch else 0
                ) as fake:
                    shapes = [tuple(int(x) for x in s.split("x")) for s in args.ceiling.split(",")]
                    bare_h2_rate(fake, certs, certs.pass_type_id, requests=2000, connections=2,
                                 streams=100)  # warm-up  # fmt: skip
                    ceilings = []
                    for connections, streams in shapes:
                        result = bare_h2_rate(
                            fake, certs, certs.pass_type_id, requests=args.ceiling_requests,
                            connections=connections, streams=streams,
                        )  # fmt: skip
                        ceilings.append(result)
                        print(json.dumps({"bare_h2": result}), flush=True)
                    ceiling = max(c["rps"] for c in ceilings)
                    campaign = run_campaign(
                        url, brand_id, fake, certs, args.members, workdir, args.workers,
                        fetch_connections=args.fetch,
                    )  # fmt: skip
                    campaign.pop("started_at", None)
                    campaign["ceiling_rps"] = ceiling
                    campaign["ratio_to_ceiling"] = round(campaign["pushes_per_s"] / ceiling, 3)
                    print(json.dumps({"campaign": campaign}), flush=True)
        if not args.skip_segments:
            with private_database(base) as url:
                upgrade(url)
                started = time.perf_counter()
                brand_id = seed_segment_brand(url, args.segment_members)
                print(json.dumps({"seeded_segment_members": args.segment_members,
                                  "seconds": round(time.perf_counter() - started, 1)}),
                      flush=True)  # fmt: skip
                for name, result in time_segments(url, brand_id).items():
                    print(json.dumps({"segment": name, **result}), flush=True)


if __name__ == "__main__":
    main()
