#!/bin/bash
# sentinel.sh -- Redis Sentinel failover under steady load: a master, a
# replica and three redis-sentinel processes; fastauth finds the master
# through redis_sentinels / redis_master_name and WAITs for one replica
# after refresh-token rotation and revocations. The master is SIGKILLed;
# the sentinels promote the replica and the service recovers on it. Refresh
# tokens and revocations from before the failover keep their meaning.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/faultlib.sh"

require "$REDIS_SENTINEL"

# start_node NAME PORT [options]: a redis-server we track by PID.
start_node() {
	local name=$1 port=$2
	shift 2
	mkdir -p "$T/$name"
	"$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save "" --appendonly yes \
	    --appendfsync everysec --dir "$T/$name" --daemonize no \
	    --logfile "$T/$name/redis.log" "$@" </dev/null >"$T/$name/out.log" 2>&1 3>&- &
	eval "${name}_PID=$!"
	fa_register "$!" "redis-server $name" "$T/$name/redis.log"
	REDIS_PORT=$port wait_until 10 redis_ping || die "redis $name on $port does not answer"
}

MASTER_PORT=$(free_port)
REPLICA_PORT=$(free_port)
start_node master "$MASTER_PORT"
start_node replica "$REPLICA_PORT" --replicaof 127.0.0.1 "$MASTER_PORT"
# Replication must be up before the sentinels learn the topology.
repl_up() {
	"$REDIS_CLI" -p "$REPLICA_PORT" info replication | grep -q 'master_link_status:up'
}
wait_until 15 repl_up || die "the replica did not connect to the master"

SENTINELS=""
for i in 1 2 3; do
	port=$(free_port)
	mkdir -p "$T/sentinel$i"
	cat > "$T/sentinel$i/sentinel.conf" <<EOC
port $port
bind 127.0.0.1
dir $T/sentinel$i
logfile $T/sentinel$i/sentinel.log
sentinel monitor fa 127.0.0.1 $MASTER_PORT 2
sentinel down-after-milliseconds fa 1000
sentinel failover-timeout fa 5000
sentinel parallel-syncs fa 1
EOC
	"$REDIS_SENTINEL" "$T/sentinel$i/sentinel.conf" --daemonize no \
	    </dev/null >"$T/sentinel$i/out.log" 2>&1 3>&- &
	fa_register "$!" "redis-sentinel $i" "$T/sentinel$i/sentinel.log"
	wait_until 10 port_open "$port" || die "sentinel $i does not listen on $port"
	SENTINELS="$SENTINELS${SENTINELS:+,}127.0.0.1:$port"
	SENTINEL_PORTS="${SENTINEL_PORTS:-} $port"
done
# Every sentinel must know the replica and the others before the failover.
sentinels_ready() {
	local p
	for p in $SENTINEL_PORTS; do
		"$REDIS_CLI" -p "$p" sentinel replicas fa 2>/dev/null | grep -q "$REPLICA_PORT" || return 1
		[ "$("$REDIS_CLI" -p "$p" sentinel master fa | awk 'prev=="num-other-sentinels"{print; exit} {prev=$0}')" = 2 ] || return 1
	done
}
wait_until 30 sentinels_ready || die "the sentinels did not discover the replica and each other"
pass "master, replica and three sentinels up ($SENTINELS)"

# redis_url keeps the credentials and db; its host is replaced by the master's.
REDIS_URL="redis://127.0.0.1:1/0"
REDIS_PORT=$MASTER_PORT
FAULT_NO_REDIS=1 fault_setup "redis_sentinels $SENTINELS" "redis_master_name fa" \
    "redis_wait_replicas 1" "redis_wait_timeout 100"
fault_prepare
load_start
mark_fault
race_start
kill -KILL "$master_PID"
note "master (port $MASTER_PORT) SIGKILLed"
promoted() {
	[ "$("$REDIS_CLI" -p "$REPLICA_PORT" role 2>/dev/null | head -n 1)" = master ]
}
if wait_until 30 promoted; then
	pass "the sentinels promoted the replica (port $REPLICA_PORT)"
else
	fail "the replica was not promoted within 30 s"
fi
mark_back
check_revoked_during
wait_ready "$BASE" 20
sleep 2
RECOVER_BOUND_S=15 STORE_AWAY=1 fault_report sentinel_failover
check_refresh_after
grep -q "master 'fa' is at 127.0.0.1:$REPLICA_PORT" "$T"/lighttpd.conf.error.log "$T"/*.log 2>/dev/null &&
    pass "fastauth logged the new master's address" ||
    note "no 'master is at' line found in the logs (the log goes to lighttpd's error log)"
