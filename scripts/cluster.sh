#!/usr/bin/env bash
# Past one process on one machine: a bridge, N partition workers and M API-only nodes.
#   scripts/cluster.sh [N workers, default 2] [M API nodes, default 2]
# Uses the configured PostgreSQL, MQTT broker and RabbitMQ (ELDERCARE_DATABASE_URL,
# ELDERCARE_BROKER_URL, ELDERCARE_AMQP_URL; defaults: the local ones).  API node i
# listens on port ELDERCARE_API_PORT+i (8000, 8001, ...).  Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2}
M=${2:-2}
export ELDERCARE_DATABASE_URL=${ELDERCARE_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/eldercare}
export ELDERCARE_BROKER_URL=${ELDERCARE_BROKER_URL:-mqtt://127.0.0.1:1883}
export ELDERCARE_PARTITIONS=${ELDERCARE_PARTITIONS:-12}
BASE_PORT=${ELDERCARE_API_PORT:-8000}
BIN=.venv/bin/eldercare
mkdir -p .eldercare/logs

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait; }
trap cleanup EXIT INT TERM

"$BIN" migrate
for ((i = 0; i < N; i++)); do
  # Home partitions round robin; every worker also stands by for the others' partitions.
  home=$(seq -s, "$i" "$N" $((ELDERCARE_PARTITIONS - 1)))
  "$BIN" worker --partitions "$home" --name "worker-$i" >".eldercare/logs/worker-$i.log" 2>&1 &
  pids+=($!)
done
"$BIN" bridge >.eldercare/logs/bridge.log 2>&1 &
pids+=($!)
for ((i = 0; i < M; i++)); do
  ELDERCARE_API_PORT=$((BASE_PORT + i)) "$BIN" serve --no-ingest >".eldercare/logs/api-$i.log" 2>&1 &
  pids+=($!)
  echo "API node $i: http://127.0.0.1:$((BASE_PORT + i))/"
done
echo "$N workers, 1 bridge, $M API nodes running (logs in .eldercare/logs); Ctrl-C to stop"
wait
