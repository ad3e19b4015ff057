#!/usr/bin/env bash
# bench/compare.sh: Ferry side by side with RabbitMQ, NATS JetStream and
# Mosquitto, on this machine, in one run; writes the section "Side by side
# with peer brokers" of docs/benchmarks.md.
#
# It builds ./cmd/ferry and installs the peers from Debian when missing,
# starts Ferry and then each peer on loopback with its data in a temporary
# directory (one broker at a time, so they never compete for the two
# cores), runs every workload through bench/driver --runs times, stops every
# process it started by its PID, and renders the medians with bench/report.
# A run that loses a confirmed message is shown as FAILED and makes the
# script exit 1 after writing the document.
#
# Usage: bench/compare.sh [--quick] [--runs N] [--only LIST]
#                         [--ferry-amqp HOST:PORT] [--ferry-mqtt HOST:PORT]
#                         [--ferry-kafka HOST:PORT] [--ferry-pid PID]
#                         [--doc FILE] [--keep] [--pprof]
#                         [--pin BROKER_CPUS:DRIVER_CPUS]
#   --quick       fewer and smaller variants, one run each: under 5 minutes
#   --runs N      runs per figure (default 3; --quick: 1)
#   --only LIST   comma-separated subset of: rabbitmq,nats,mosquitto,ferry
#   --ferry-*     measure an external Ferry at that address instead of
#                 building and starting one (the default)
#   --ferry-pid   the external Ferry's process, for the CPU and memory
#                 workloads
#   --doc FILE    document to update (default docs/benchmarks.md)
#   --keep        keep the temporary directory (logs, results.jsonl)
#   --pprof       build Ferry with -tags ferry_pprof and serve net/http/pprof
#                 on a free loopback port (printed when it starts), for
#                 go tool pprof during the run
#   --pin B:D     run every broker on CPUs B and the load generator on
#                 CPUs D (taskset(1) lists, e.g. 0:1 or 0-3:4-7), so that
#                 the load generator does not take CPU from the broker
#                 under test; each broker gets the same CPUs
# shellcheck disable=SC2317 # 0.9 calls every function unreachable once the last line is "main; exit"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COMMAND="bench/compare.sh $*"
QUICK=0
RUNS=""
ONLY="rabbitmq,nats,mosquitto,ferry"
FERRY_AMQP=""
FERRY_MQTT=""
FERRY_KAFKA=""
FERRY_PID=""
FERRY_KAFKA_ADDR="" # the Kafka listener of the Ferry this script started
DOC="$ROOT/docs/benchmarks.md"
KEEP=0
PPROF=0
PIN=""
BROKER_CPUS=() # taskset prefix of every broker process (--pin)
DRIVER_CPUS=() # and of every driver run

while [[ $# -gt 0 ]]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--runs) RUNS="$2"; shift ;;
	--only) ONLY="$2"; shift ;;
	--ferry-amqp) FERRY_AMQP="$2"; shift ;;
	--ferry-mqtt) FERRY_MQTT="$2"; shift ;;
	--ferry-kafka) FERRY_KAFKA="$2"; shift ;;
	--ferry-pid) FERRY_PID="$2"; shift ;;
	--doc) DOC="$2"; shift ;;
	--keep) KEEP=1 ;;
	--pprof) PPROF=1 ;;
	--pin) PIN="$2"; shift ;;
	-h | --help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
if [[ -z "$RUNS" ]]; then
	RUNS=$((QUICK ? 1 : 3))
fi
if [[ -n "$PIN" ]]; then
	if [[ $PIN != *:* ]] || ! taskset -c "${PIN%%:*}" true || ! taskset -c "${PIN#*:}" true; then
		echo "compare.sh: --pin wants BROKER_CPUS:DRIVER_CPUS, two CPU lists taskset accepts (got $PIN)" >&2
		exit 2
	fi
	BROKER_CPUS=(taskset -c "${PIN%%:*}")
	DRIVER_CPUS=(taskset -c "${PIN#*:}")
