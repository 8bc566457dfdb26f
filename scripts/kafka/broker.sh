#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) broker for integration tests.
#
#   scripts/kafka/broker.sh start    fetch jars once, format storage once, start, wait until ready
#   scripts/kafka/broker.sh stop     stop by pid and wait (data is kept, so start resumes it)
#   scripts/kafka/broker.sh status   exit 0 when running
#   scripts/kafka/broker.sh env      print the O365_KAFKA_* exports the integration tests read
#   scripts/kafka/broker.sh clean    stop and delete the state folder (data, logs, cluster id)
#
# Listeners (127.0.0.1 only):
#   PLAINTEXT      $KAFKA_PORT            (default 19092)
#   CONTROLLER     $KAFKA_CONTROLLER_PORT (default 19093)
#   SASL_PLAINTEXT $KAFKA_SASL_PORT       (default 19094) with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
# The SASL user is $KAFKA_SASL_USER / $KAFKA_SASL_PASSWORD (default o365 / o365-secret) for every
# mechanism. Jars go to .cache/kafka/lib, state to .cache/kafka/state (both ignored by git).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)

KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
KAFKA_SASL_PORT=${KAFKA_SASL_PORT:-19094}
KAFKA_SASL_USER=${KAFKA_SASL_USER:-o365}
KAFKA_SASL_PASSWORD=${KAFKA_SASL_PASSWORD:-o365-secret}
KAFKA_CACHE_DIR=${KAFKA_CACHE_DIR:-$repo_root/.cache/kafka}
KAFKA_STATE_DIR=${KAFKA_STATE_DIR:-$KAFKA_CACHE_DIR/state}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_JAVA_OPTS=${KAFKA_JAVA_OPTS:--Xms128m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}

lib_dir=$KAFKA_CACHE_DIR/lib
pid_file=$KAFKA_STATE_DIR/broker.pid
log_file=$KAFKA_STATE_DIR/broker.log
props=$KAFKA_STATE_DIR/server.properties
log4j_conf=$KAFKA_STATE_DIR/log4j2.properties
data_dir=$KAFKA_STATE_DIR/data

log() { echo "broker.sh: $*" >&2; }

running_pid() {
	[[ -f $pid_file ]] || return 1
	local pid
	pid=$(cat "$pid_file")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

fetch_jars() {
	if [[ -f $lib_dir/.complete ]]; then
		return
	fi
	command -v mvn >/dev/null || { log "mvn not found: install Maven to fetch the Kafka jars"; exit 1; }
	log "fetching Kafka jars into $lib_dir (once)"
	local start=$SECONDS
	rm -rf "$lib_dir.tmp"
	mvn -B -q -f "$script_dir/pom.xml" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$lib_dir.tmp" </dev/null >&2
	rm -rf "$lib_dir"
	mv "$lib_dir.tmp" "$lib_dir"
	touch "$lib_dir/.complete"
	log "jars fetched in $((SECONDS - start)) s"
}

write_config() {
	mkdir -p "$data_dir"
	cat >"$props" <<EOF
# Written by scripts/kafka/broker.sh; regenerated on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$data_dir
metadata.log.dir=$data_dir
num.partitions=1
# Production clusters often disable auto-creation; the output's create_topics must cope.
auto.create.topics.enable=false
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
	cat >"$log4j_conf" <<'EOF'
status = error
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.reqs.name = kafka.request.logger
logger.reqs.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
EOF
}

java_cmd() {
	# shellcheck disable=SC2086 # KAFKA_JAVA_OPTS is a list of flags
	exec java $KAFKA_JAVA_OPTS -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$log4j_conf" -Dkafka.logs.dir="$KAFKA_STATE_DIR" \
		-cp "$lib_dir/*" "$@"
}

format_storage() {
	if [[ -f $data_dir/meta.properties ]]; then
		return
	fi
	local cluster_id
	if [[ -f $KAFKA_STATE_DIR/cluster.id ]]; then
		cluster_id=$(cat "$KAFKA_STATE_DIR/cluster.id")
	else
		# 16 random bytes, base64url without padding: the form Kafka's cluster ids take.
		cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		echo "$cluster_id" >"$KAFKA_STATE_DIR/cluster.id"
	fi
	log "formatting storage (cluster id $cluster_id)"
	(java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --ignore-formatted \
		--add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
		--add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
		</dev/null >>"$log_file" 2>&1) || {
		log "formatting failed; log tail:"
		tail -n 40 "$log_file" >&2
		exit 1
	}
}

start() {
	local pid
	if pid=$(running_pid); then
		log "already running (pid $pid)"
		print_bootstrap
		return
	fi
	for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT"; do
		if port_open "$p"; then
			log "port $p is in use by another process; set KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_SASL_PORT"
			exit 1
		fi
	done
	command -v java >/dev/null || { log "java not found"; exit 1; }
	fetch_jars
	mkdir -p "$KAFKA_STATE_DIR"
	write_config
	format_storage

	local start=$SECONDS
	echo "=== start $(date -u +%FT%TZ) ===" >>"$log_file"
	# java_cmd execs, so $! is the JVM's own pid and stop can signal it directly.
	(trap '' HUP; java_cmd kafka.Kafka "$props") </dev/null >>"$log_file" 2>&1 &
	pid=$!
	echo "$pid" >"$pid_file"

	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "broker exited during start; log tail:"
			tail -n 60 "$log_file" >&2
			rm -f "$pid_file"
			exit 1
		fi
		if port_open "$KAFKA_PORT" && port_open "$KAFKA_SASL_PORT"; then
			break
		fi
		if ((SECONDS - start >= KAFKA_START_TIMEOUT)); then
			log "broker not answering on 127.0.0.1:$KAFKA_PORT after ${KAFKA_START_TIMEOUT}s; log tail:"
			tail -n 60 "$log_file" >&2
			stop
			exit 1
		fi
		sleep 0.5
	done
	log "started (pid $pid) in $((SECONDS - start)) s; log $log_file"
	print_bootstrap
}

stop() {
	local pid
	if ! pid=$(running_pid); then
		rm -f "$pid_file"
		log "not running"
		return
	fi
	kill -TERM "$pid" 2>/dev/null || true
	# A single-node KRaft broker shuts down cleanly in a few seconds; force it after 30.
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "broker did not stop after 30 s; killing"
		kill -KILL "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	fi
	rm -f "$pid_file"
	log "stopped (pid $pid)"
}

status() {
	local pid
	if pid=$(running_pid); then
		log "running (pid $pid)"
		print_bootstrap
	else
		log "not running"
		return 1
	fi
}

print_bootstrap() {
	echo "bootstrap: 127.0.0.1:$KAFKA_PORT (PLAINTEXT), 127.0.0.1:$KAFKA_SASL_PORT (SASL_PLAINTEXT)"
}

print_env() {
	echo "export O365_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
	echo "export O365_KAFKA_SASL_BROKERS=127.0.0.1:$KAFKA_SASL_PORT"
	echo "export O365_KAFKA_SASL_USER=$KAFKA_SASL_USER"
	echo "export O365_KAFKA_SASL_PASSWORD=$KAFKA_SASL_PASSWORD"
	echo "export O365_KAFKA_BROKER_SCRIPT=$script_dir/broker.sh"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
env) print_env ;;
clean)
	stop
	rm -rf "$KAFKA_STATE_DIR"
	log "removed $KAFKA_STATE_DIR"
	;;
*)
	echo "usage: $0 start|stop|status|env|clean" >&2
	exit 2
	;;
esac
