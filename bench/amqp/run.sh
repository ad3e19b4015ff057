#!/usr/bin/env bash
# bench/amqp/run.sh: Ferry's AMQP 0-9-1 front end side by side with
# RabbitMQ (quorum and classic queues) in one run, through bench/compare.sh
# and its workloads: confirmed publish of 1 KiB and 128 B with 1 and 4
# producers (256 confirms in flight), drain with manual acks and prefetch
# 1,000, end-to-end latency at a fixed rate.
#
# Until the ferry binary exists, Ferry is served by the AMQP package's
# test binary (TestServeForBenchmark: a single-node broker on a temporary
# directory behind the front end on 127.0.0.1), started and stopped here by
# its PID.
#
# Usage: bench/amqp/run.sh [compare.sh options, e.g. --quick]
# The figures are written to a copy of docs/benchmarks.md whose path is
# printed at the end; the AMQP section of docs/benchmarks.md quotes them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-amqp-bench.XXXXXX")
PORT=${FERRY_AMQP_BENCH_PORT:-15672}
FERRY=""

cleanup() {
	local rc=$?
	if [[ -n "$FERRY" ]] && kill -0 "$FERRY" 2>/dev/null; then
		kill -TERM "$FERRY" 2>/dev/null || true
		wait "$FERRY" 2>/dev/null || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$ROOT"
go test -c -o "$WORK/amqp.test" ./internal/proto/amqp
FERRY_AMQP_BENCH_ADDR="127.0.0.1:$PORT" FERRY_BENCH_DIR="${FERRY_BENCH_DIR:-$WORK}" \
	"$WORK/amqp.test" -test.run '^TestServeForBenchmark$' -test.v -test.timeout 0 >"$WORK/ferry.log" 2>&1 &
FERRY=$!
for ((i = 0; i < 600; i++)); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
		break
	fi
	kill -0 "$FERRY" 2>/dev/null || { cat "$WORK/ferry.log" >&2; exit 1; }
	sleep 0.1 # polling the port until the server listens
done
cp docs/benchmarks.md "$WORK/benchmarks.md"
bench/compare.sh --only rabbitmq,ferry --ferry-amqp "127.0.0.1:$PORT" --ferry-pid "$FERRY" \
	--doc "$WORK/benchmarks.md" "$@"
echo "figures: $WORK/benchmarks.md (Ferry's log: $WORK/ferry.log)"