fi

# Sizes of the variants. Durations are of the measured publish phase.
if ((QUICK)); then
	PUB_SECS=3s LAT_SECS=3s FAN_SECS=3s Q_SECS=5s
	DRAIN_MSGS=100000 MANY_QUEUES=100
	PUB_VARIANTS=("1024 1" "1024 4")
else
	PUB_SECS=10s LAT_SECS=10s FAN_SECS=10s Q_SECS=20s
	DRAIN_MSGS=1000000 MANY_QUEUES=1000
	PUB_VARIANTS=("1024 1" "1024 4" "128 1" "128 4")
fi
DRAIN_SIZE=128
# A run that takes longer than this has hung (a broker stopped answering):
# the driver gives up and the run counts as broken.
# timeout(1) ends a driver that hangs even after its deadline.
RUN_DEADLINE=$((QUICK ? 5 : 15))m
RUN_TIMEOUT=$((QUICK ? 7 : 17))m

# One benchmark at a time on a machine: two would measure each other.
LOCK="${TMPDIR:-/tmp}/ferry-bench.lock"
exec 9>>"$LOCK"
if ! flock -n 9; then
	printf 'compare.sh: another bench/compare.sh holds %s; waiting for it to finish\n' "$LOCK" >&2
	flock 9
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
mkdir -p "$WORK/logs"
BIN="$WORK/bin"
RESULTS="$WORK/results.jsonl"
NOTES="$WORK/notes.txt"
MACHINE="$WORK/machine.txt"
FAILURES=0
STARTED=() # PIDs of every process this script started, in start order
DRIVER=""  # PID of the driver run in progress
PEER_ADDR="" # the broker under test: its address for the driver
PEER_PID=""  # and its process, for CPU time and RSS
PEER_START="" # the function that (re)starts it afresh; empty for an external Ferry
STARTS=0      # processes started so far: numbers their logs
LAST_LOG=""   # the log of the latest one
: >"$RESULTS"
: >"$NOTES"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
note() { printf '%s\n' "$*" >>"$NOTES"; log "note: $*"; }
enabled() { [[ ",$ONLY," == *",$1,"* ]]; }

# stop_pid PID: SIGTERM, wait up to 60 s for it to exit, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1 # polling a process's exit; not a wait for readiness
	done
	log "process $pid ignored SIGTERM for 60 s; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# stop_started: stop every started process still running, newest first,
