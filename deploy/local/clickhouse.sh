#!/usr/bin/env bash
# Private ClickHouse server for development and the end-to-end tests.
#
# Usage: deploy/local/clickhouse.sh start|stop|status|url|https-url|ca
#
#   start      install Debian's clickhouse-server if it is missing, then start a server on
#              loopback with its own data directory (target/clickhouse-local/) and print its
#              HTTP URL; a no-op (that prints the URL) when it already runs
#   stop       stop the server started by `start` (SIGTERM, then SIGKILL after 20 s)
#   status     exit 0 when the server answers over HTTP, 1 otherwise
#   url        print the HTTP URL, e.g. http://127.0.0.1:18123
#   https-url  print the HTTPS URL, e.g. https://127.0.0.1:18443 (needs ADJUST_SINK_CH_HTTPS_PORT)
#   ca         print the path of the CA certificate that signed the server's certificate
#              (pass it to adjust-sink as --clickhouse-ca)
#
# Environment:
#   ADJUST_SINK_CH_HTTP_PORT   HTTP port (default 18123)
#   ADJUST_SINK_CH_TCP_PORT    native TCP port (default 19000)
#   ADJUST_SINK_CH_DIR         data directory (default target/clickhouse-local); a second
#                              server needs its own directory and ports
#   ADJUST_SINK_CH_HTTPS_PORT  also serve HTTPS on this port (off when unset)
#   ADJUST_SINK_CH_TLS_CERT    server certificate (PEM) for HTTPS, with ADJUST_SINK_CH_TLS_KEY
#   ADJUST_SINK_CH_TLS_KEY     its private key (PEM)
#   ADJUST_SINK_CH_TLS_CA      the CA certificate that signed ADJUST_SINK_CH_TLS_CERT (what
#                              `ca` prints; default: the certificate itself, i.e. self-signed)
#   ADJUST_SINK_CH_USERS_XML   users file of the server (default: the package's
#                              /etc/clickhouse-server/users.xml)
#   Without a certificate, `start` generates with openssl (once) a local CA
#   (<dir>/tls/ca.pem) and a server certificate it signs (<dir>/tls/server.pem, for
#   DNS:localhost and IP:127.0.0.1).
#
# The server listens on 127.0.0.1 only, uses the UTC time zone, and logs at level
# `warning` into target/clickhouse-local/logs/. Works as root and as a normal user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HTTP_PORT="${ADJUST_SINK_CH_HTTP_PORT:-18123}"
TCP_PORT="${ADJUST_SINK_CH_TCP_PORT:-19000}"
DIR="${ADJUST_SINK_CH_DIR:-$ROOT/target/clickhouse-local}"
HTTPS_PORT="${ADJUST_SINK_CH_HTTPS_PORT:-}"
TLS_DIR="$DIR/tls"
TLS_CERT="${ADJUST_SINK_CH_TLS_CERT:-}"
TLS_KEY="${ADJUST_SINK_CH_TLS_KEY:-}"
TLS_CA="${ADJUST_SINK_CH_TLS_CA:-}"
if [ -z "$TLS_CERT" ]; then
    TLS_CERT="$TLS_DIR/server.pem"
    TLS_KEY="$TLS_DIR/server-key.pem"
    TLS_CA="$TLS_DIR/ca.pem"
fi
TLS_CA="${TLS_CA:-$TLS_CERT}"
CONFIG="$DIR/config.xml"
PID_FILE="$DIR/clickhouse-server.pid"
LOG_DIR="$DIR/logs"
ERR_LOG="$LOG_DIR/clickhouse-server.err.log"
OUT_LOG="$LOG_DIR/stdout.log"
URL="http://127.0.0.1:$HTTP_PORT"
HTTPS_URL="https://127.0.0.1:$HTTPS_PORT"
START_TIMEOUT=60
STOP_TIMEOUT=20

LOG_NAME=clickhouse.sh
# shellcheck source=deploy/local/lib.sh
. "$ROOT/deploy/local/lib.sh"

# --- server ---------------------------------------------------------------------------

answers() { http_answers "$URL"; }

# Whether HTTPS answers (true when it is off), the server's certificate checked against the CA.
answers_https() {
    [ -z "$HTTPS_PORT" ] && return 0
    [ "$(curl -sf --max-time 2 --cacert "$TLS_CA" \
        "$HTTPS_URL/?query=SELECT%201" 2>/dev/null)" = "1" ]
}

# HTTPS port in the config of the server started from this directory (empty: none).
configured_https_port() {
    sed -n 's:.*<https_port>\([0-9]*\)</https_port>.*:\1:p' "$CONFIG" 2>/dev/null
}

# A local CA and a server certificate it signs, for localhost and 127.0.0.1; kept across
# restarts, so clients trust the same CA every time.
ensure_certificate() {
    if [ -n "${ADJUST_SINK_CH_TLS_CERT:-}" ]; then
        [ -r "$TLS_CERT" ] || die "ADJUST_SINK_CH_TLS_CERT $TLS_CERT is not readable"
        [ -r "$TLS_KEY" ] || die "ADJUST_SINK_CH_TLS_KEY '$TLS_KEY' is not readable"
        return 0
    fi
    if [ -s "$TLS_CERT" ] && [ -s "$TLS_KEY" ] && [ -s "$TLS_CA" ]; then
        return 0
    fi
    log "generating a local CA and a server certificate in $TLS_DIR"
    mkdir -p "$TLS_DIR"
    (
        cd "$TLS_DIR"
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
            -subj "/CN=adjust-sink local ClickHouse CA" \
            -keyout ca-key.pem -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
            -keyout server-key.pem -out server.csr 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" \
            "keyUsage=digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem \
            -set_serial "0x$(openssl rand -hex 8)" -days 825 -sha256 \
            -extfile server.ext -out server.pem 2>/dev/null
        rm -f server.csr server.ext
        chmod 644 ca.pem server.pem
    ) || die "openssl could not generate the certificates in $TLS_DIR"
}

