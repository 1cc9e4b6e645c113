#!/usr/bin/env bash
# Private replicated, sharded ClickHouse for development and tests: one ZooKeeper and four
# ClickHouse servers on loopback forming the cluster `adjust_local` (two shards of two
# replicas each).
#
# Usage: deploy/local/cluster.sh COMMAND [N]
#
#   start         install Debian's zookeeper and clickhouse-server packages if they are
#                 missing, start ZooKeeper and the four servers (whatever of them does not
#                 run yet) and print the four HTTP URLs
#   stop          stop everything `start` started (SIGTERM, then SIGKILL after 20 s)
#   status        print the state of each process; exit 0 only when ZooKeeper and all four
#                 servers answer
#   urls          print the HTTP URLs of nodes 1 to 4, one a line
#   url N         print the HTTP URL of node N
#   start-node N  start node N (and ZooKeeper, if it does not run) and print its URL
#   stop-node N   stop node N (SIGTERM, then SIGKILL after 20 s)
#   kill-node N   SIGKILL node N, as a crash would
#
# Nodes: 1 = shard 1 replica 1, 2 = shard 1 replica 2, 3 = shard 2 replica 1,
#        4 = shard 2 replica 2.
# Each server's macros: `shard` (1 or 2) and `replica` (s1r1, s1r2, s2r1, s2r2), for
#   ReplicatedMergeTree('/clickhouse/tables/{shard}/db/table', '{replica}').
# Cluster `adjust_local` in <remote_servers>, internal_replication true; ON CLUSTER DDL
#   through <distributed_ddl> at /clickhouse/task_queue/ddl.
#
# Ports, from a base B (default 18200):
#   B           ZooKeeper client port
#   B + 10N     HTTP of node N       (18210, 18220, 18230, 18240)
#   B + 10N + 1 native TCP of node N (18211, ...)
#   B + 10N + 2 interserver HTTP of node N (replication; 18212, ...)
#
# Environment:
#   ADJUST_SINK_CLUSTER_BASE_PORT  the base B (default 18200)
#   ADJUST_SINK_CLUSTER_DIR        directory of the configs, data and logs (default
#                                  target/cluster-local); a second cluster needs its own
#                                  directory and base port
#
# Everything listens on 127.0.0.1 only. Each server has its own directory nodeN/ (data,
# config.xml, logs/ at level `warning`, UTC time zone); ZooKeeper has zookeeper/ (data,
# zoo.cfg, logs/). Works as root and as a normal user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE_PORT="${ADJUST_SINK_CLUSTER_BASE_PORT:-18200}"
DIR="${ADJUST_SINK_CLUSTER_DIR:-$ROOT/target/cluster-local}"
CLUSTER=adjust_local
NODES=(1 2 3 4)
START_TIMEOUT=60
STOP_TIMEOUT=20

LOG_NAME=cluster.sh
# shellcheck source=deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"

case "$BASE_PORT" in
'' | *[!0-9]*) die "ADJUST_SINK_CLUSTER_BASE_PORT must be a port number, not '$BASE_PORT'" ;;
esac
if [ "$BASE_PORT" -lt 1 ] || [ "$BASE_PORT" -gt 65490 ]; then
    die "ADJUST_SINK_CLUSTER_BASE_PORT=$BASE_PORT leaves no room for the ports above it"
fi

ZK_PORT="$BASE_PORT"
ZK_DIR="$DIR/zookeeper"
ZK_CONFIG="$ZK_DIR/zoo.cfg"
ZK_PID_FILE="$ZK_DIR/zookeeper.pid"
ZK_LOG_DIR="$ZK_DIR/logs"
ZK_JAR=/usr/share/java/zookeeper.jar
# zookeeper.jar names its other dependencies in its manifest; the logging binding is added
# so that ZooKeeper writes its log (both jars come with the package's dependencies).
ZK_CLASSPATH="$ZK_DIR:$ZK_JAR:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

http_port() { echo $((BASE_PORT + 10 * $1)); }
tcp_port() { echo $((BASE_PORT + 10 * $1 + 1)); }
interserver_port() { echo $((BASE_PORT + 10 * $1 + 2)); }
node_url() { echo "http://127.0.0.1:$(http_port "$1")"; }
node_shard() { echo $((($1 + 1) / 2)); }
node_replica() { echo "s$(node_shard "$1")r$((($1 + 1) % 2 + 1))"; }
node_dir() { echo "$DIR/node$1"; }
node_config() { echo "$DIR/node$1/config.xml"; }
node_pid_file() { echo "$DIR/node$1/clickhouse-server.pid"; }
node_pid() { pid_of "$(node_pid_file "$1")" "$(node_config "$1")"; }
node_answers() { http_answers "$(node_url "$1")"; }
node_logs() { print_log_tails "$(node_dir "$1")/logs/clickhouse-server.err.log" "$(node_dir "$1")/logs/stdout.log"; }

check_node() {
    case "${1:-}" in
    1 | 2 | 3 | 4) ;;
    *) die "expected a node number 1-4, got '${1:-}'" ;;
    esac
}

# --- installation ---------------------------------------------------------------------

