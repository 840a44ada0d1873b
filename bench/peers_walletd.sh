#!/usr/bin/env bash
# A copy of ../shared/bench/peers/bench_walletd.sh (read-only there) that also counts granian
# processes as the server (--server-match), so a run under granian is not flagged as contended.
# The walletd side of P6: the landed walletd under its own gunicorn.conf.py on the local Postgres,
# N passes each with one registered device, then the same webservice_load.py and probe as the peer.
#
#   bench_walletd.sh [--repo DIR] [--passes N] [--duration S] [--repeat N] [--scenarios abcd] [--no-seed]
#
# Results: $PEERS_ROOT/results/walletd-<UTC>.jsonl and .probe.txt. The server is stopped at the end.
# --repo defaults to the git checkout you run it from; the tree benchmarked is its committed HEAD.
# Run it right after bench_django_walletpass.sh (same sitting), then compare_results.py both files.
set -euo pipefail
HERE=${PEERS_HARNESS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../shared/bench/peers" && pwd)}
ROOT=${PEERS_ROOT:-$(python3 -c "import tempfile; print(tempfile.gettempdir())")/walletd-peers}
REPO=$(git rev-parse --show-toplevel 2>/dev/null || pwd); N=2000; DURATION=20; REPEAT=3; SCEN=abcd; SEED=yes; PORT=18810
while [ $# -gt 0 ]; do
  case "$1" in
    --repo) REPO=$2; shift 2 ;;
    --passes) N=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --scenarios) SCEN=$2; shift 2 ;;
    --no-seed) SEED=no; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
W=$ROOT/walletd
mkdir -p "$W" "$ROOT/results"
if [ "$SEED" = yes ]; then
  rm -rf "$W/tree"
  git -C "$REPO" archive --format=tar HEAD | (mkdir -p "$W/tree" && tar -x -C "$W/tree")
  (cd "$W/tree" && make install >/dev/null)
fi
PY=$W/tree/.venv/bin/python
export WALLETD_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/walletd_peer
export WALLETD_BASE_URL=http://127.0.0.1:$PORT WALLETD_SECRET_KEY=peer-bench-secret-key-0123456789abcdef
export WALLETD_WORKER=off PORT
cd "$W/tree"
if [ "$SEED" = yes ]; then
  psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS walletd_peer" -c "CREATE DATABASE walletd_peer"
  "$PY" -m flask --app walletd dev-certs --if-missing >/dev/null
  "$PY" -m flask --app walletd init-db >/dev/null
  "$PY" -m flask --app walletd create-brand "Peer Coffee" --json | tail -1 > "$W/brand.json"
fi
# The project's own serving command: WALLETD_SERVE_CMD (run from the tree, must bind 127.0.0.1:$PORT),
# by default gunicorn with the project's gunicorn.conf.py.
SERVE=${WALLETD_SERVE_CMD:-"$W/tree/.venv/bin/gunicorn wsgi:app --bind 127.0.0.1:$PORT"}
setsid bash -c "exec $SERVE" >"$W/web.log" 2>&1 &
SERVER_PID=$!
trap 'kill -- -"$SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 1; done
if [ "$SEED" = yes ]; then
  "$PY" "$HERE/seed_walletd.py" --base "http://127.0.0.1:$PORT" --brand "$W/brand.json" --passes "$N" --out "$W/passes.json"
fi
PTID=$(python3 -c "import json;print(json.load(open('$W/passes.json'))[0]['ptid'])")
reset() {
  psql -q -h 127.0.0.1 -U postgres -d walletd_peer -c "DELETE FROM devices WHERE library_id NOT LIKE 'seed%'" \
    -c "VACUUM ANALYZE" >/dev/null
}
reset
TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/results/walletd-$TS.jsonl
REV=$(git -C "$REPO" rev-parse --short HEAD)
python3 "$HERE/webservice_load.py" --url "http://127.0.0.1:$PORT/passes/" --ptid "$PTID" --passes "$W/passes.json" \
  --scenarios "$SCEN" --duration "$DURATION" --warmup 2 --concurrency 16 --repeat "$REPEAT" \
  --server-match "${PEER_SERVER_MATCH:-gunicorn|granian|postgres}" --wait-quiet "${PEER_WAIT_QUIET:-180}" --retry-contended "${PEER_RETRY_CONTENDED:-3}" \
  --label "walletd $REV, its gunicorn.conf.py, postgres 5432, $N passes" --out "$OUT"
python3 "$HERE/webservice_probe.py" --url "http://127.0.0.1:$PORT/passes/" --ptid "$PTID" --passes "$W/passes.json" \
  | tee "${OUT%.jsonl}.probe.txt" || true
reset
echo "results: $OUT"
