# shellcheck shell=bash
# Shell functions shared by deploy/local/clickhouse.sh and deploy/local/cluster.sh.
# Not a command: source it after setting LOG_NAME (the prefix of every message).
#
# Installation: as_root, apt_install, ensure_curl, clickhouse_server_command,
#   ensure_clickhouse_installed.
# Processes:    http_answers, pid_of, stop_pid, print_log_tails.
# Configs:      clickhouse_users_config.

log() { echo "${LOG_NAME:-deploy/local}: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# --- installation ---------------------------------------------------------------------

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    local candidate
    candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        as_root apt-get update -q
    fi
    if ! as_root apt-get install -y -q "$@"; then
        as_root apt-get update -q
        as_root apt-get install -y -q "$@"
    fi
}

ensure_curl() {
    if ! command -v curl >/dev/null 2>&1; then
        log "installing curl"
        apt_install curl >&2
    fi
}

# Prints the command that runs a ClickHouse server: Debian installs
# /usr/sbin/clickhouse-server (often not on a normal user's PATH); upstream packages ship
# one `clickhouse` binary.
clickhouse_server_command() {
    local c
    for c in "$(command -v clickhouse-server 2>/dev/null || true)" \
        /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            echo "$c"
            return 0
        fi
    done
    if c="$(command -v clickhouse 2>/dev/null)"; then
        echo "$c server"
        return 0
    fi
    return 1
}

ensure_clickhouse_installed() {
    ensure_curl
    if ! clickhouse_server_command >/dev/null; then
        log "installing clickhouse-server and clickhouse-client"
        # The package's own service start may fail where no init system runs; only the
        # binary matters here.
        apt_install clickhouse-server clickhouse-client >&2 || log "apt-get reported an error"
        clickhouse_server_command >/dev/null ||
            die "clickhouse-server is still missing after installation"
    fi
}

# --- processes ------------------------------------------------------------------------

# True when a ClickHouse server answers `SELECT 1` at the HTTP URL $1.
http_answers() {
    [ "$(curl -sf --max-time 2 "$1/?query=SELECT%201" 2>/dev/null)" = "1" ]
}

# Prints the PID stored in the file $1 when that process is alive and its command line
# contains $2 (its config file: guards against a reused PID).
pid_of() {
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
    echo "$pid"
}

# Stops the processes whose PIDs are given: SIGTERM to all, then SIGKILL to those still
# alive after $STOP_TIMEOUT seconds (default 20).
stop_pid() {
    local pid deadline=$((SECONDS + ${STOP_TIMEOUT:-20})) alive
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    while :; do
        alive=()
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then
                alive+=("$pid")
            fi
        done
        [ "${#alive[@]}" -eq 0 ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "pid ${alive[*]} did not stop within ${STOP_TIMEOUT:-20}s; sending SIGKILL"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            sleep 0.5
            return 0
        fi
        sleep 0.1
    done
}

# Prints the last lines of each non-empty file given.
print_log_tails() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            log "last lines of $f:"
            tail -n 30 "$f" >&2
        fi
    done
}

# --- configs --------------------------------------------------------------------------

# Prints the users config a private server should use: the package's users.xml as is, or a
# minimal one written into the directory $1 when that is not readable (e.g. a server
# installed some other way).
clickhouse_users_config() {
    if [ -r /etc/clickhouse-server/users.xml ]; then
        echo /etc/clickhouse-server/users.xml
        return
    fi
    cat >"$1/users.xml" <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
EOF
    echo "$1/users.xml"
}