java_command() {
    local c
    for c in "$(command -v java 2>/dev/null || true)" /usr/bin/java; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

ensure_installed() {
    ensure_clickhouse_installed
    if [ ! -r "$ZK_JAR" ] || ! java_command >/dev/null; then
        log "installing zookeeper"
        # As with ClickHouse, the package's own service start may fail without an init
        # system; only the jars and Java matter here.
        apt_install zookeeper >&2 || log "apt-get reported an error"
        if [ ! -r "$ZK_JAR" ] || ! java_command >/dev/null; then
            die "zookeeper (or java) is still missing after installation"
        fi
    fi
}

# --- ZooKeeper ------------------------------------------------------------------------

zk_pid() { pid_of "$ZK_PID_FILE" "$ZK_CONFIG"; }

# True when ZooKeeper serves requests: `mntr` reports its state. (`ruok` answers `imok` while
# it is still loading its snapshot and closing every session, and a server with replicated
# tables that starts then exits because it cannot reach ZooKeeper.)
zk_answers() {
    local reply
    reply="$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && echo mntr >&3 && cat <&3" \
        2>/dev/null)" || true
    [[ "$reply" == *zk_server_state* ]]
}

write_zk_config() {
    mkdir -p "$ZK_DIR/data" "$ZK_LOG_DIR"
    cat >"$ZK_CONFIG" <<EOF
# Generated by deploy/local/cluster.sh; rewritten on every start.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
# No Jetty admin server (it would take port 8080).
admin.enableServer=false
4lw.commands.whitelist=ruok,stat,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
EOF
    cat >"$ZK_DIR/log4j.properties" <<EOF
# Generated by deploy/local/cluster.sh; rewritten on every start.
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.RollingFileAppender
log4j.appender.FILE.File=$ZK_LOG_DIR/zookeeper.log
log4j.appender.FILE.MaxFileSize=20MB
log4j.appender.FILE.MaxBackupIndex=2
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n
EOF
}

start_zookeeper() {
    local pid
    if pid="$(zk_pid)"; then
        wait_for "ZooKeeper" "$pid" zk_answers print_zk_logs
        return 0
    fi
    if zk_answers; then
        die "port $ZK_PORT already serves a ZooKeeper not started from $DIR; stop it or set ADJUST_SINK_CLUSTER_BASE_PORT"
    fi
    write_zk_config
    rm -f "$ZK_PID_FILE"
    # setsid: ZooKeeper outlives the shell that started it (and its process group).
    setsid "$(java_command)" -Xms32m -Xmx256m -XX:+UseSerialGC \
        -cp "$ZK_CLASSPATH" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_CONFIG" \
        >"$ZK_LOG_DIR/stdout.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$ZK_PID_FILE"
    wait_for "ZooKeeper" "$pid" zk_answers print_zk_logs
}

print_zk_logs() { print_log_tails "$ZK_LOG_DIR/zookeeper.log" "$ZK_LOG_DIR/stdout.log"; }

# --- ClickHouse servers ---------------------------------------------------------------

remote_servers_xml() {
    local shard node
    for shard in 1 2; do
        echo "            <shard>"
        echo "                <internal_replication>true</internal_replication>"
        for node in $((2 * shard - 1)) $((2 * shard)); do
            echo "                <replica><host>127.0.0.1</host><port>$(tcp_port "$node")</port></replica>"
        done
        echo "            </shard>"
    done
}

write_node_config() {
    local n="$1" dir users
    dir="$(node_dir "$n")"
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/logs"
    users="$(clickhouse_users_config "$dir")"
    cat >"$(node_config "$n")" <<EOF
<?xml version="1.0"?>
<!-- Generated by deploy/local/cluster.sh; rewritten on every start. -->
<!-- Node $n of cluster $CLUSTER: shard $(node_shard "$n"), replica $(node_replica "$n"). -->
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/logs/clickhouse-server.log</log>
        <errorlog>$dir/logs/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>

    <listen_host>127.0.0.1</listen_host>
    <http_port>$(http_port "$n")</http_port>
    <tcp_port>$(tcp_port "$n")</tcp_port>
    <!-- Replicas fetch parts from each other here. -->
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>$(interserver_port "$n")</interserver_http_port>

    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>

    <users_config>$users</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>

    <zookeeper>
        <node index="1">
            <host>127.0.0.1</host>
            <port>$ZK_PORT</port>
        </node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>

    <!-- A node killed between writing a part and registering it in ZooKeeper finds that part
         unexpected at its next start, and 18.16 refuses to start when such parts hold more than
         half of a table's rows (as they can in a young table). Start anyway: the part is set
         aside and the replica fetches what ZooKeeper lists. -->
    <merge_tree>
        <replicated_max_ratio_of_wrong_parts>1</replicated_max_ratio_of_wrong_parts>
    </merge_tree>

    <macros>
        <shard>$(node_shard "$n")</shard>
        <replica>$(node_replica "$n")</replica>
    </macros>

    <remote_servers>
        <$CLUSTER>
$(remote_servers_xml)
        </$CLUSTER>
    </remote_servers>

    <!-- CREATE/ALTER/DROP ... ON CLUSTER: queued in ZooKeeper, run by every node. -->
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>

    <!-- Keep memory small: these are test servers. -->
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>64</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
}