# then check that none survived.
stop_started() {
	local i pid alive=()
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
		stop_pid "${STARTED[i]}"
	done
	for pid in "${STARTED[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			alive+=("$pid")
		fi
	done
	STARTED=()
	if ((${#alive[@]})); then
		log "ERROR: processes still running after stop: ${alive[*]}"
		return 1
	fi
}

cleanup() {
	local rc=$?
	if [[ -n "$DRIVER" ]]; then
		stop_pid "$DRIVER"
	fi
	stop_started || rc=1
	if ((KEEP)); then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: runs CMD in the background with its output in
# $WORK/logs/NAME-N.log (N counts starts, so a restart keeps the log of the
# process it replaces) and records its PID.
start() {
	local name=$1
	shift
	STARTS=$((STARTS + 1))
	LAST_LOG="$WORK/logs/$name-$STARTS.log"
	"${BROKER_CPUS[@]}" "$@" >"$LAST_LOG" 2>&1 &
	STARTED+=("$!")
	log "started $name (pid $!, log $LAST_LOG)"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port PREFERRED: the preferred port, or the next free one above it.
free_port() {
	local p=$1
	while port_busy "$p"; do
		p=$((p + 1))
	done
	echo "$p"
}

as_root() {
	if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

install_peers() {
	local missing=()
	if enabled rabbitmq && ! compgen -G "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server" >/dev/null; then
		missing+=(rabbitmq-server)
	fi
	if enabled nats && ! command -v nats-server >/dev/null; then missing+=(nats-server); fi
	if enabled mosquitto && ! command -v mosquitto >/dev/null; then missing+=(mosquitto); fi
	if ((${#missing[@]})); then
		log "installing ${missing[*]} from Debian"
		as_root apt-get update -qq
		# policy-rc.d or not, the packages' own services are not wanted:
		# every peer here is started by this script on its own ports.
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	fi
}

# external_ferry: true when --ferry-* named a Ferry this script does not
# start.
external_ferry() { [[ -n "$FERRY_AMQP$FERRY_MQTT$FERRY_KAFKA" ]]; }

build() {
	log "building the driver, physical and report"
	(cd "$ROOT" && go build -o "$BIN/driver" ./bench/driver && go build -o "$BIN/physical" ./bench/physical &&
		go build -o "$BIN/report" ./bench/report)
	if enabled ferry && ! external_ferry; then
		log "building ferry"
		local tags=()
		if ((PPROF)); then tags=(-tags ferry_pprof); fi
		(cd "$ROOT" && go build "${tags[@]}" -o "$BIN/ferry" ./cmd/ferry)
	fi
}

describe_machine() {
	local fs
	fs=$(findmnt -no FSTYPE,SOURCE -T "$WORK" 2>/dev/null || df -T "$WORK" | awk 'NR==2 {print $2, $1}')
	{
		echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "cpu: $(nproc) × $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
		echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
		echo "kernel: $(uname -sr)"
		echo "uptime at the start: $(uptime)"
		echo "data directory file system: $fs"
		echo "go: $(go version | awk '{print $3}')"
		if enabled ferry; then
			if external_ferry; then
				echo "ferry: external, at ${FERRY_AMQP:+AMQP $FERRY_AMQP }${FERRY_KAFKA:+Kafka $FERRY_KAFKA}"
			else
				echo "ferry: built from $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)'), single node, started by this script"
			fi
		fi
		if enabled rabbitmq; then
			echo "rabbitmq-server: $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null), Erlang $(dpkg-query -W -f='${Version}' erlang-base 2>/dev/null)"
		fi
		if enabled nats; then echo "nats-server: $(nats-server --version 2>&1 | awk '{print $2}')"; fi
		if enabled mosquitto; then echo "mosquitto: $(mosquitto -h 2>&1 | awk 'NR==1 {print $3}')"; fi
		(cd "$ROOT" && go list -m -f '{{.Path}}: {{.Version}}' github.com/rabbitmq/amqp091-go \
			github.com/nats-io/nats.go github.com/eclipse/paho.mqtt.golang github.com/twmb/franz-go)
		echo "runs per figure: $RUNS"
		if [[ -n "$PIN" ]]; then
			echo "pinned: every broker on CPUs ${PIN%%:*}, the load generator on CPUs ${PIN#*:} (--pin)"
		fi
	} >"$MACHINE"
}

# bench TARGET ADDR DRIVER_TARGET PID WORKLOAD VARIANT ARGS...: RUNS runs.
bench() {
	local target=$1 addr=$2 kind=$3 pid=$4 workload=$5 variant=$6 i out rc
	shift 6
	local pidarg=()
	if [[ -n "$pid" ]]; then pidarg=(-pid "$pid"); fi
	local runs=${RUNS_NOW:-$RUNS}
	for ((i = 1; i <= runs; i++)); do
		if [[ -n "$PEER_START" ]] && ! kill -0 "$PEER_PID" 2>/dev/null; then
			note "$target: the broker (pid $PEER_PID) had died before $workload $variant run $i; restarted with an empty data directory (logs in --keep's $WORK/logs)"
			stop_started
			"$PEER_START"
			addr=$PEER_ADDR pid=$PEER_PID
			if [[ $kind == kafka ]]; then addr=$FERRY_KAFKA_ADDR; fi
			pidarg=(-pid "$pid")
		fi
		log "$target: $workload $variant (run $i/$runs)"
		rc=0
		# In the background so that a signal to this script is handled at
		# once (bash defers traps until a foreground command returns).
		timeout --kill-after=30s "$RUN_TIMEOUT" "${DRIVER_CPUS[@]}" "$BIN/driver" run -target "$kind" -name "$target" -addr "$addr" -workload "$workload" \
			-variant "$variant" -deadline "$RUN_DEADLINE" "${pidarg[@]}" "$@" >"$WORK/run.json" 2>>"$WORK/driver.log" &
		DRIVER=$!
		wait "$DRIVER" || rc=$?
		DRIVER=""
		out=$(cat "$WORK/run.json")
		if [[ -n "$out" ]]; then
			printf '%s\n' "$out" >>"$RESULTS"
		fi
		case $rc in
		0) ;;
		3) FAILURES=$((FAILURES + 1)); log "ACCOUNTING FAILED: $target $workload $variant: $(tail -c 300 <<<"$out")" ;;
		*) FAILURES=$((FAILURES + 1)); log "run broke (status $rc): $target $workload $variant; see $WORK/driver.log"
			printf '{"target":"%s","workload":"%s","variant":"%s","metrics":{},"error":"driver exited %d"}\n' \
				"$target" "$workload" "$variant" "$rc" >>"$RESULTS" ;;
		esac
	done
}

# workloads TARGET DRIVER_TARGET START_FN: every workload against the
# target at PEER_ADDR (process PEER_PID). Each drain run (which also
# measures RAM per message) gets a fresh broker with an empty data
# directory from START_FN, so that memory left by earlier runs does not
# hide the queue's; without a START_FN (Ferry, started by the caller) the
# running process is used.
workloads() {
	local target=$1 kind=$2 start_fn=$3 v size producers half r mode
	PEER_START=$start_fn
	# amqp091-go writes every publish with a write(2) of its own, which on
	# a small machine costs the load generator more CPU than the broker
	# spends: AMQP targets run each publish variant again with the
	# connection's writes coalesced (nats.go and franz-go coalesce theirs).
	local modes=(plain)
	if [[ $kind == amqp* ]]; then
		modes+=(coalesced)
	fi
	for mode in "${modes[@]}"; do
		local label="" flags=()
		if [[ $mode == coalesced ]]; then
			label=" coalesced" flags=(-coalesce-writes)
		fi
		for v in "${PUB_VARIANTS[@]}"; do
			read -r size producers <<<"$v"
			bench "$target" "$PEER_ADDR" "$kind" "$PEER_PID" publish "$(size_label "$size")-${producers}p$label" \
				-size "$size" -producers "$producers" -duration "$PUB_SECS" "${flags[@]}"
		done
	done
	for ((r = 1; r <= RUNS; r++)); do
		if [[ -n "$start_fn" ]]; then
			stop_started
			"$start_fn"
		fi
		RUNS_NOW=1 bench "$target" "$PEER_ADDR" "$kind" "$PEER_PID" drain "$(count_label "$DRAIN_MSGS")x${DRAIN_SIZE}B" \
			-size "$DRAIN_SIZE" -producers 4 -messages "$DRAIN_MSGS"
	done
	bench "$target" "$PEER_ADDR" "$kind" "$PEER_PID" latency "1000/s" -size 1024 -rate 1000 -duration "$LAT_SECS"
	if half=$("$BIN/report" median -results "$RESULTS" -target "$target" -workload publish \
		-variant 1KiB-1p -metric publish_msgs_per_sec 2>/dev/null); then
		bench "$target" "$PEER_ADDR" "$kind" "$PEER_PID" latency "half max" -size 1024 -rate "$((half / 2))" -duration "$LAT_SECS"
	else
		note "$target: no passing 1 KiB × 1 producer publish run, so no latency at half the maximum rate"
	fi
	bench "$target" "$PEER_ADDR" "$kind" "$PEER_PID" fanout "10 queues" -size 1024 -fanout 10 -duration "$FAN_SECS"
	bench "$target" "$PEER_ADDR" "$kind" "$PEER_PID" queues "$MANY_QUEUES queues" -size 128 -queues "$MANY_QUEUES" \
		-rate 10 -duration "$Q_SECS"
}

size_label() { if (($1 % 1024 == 0)); then echo "$(($1 / 1024))KiB"; else echo "${1}B"; fi; }
count_label() { if (($1 % 1000000 == 0)); then echo "$(($1 / 1000000))M"; else echo "$(($1 / 1000))k"; fi; }

wait_ready() {
	local kind=$1 addr=$2 name=$3
	if ! "$BIN/driver" wait -target "$kind" -addr "$addr" -timeout 120s 2>>"$WORK/driver.log"; then
		log "$name did not become ready; its log:"
		tail -n 30 "$LAST_LOG" >&2 || true
		return 1
	fi
}

# The start_* functions start a peer with an empty data directory and set
# PEER_ADDR and PEER_PID (the process whose CPU time and RSS are measured).

start_rabbitmq() {
	local dir="$WORK/rabbitmq" server port dist epmd_port logbase
	server=$(compgen -G "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server" | head -n 1)
	port=$(free_port 5672)
	dist=$(free_port 25672)
	epmd_port=$(free_port 4369)
	rm -rf "$dir"
	logbase="$WORK/logs/rabbitmq-node-$STARTS" # outside the data directory: kept across restarts
	mkdir -p "$dir/home" "$dir/mnesia" "$logbase"
	# Quorum queues fsync their write-ahead log before confirming; classic
	# queues confirm persistent messages once written to the message store.
	cat >"$dir/rabbitmq.conf" <<-EOF
		listeners.tcp.1 = 127.0.0.1:$port
		loopback_users = none
		disk_free_limit.absolute = 100MB
		vm_memory_high_watermark.relative = 0.6
		log.file.level = warning
	EOF
	echo "[]." >"$dir/enabled_plugins" # no management, no MQTT: nothing the workloads do not use
	: >"$dir/rabbitmq-env.conf"
	# Our own epmd, in the foreground, so that its PID is ours to stop.
	start epmd epmd -port "$epmd_port" -address 127.0.0.1
	start rabbitmq env HOME="$dir/home" ERL_EPMD_PORT="$epmd_port" \
		RABBITMQ_NODENAME="ferrybench-$$@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$port" \
		RABBITMQ_DIST_PORT="$dist" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_MNESIA_BASE="$dir/mnesia" \
		RABBITMQ_LOG_BASE="$logbase" RABBITMQ_PID_FILE="$dir/beam.pid" "$server"
	PEER_ADDR="amqp://guest:guest@127.0.0.1:$port/"
	wait_ready amqp-classic "$PEER_ADDR" rabbitmq
	PEER_PID=$(cat "$dir/beam.pid")
	STARTED+=("$PEER_PID") # the Erlang VM: stopped first, it takes its helpers with it
	log "RabbitMQ ready on $port (beam pid $PEER_PID)"
}

# nats_config MODE DIR PORT: JetStream with file storage; MODE sync adds
# sync_interval: always (fsync before every PubAck).
nats_config() {
	local sync=""
	if [[ $1 == sync ]]; then
		sync="  sync_interval: always"
	fi
	cat <<-EOF
		listen: 127.0.0.1:$3
		jetstream {
		  store_dir: "$2/store"
		$sync
		}
	EOF
}

nats_supports_sync() {
	mkdir -p "$WORK/nats-check"
	nats_config sync "$WORK/nats-check" 4222 >"$WORK/nats-check/nats.conf"
	if ! nats-server -t -c "$WORK/nats-check/nats.conf" >"$WORK/nats-check.log" 2>&1; then
		note "nats-server $(nats-server --version | awk '{print $2}') does not support sync_interval ($(head -n 1 "$WORK/nats-check.log")): JetStream ran only at its default, which does not fsync before acknowledging"
		return 1
	fi
}

start_nats() {
	local mode=$1
	local dir="$WORK/nats-$mode" port
	port=$(free_port 4222)
	rm -rf "$dir"
	mkdir -p "$dir/store"
	nats_config "$mode" "$dir" "$port" >"$dir/nats.conf"
	start "nats-$mode" nats-server -c "$dir/nats.conf"
	PEER_PID=${STARTED[-1]} PEER_ADDR="nats://127.0.0.1:$port"
	wait_ready jetstream "$PEER_ADDR" "nats-$mode"
}
start_nats_sync() { start_nats sync; }
start_nats_default() { start_nats default; }

start_mosquitto() {
	local dir="$WORK/mosquitto" port
	port=$(free_port 1883)
	rm -rf "$dir"
	mkdir -p "$dir"
	# Persistence keeps queued QoS 1 messages across restarts, saved every
	# autosave_interval seconds: mosquitto never fsyncs before its PUBACK.
	# max_inflight_messages stands in for the consumers' prefetch (MQTT
	# 3.1.1 has none); queues are unbounded so a million messages fit.
	cat >"$dir/mosquitto.conf" <<-EOF
		listener $port 127.0.0.1
		allow_anonymous true
		persistence true
		persistence_location $dir/
		autosave_interval 60
		max_inflight_messages 1000
		max_queued_messages 0
		max_queued_bytes 0
		log_type error
	EOF
	start mosquitto mosquitto -c "$dir/mosquitto.conf"
	PEER_PID=${STARTED[-1]} PEER_ADDR="tcp://127.0.0.1:$port"
	wait_ready mqtt "$PEER_ADDR" mosquitto
}

# run_peer START_FN TARGET DRIVER_TARGET [TARGET DRIVER_TARGET...]: start
# the peer, run the workloads of each target it serves, stop it.
run_peer() {
	local start_fn=$1
	shift
	"$start_fn"
	while (($#)); do
		workloads "$1" "$2" "$start_fn"
		shift 2
	done
	stop_started
}

# start_ferry: the ferry built above, a single node with an empty data
# directory, listeners on loopback ports nothing else listens on; ready when
# /readyz says so and an AMQP session can declare a queue. FERRY_*
# variables of the caller's environment are dropped: the node runs with
# its defaults and these flags only.
start_ferry() {
	local dir="$WORK/ferry" amqp kafka http v unset=()
	# Below the ephemeral range (32768-60999 on Linux): a port there can be
	# the local end of some other process's connection, which a listener
	# cannot bind even when nothing listens on it.
	amqp=$(free_port 15673)
	kafka=$(free_port 19093)
	http=$(free_port 18081)
	rm -rf "$dir"
	mkdir -p "$dir"
	for v in $(compgen -e); do
		if [[ $v == FERRY_* ]]; then unset+=(-u "$v"); fi
	done
	local pprof=()
	if ((PPROF)); then pprof=("BENCH_PPROF_ADDR=127.0.0.1:$(free_port 16061)"); fi
	start ferry env "${unset[@]}" "${pprof[@]}" "$BIN/ferry" serve --data-dir "$dir/data" --log-level warn \
		--listeners-amqp "127.0.0.1:$amqp" --listeners-kafka "127.0.0.1:$kafka" --listeners-http "127.0.0.1:$http"
	PEER_PID=${STARTED[-1]} PEER_ADDR="amqp://guest:guest@127.0.0.1:$amqp/" FERRY_KAFKA_ADDR="127.0.0.1:$kafka"
	wait_ready http "http://127.0.0.1:$http/readyz" ferry
	wait_ready amqp "$PEER_ADDR" ferry
	log "Ferry ready: AMQP $amqp, Kafka $kafka, HTTP $http (pid $PEER_PID)${pprof:+; ${pprof[0]#*=} serves /debug/pprof}"
}

# ferry_kafka ADDR PID: workload 7 against Ferry's Kafka listener.
ferry_kafka() {
	local v size producers
	for v in "${PUB_VARIANTS[@]}"; do
		read -r size producers <<<"$v"
		bench ferry-kafka "$1" kafka "$2" kafka "$(size_label "$size")-${producers}p" \
			-size "$size" -producers "$producers" -partitions "$producers" -inflight 4096 -duration "$PUB_SECS"
	done
}

# run_ferry: by default the Ferry built from this tree, started here (and
# afresh for each drain run and for the Kafka workload, so that queues of
# earlier workloads do not weigh on it); with --ferry-* addresses, that
# external Ferry as it runs.
run_ferry() {
	if ! external_ferry; then
		start_ferry
		workloads ferry-amqp amqp start_ferry
		stop_started
		start_ferry
		PEER_START=start_ferry
		ferry_kafka "$FERRY_KAFKA_ADDR" "$PEER_PID"
		stop_started
	else
		PEER_PID=$FERRY_PID PEER_START=""
		if [[ -n "$FERRY_AMQP" ]]; then
			PEER_ADDR="amqp://guest:guest@$FERRY_AMQP/"
			workloads ferry-amqp amqp ""
		fi
		if [[ -n "$FERRY_MQTT" ]]; then
			PEER_ADDR="tcp://$FERRY_MQTT"
			workloads ferry-mqtt mqtt ""
		fi
		if [[ -n "$FERRY_KAFKA" ]]; then
			ferry_kafka "$FERRY_KAFKA" "$FERRY_PID"
		fi
	fi
	if [[ -z "$FERRY_MQTT" ]]; then
		note "Ferry (MQTT): not served yet: this version of Ferry has no MQTT front end (listeners.mqtt is reported and ignored), so Mosquitto has no Ferry ratio"
	fi
}

main() {
	local t0=$SECONDS
	install_peers
	build
	describe_machine
	log "measuring the physical limits in $WORK"
	"$BIN/physical" -dir "$WORK" -duration "$((QUICK ? 1 : 3))s" >"$WORK/physical.json"
	# The floor: the same latency workload with no broker at all.
	bench inproc "" inproc "" latency "1000/s" -size 1024 -rate 1000 -duration "$LAT_SECS"
	if enabled ferry; then run_ferry; fi
	if enabled rabbitmq; then run_peer start_rabbitmq rabbitmq-quorum amqp-quorum rabbitmq-classic amqp-classic; fi
	if enabled nats; then
		if nats_supports_sync; then run_peer start_nats_sync nats-sync jetstream; fi
		run_peer start_nats_default nats-default jetstream
	fi
	if enabled mosquitto; then run_peer start_mosquitto mosquitto mqtt; fi
	if ((QUICK)); then
		note "--quick: one run per figure, ${PUB_SECS} publish phases, a ${DRAIN_MSGS}-message drain and ${MANY_QUEUES} queues instead of the full run's 3 runs, 10 s, 1M and 1,000"
	fi
	note "wall time of this run: $(((SECONDS - t0) / 60)) min $(((SECONDS - t0) % 60)) s; uptime at the end: $(uptime) (the machine's other work competes with the brokers for its cores: compare the load averages with its $(nproc) cores)"
	"$BIN/report" render -results "$RESULTS" -physical "$WORK/physical.json" -machine "$MACHINE" \
		-notes "$NOTES" -command "$COMMAND" -doc "$DOC"
	log "wrote $DOC"
	if ((FAILURES)); then
		log "$FAILURES runs failed; see the document and $WORK (rerun with --keep to keep it)"
		return 1
	fi
}

# On one line with main: bash reads a script as it runs, so nothing after
# main is read once it returns (an edit to this file during a run would
# otherwise be executed half-read). Not "main && exit": set -e is ignored
# inside a function called from an && list.
main; exit