# The HTTPS part of the server config (nothing when HTTPS is off).
https_config() {
    [ -z "$HTTPS_PORT" ] && return 0
    cat <<EOF
    <https_port>$HTTPS_PORT</https_port>
    <openSSL>
        <server>
            <certificateFile>$TLS_CERT</certificateFile>
            <privateKeyFile>$TLS_KEY</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
EOF
}

# HTTP port in the config of the server started from this directory.
configured_port() {
    sed -n 's:.*<http_port>\([0-9]*\)</http_port>.*:\1:p' "$CONFIG" 2>/dev/null
}

# PID of the server started from this directory, if it is alive.
our_pid() { pid_of "$PID_FILE" "$CONFIG"; }

# The users file: ADJUST_SINK_CH_USERS_XML when set (tests with users of their own), else the
# package's (or a minimal one, see lib.sh).
users_config() {
    if [ -n "${ADJUST_SINK_CH_USERS_XML:-}" ]; then
        [ -r "$ADJUST_SINK_CH_USERS_XML" ] ||
            die "ADJUST_SINK_CH_USERS_XML $ADJUST_SINK_CH_USERS_XML is not readable"
        echo "$ADJUST_SINK_CH_USERS_XML"
        return
    fi
    clickhouse_users_config "$DIR"
}

write_config() {
    mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas" "$LOG_DIR"
    local users
    users="$(users_config)"
    cat >"$CONFIG" <<EOF
<?xml version="1.0"?>
<!-- Generated by deploy/local/clickhouse.sh; rewritten on every start. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>$LOG_DIR/clickhouse-server.log</log>
        <errorlog>$ERR_LOG</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>

    <listen_host>127.0.0.1</listen_host>
    <http_port>$HTTP_PORT</http_port>
    <tcp_port>$TCP_PORT</tcp_port>
$(https_config)
    <!-- No interserver_http_port: replication is not used. -->

    <path>$DIR/data/</path>
    <tmp_path>$DIR/tmp/</tmp_path>
    <user_files_path>$DIR/user_files/</user_files_path>
    <format_schema_path>$DIR/format_schemas/</format_schema_path>

    <users_config>$users</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>

    <!-- Keep memory small: this is a test server. -->
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>64</max_concurrent_queries>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
}

print_logs() { print_log_tails "$ERR_LOG" "$OUT_LOG"; }

cmd_start() {
    local pid
    if pid="$(our_pid)"; then
        if [ "$(configured_port)" != "$HTTP_PORT" ]; then
            die "already running (pid $pid) on port $(configured_port); run '$0 stop' first"
        fi
        if [ "$(configured_https_port)" != "$HTTPS_PORT" ]; then
            die "already running (pid $pid) with HTTPS port '$(configured_https_port)'; run '$0 stop' first"
        fi
        wait_until_up "$pid"
        echo "$URL"
        return 0
    fi
    if answers; then
        log "a ClickHouse server not started from $DIR already answers on $URL; using it"
        echo "$URL"
        return 0
    fi
    ensure_clickhouse_installed
    if [ -n "$HTTPS_PORT" ] && ! command -v openssl >/dev/null 2>&1; then
        log "installing openssl"
        apt_install openssl >&2
    fi
    [ -z "$HTTPS_PORT" ] || ensure_certificate
    local server
    server="$(clickhouse_server_command)"
    write_config
    rm -f "$PID_FILE"
    # setsid: the server outlives the shell that started it (and its process group).
    # shellcheck disable=SC2086 # $server may be "clickhouse server"
    setsid $server --config-file="$CONFIG" >"$OUT_LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_until_up "$pid"
    echo "$URL"
}

wait_until_up() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    until answers && answers_https; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "the server (pid $pid) exited during startup"
            print_logs
            rm -f "$PID_FILE"
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "the server (pid $pid) did not answer on $URL${HTTPS_PORT:+ and $HTTPS_URL} within ${START_TIMEOUT}s; stopping it"
            print_logs
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            exit 1
        fi
        sleep 0.2
    done
}

cmd_stop() {
    local pid
    if ! pid="$(our_pid)"; then
        rm -f "$PID_FILE"
        if answers; then
            log "the server answering on $URL was not started from $DIR; leaving it alone"
        else
            log "not running"
        fi
        return 0
    fi
    stop_pid "$pid"
    rm -f "$PID_FILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if answers; then
        if pid="$(our_pid)"; then
            echo "running (pid $pid) at $URL"
        else
            echo "a server not started from $DIR answers at $URL"
        fi
        return 0
    fi
    echo "not running"
    return 1
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) echo "$URL" ;;
https-url)
    [ -n "$HTTPS_PORT" ] || die "HTTPS is off: set ADJUST_SINK_CH_HTTPS_PORT"
    echo "$HTTPS_URL"
    ;;
ca)
    [ -n "$HTTPS_PORT" ] || die "HTTPS is off: set ADJUST_SINK_CH_HTTPS_PORT"
    echo "$TLS_CA"
    ;;
*)
    echo "usage: $0 start|stop|status|url|https-url|ca" >&2
    exit 2
    ;;
esac