# Fails when node $1 does not run but something else answers on its HTTP port.
check_port_free() {
    if ! node_pid "$1" >/dev/null && node_answers "$1"; then
        die "$(node_url "$1") already serves a ClickHouse not started from $DIR; stop it or set ADJUST_SINK_CLUSTER_BASE_PORT"
    fi
}

# Launches node $1 unless it runs already; does not wait for it.
launch_node() {
    local n="$1" pid server
    if node_pid "$n" >/dev/null; then
        return 0
    fi
    check_port_free "$n"
    server="$(clickhouse_server_command)"
    write_node_config "$n"
    rm -f "$(node_pid_file "$n")"
    # shellcheck disable=SC2086 # $server may be "clickhouse server"
    setsid $server --config-file="$(node_config "$n")" \
        >"$(node_dir "$n")/logs/stdout.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$(node_pid_file "$n")"
}

wait_for_node() {
    local n="$1" pid
    pid="$(cat "$(node_pid_file "$n")" 2>/dev/null)" || die "node $n was not started"
    wait_for "node $n" "$pid" node_answers node_logs "$n"
}

stop_node() {
    local n="$1" pid
    if pid="$(node_pid "$n")"; then
        stop_pid "$pid"
        log "node $n stopped (pid $pid)"
    fi
    rm -f "$(node_pid_file "$n")"
}

# Waits until the check `$3 $5...` passes for the process $2 named $1; on a timeout or an
# early exit it prints the logs (`$4 $5...`), kills the process and fails.
wait_for() {
    local name="$1" pid="$2" check="$3" logs="$4" deadline=$((SECONDS + START_TIMEOUT))
    shift 4
    until "$check" "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) exited during startup"
            "$logs" "$@"
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name (pid $pid) did not answer within ${START_TIMEOUT}s; killing it"
            "$logs" "$@"
            kill -KILL "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.2
    done
}

# --- commands -------------------------------------------------------------------------

cmd_start() {
    local n
    ensure_installed
    for n in "${NODES[@]}"; do
        check_port_free "$n"
    done
    mkdir -p "$DIR"
    start_zookeeper
    for n in "${NODES[@]}"; do
        launch_node "$n"
    done
    for n in "${NODES[@]}"; do
        wait_for_node "$n"
    done
    cmd_urls
}

cmd_start_node() {
    check_node "$1"
    ensure_installed
    check_port_free "$1"
    mkdir -p "$DIR"
    start_zookeeper
    launch_node "$1"
    wait_for_node "$1"
    node_url "$1"
}

cmd_stop_node() {
    check_node "$1"
    node_pid "$1" >/dev/null || log "node $1 is not running"
    stop_node "$1"
}

cmd_kill_node() {
    local pid
    check_node "$1"
    if ! pid="$(node_pid "$1")"; then
        log "node $1 is not running"
        return 0
    fi
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.05
    done
    rm -f "$(node_pid_file "$1")"
    log "node $1 killed (pid $pid)"
}

cmd_stop() {
    local n pid pids=()
    for n in "${NODES[@]}"; do
        if pid="$(node_pid "$n")"; then
            pids+=("$pid")
        fi
    done
    if [ "${#pids[@]}" -gt 0 ]; then
        stop_pid "${pids[@]}"
        log "ClickHouse servers stopped (pid ${pids[*]})"
    fi
    for n in "${NODES[@]}"; do
        rm -f "$(node_pid_file "$n")"
    done
    if pid="$(zk_pid)"; then
        stop_pid "$pid"
        log "ZooKeeper stopped (pid $pid)"
    elif [ "${#pids[@]}" -eq 0 ]; then
        log "not running"
    fi
    rm -f "$ZK_PID_FILE"
}

# One status line: "<name> <state> <pid or -> <address>".
cmd_status() {
    local n pid ok=0 state
    if zk_answers; then state=up; else state=down ok=1; fi
    printf '%-10s %-5s %-8s %s\n' zookeeper "$state" "$(zk_pid || echo -)" "127.0.0.1:$ZK_PORT"
    for n in "${NODES[@]}"; do
        if node_answers "$n"; then state=up; else state=down ok=1; fi
        printf '%-10s %-5s %-8s %s (shard %s, replica %s)\n' "node$n" "$state" \
            "$(node_pid "$n" || echo -)" "$(node_url "$n")" "$(node_shard "$n")" "$(node_replica "$n")"
    done
    return "$ok"
}

cmd_urls() {
    local n
    for n in "${NODES[@]}"; do
        node_url "$n"
    done
}

usage() {
    echo "usage: $0 start|stop|status|urls | url N|start-node N|stop-node N|kill-node N (N = 1-4)" >&2
    exit 2
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
urls) cmd_urls ;;
url) check_node "${2:-}" && node_url "$2" ;;
start-node) cmd_start_node "${2:-}" ;;
stop-node) cmd_stop_node "${2:-}" ;;
kill-node) cmd_kill_node "${2:-}" ;;
*) usage ;;
esac
