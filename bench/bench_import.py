"""A member import of a generated CSV, read by the API route and applied by a real worker process.

Usage: python bench/bench_import.py [--rows 100000]

Creates a brand on a private Postgres database, generates --rows members as CSV (external id,
name, e-mail, phone, birthday, consent, opening points, tier for one row in ten), posts it to
`POST /api/v1/members/imports` through the app (in this process, Flask's test client: the
figure is the route's reading and storing, not HTTP), then starts `flask --app walletd worker`
and polls the job until it is done. Reports the upload time, rows/s of the job, the total time,
the peak RSS (VmHWM) of this process (app, file and parse) and of the worker, the worker's CPU
per row, and checks the result: one member and one card per row, one opening entry per member
with points, every balance equal to its ledger. Then posts the same file again (a re-run) and
reports how long finding 100,000 unchanged members takes.
Needs Postgres on 127.0.0.1:5432 (or BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The repository instead of bench/ itself, whose google.py would shadow the google package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from sqlalchemy import text  # noqa: E402

from bench.campaign import cpu_seconds, peak_rss_mb  # noqa: E402
from bench.common import DEFAULT_PG, ROOT, SECRET, machine, private_database, worker_env  # noqa: E402
from walletd import create_app  # noqa: E402
from walletd.config import Settings  # noqa: E402
from walletd.db import Database  # noqa: E402
from walletd.loyalty.brands import create_brand  # noqa: E402
from walletd.loyalty.ledger import verify_ledger  # noqa: E402
from walletd.passes.certs import write_dev_certs  # noqa: E402
from walletd.schema import upgrade  # noqa: E402

HEADER = "external_id,name,email,phone,birthday,marketing_consent,points,tier\n"


def generate_csv(rows: int) -> bytes:
    """`rows` distinct members; every tenth names a tier, every fifth has no opening points."""
    lines = [HEADER]
    for n in range(1, rows + 1):
        tier = "Gold" if n % 10 == 0 else ""
        points = 0 if n % 5 == 0 else n % 997
        lines.append(
            f"LEG-{n:07d},Member {n},member{n}@example.com,+8869{n:08d},"
            f"19{60 + n % 40}-{1 + n % 12:02d}-{1 + n % 28:02d},{'yes' if n % 2 else 'no'},"
            f"{points},{tier}\n"
        )
    return "".join(lines).encode()


def seed_brand(url: str) -> tuple[int, str]:
    """A brand with the default program; returns (brand id, admin key)."""
    db = Database(url)
    with db.transaction() as session:
        creds = create_brand(session, "Import Coffee", now=datetime.now(UTC))
    db.dispose()
    return creds.brand_id, creds.admin_key


def post(url: str, workdir: Path, key: str, data: bytes) -> tuple[dict[str, Any], float]:
    """POST the file through the route; returns the answer and its seconds."""
    certs = write_dev_certs(workdir / "certs")
    settings = Settings(
        database_url=url, base_url="http://walletd.bench", secret_key=SECRET, env="test",
        instance_path=workdir / "instance", apple_cert=certs.cert_path,
        apple_key=certs.key_path, apple_wwdr=certs.wwdr_path,
    )  # fmt: skip
    app = create_app(settings)
    client = app.test_client()
    started = time.perf_counter()
    response = client.post(
        "/api/v1/members/imports", data=data,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert response.status_code == 202, response.get_data(as_text=True)[:500]
    app.extensions["walletd"].close()
    return response.get_json(), seconds


def run_job(url: str, job_id: int, workdir: Path) -> dict[str, Any]:
    """Start one worker and wait until the job is done."""
    env = worker_env(url, workdir)
    db = Database(url)
    log = (workdir / "worker.log").open("wb")
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "walletd", "worker"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    query = text("SELECT status, processed, total FROM member_imports WHERE id = :i")
    first: float | None = None
    try:
        while True:
            time.sleep(0.5)
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}; see {log.name}")
            with db.transaction() as session:
                status, processed, total = session.execute(query, {"i": job_id}).one()
            if processed and first is None:
                first = time.perf_counter()
            if status in ("done", "failed"):
                break
        finished = time.perf_counter()
        peak = peak_rss_mb(worker.pid)
        cpu = cpu_seconds(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        log.close()
    with db.transaction() as session:
        job = session.execute(
            text(
                "SELECT status, created, updated, unchanged, skipped FROM member_imports"
                " WHERE id = :i"
            ),
            {"i": job_id},
        ).one()
        members, cards, openings = (
            session.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("members", "cards", "ledger_entries WHERE kind = 'opening'")
        )
        mismatches = len(verify_ledger(session))
    db.dispose()
    assert job.status == "done", job
    return {
        "status": job.status,
        "created": job.created,
        "updated": job.updated,
        "unchanged": job.unchanged,
        "skipped": job.skipped,
        "members": members,
        "cards": cards,
        "opening_entries": openings,
        "ledger_mismatches": mismatches,
        "job_seconds": round(finished - started, 1),
        "rows_per_s": round(int(total) / max(finished - started, 1e-9), 1),
        "worker_peak_rss_mb": round(peak, 1),
        "worker_cpu_ms_per_row": round(cpu / max(int(total), 1) * 1000, 3),
    }


def main() -> None:
    """Seed, upload, import, re-run; print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()}")
    print(f"command: python bench/bench_import.py {' '.join(sys.argv[1:])}", flush=True)
    base = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    with tempfile.TemporaryDirectory(prefix="walletd-import-bench-") as tmp:
        with private_database(base) as url:
            upgrade(url)
            _, key = seed_brand(url)
            data = generate_csv(args.rows)
            print(json.dumps({"rows": args.rows, "file_mb": round(len(data) / 2**20, 2)}))
            begun = time.perf_counter()
            job, upload_s = post(url, Path(tmp), key, data)
            print(json.dumps({"upload_s": round(upload_s, 1), "status": job["status"],
                              "upload_process_peak_rss_mb": round(peak_rss_mb(os.getpid()), 1)}),
                  flush=True)  # fmt: skip
            result = run_job(url, int(job["id"]), Path(tmp))
            result["total_s"] = round(time.perf_counter() - begun, 1)
            print(json.dumps({"import": result}), flush=True)
            again, again_s = post(url, Path(tmp), key, data)
            rerun = run_job(url, int(again["id"]), Path(tmp))
            print(json.dumps({"rerun": {"upload_s": round(again_s, 1), **rerun}}), flush=True)


if __name__ == "__main__":
    main()
