#!/usr/bin/env bash
# Checks the deploy kit without running it: the Prometheus alerting rules and their unit tests,
# the compose stack's Prometheus configuration, the compose file, the Grafana dashboard (JSON,
# panels, every query parses as PromQL) and Grafana's provisioning files. One line per check.
#
# Usage: scripts/check-deploy.sh
#
# Needs promtool (Debian package `prometheus`), docker-compose (Debian package `docker-compose`;
# `config` needs no container engine) and python3 with PyYAML (`python3-yaml`); scripts/test.sh
# installs them when missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in promtool docker-compose python3; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "check-deploy: $tool not found (scripts/test.sh installs it)" >&2
        exit 1
    }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Runs a check quietly; prints "ok: <what>" or its output and fails.
check() {
    local what="$1"
    shift
    if "$@" >"$tmp/out" 2>&1; then
        echo "ok: $what"
    else
        echo "FAILED: $what" >&2
        sed 's/^/    /' "$tmp/out" >&2
        exit 1
    fi
}

rules=deploy/prometheus/alerts.yml
alerts="$(grep -c '^ *- alert:' "$rules")"
check "promtool check rules $rules ($alerts alerts)" promtool check rules "$rules"
check "promtool test rules deploy/prometheus/alerts_test.yml" \
    promtool test rules deploy/prometheus/alerts_test.yml

# The compose stack mounts its prometheus.yml and the rules side by side in /etc/prometheus.
cp deploy/compose/prometheus.yml "$rules" "$tmp/"
check "promtool check config deploy/compose/prometheus.yml (with $rules beside it)" \
    promtool check config "$tmp/prometheus.yml"

compose=deploy/compose/docker-compose.yml
check "docker-compose config ($compose)" docker-compose -f "$compose" config -q
check "$compose: every bind-mounted file exists" python3 - "$compose" <<'PY'
import os, sys, yaml
path = sys.argv[1]
base = os.path.dirname(path)
spec = yaml.safe_load(open(path))
missing = []
for name, service in spec["services"].items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith((".", "/")) and not os.path.exists(os.path.join(base, source)):
            missing.append(f"{name}: {source}")
    build = service.get("build")
    if build and not os.path.exists(os.path.join(base, build["context"], build["dockerfile"])):
        missing.append(f"{name}: {build['dockerfile']}")
if missing:
    sys.exit("missing: " + ", ".join(missing))
PY

dashboard=deploy/grafana/adjust-sink.json
# Every query of the dashboard, with Grafana's variables replaced, as a recording rule for promtool.
check "$dashboard parses as JSON" python3 - "$dashboard" "$tmp/dashboard_rules.yml" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
exprs = []
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "expr" and isinstance(x, str):
                exprs.append(x)
            else:
                walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
walk(dashboard)
subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$job": ".*", "$instance": ".*"}
rules = []
for i, e in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    rules.append({"record": f"dashboard:query_{i}", "expr": e})
with open(sys.argv[2], "w") as f:
    json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
PY
panels="$(python3 -c '
import json, sys
def count(ps):
    return sum(count(p.get("panels", [])) if p.get("type") == "row" else 1 for p in ps)
print(count(json.load(open(sys.argv[1]))["panels"]))' "$dashboard")"
queries="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["groups"][0]["rules"]))' "$tmp/dashboard_rules.yml")"
if [ "$panels" -lt 8 ]; then
    echo "FAILED: $dashboard has $panels panels (at least 8 expected)" >&2
    exit 1
fi
check "$dashboard: $panels panels, its $queries queries parse as PromQL (promtool)" \
    promtool check rules "$tmp/dashboard_rules.yml"

check "Grafana provisioning (datasource, dashboard provider) parses" python3 - <<'PY'
import yaml
ds = yaml.safe_load(open("deploy/grafana/provisioning/datasources/prometheus.yml"))
assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus", ds
dp = yaml.safe_load(open("deploy/grafana/provisioning/dashboards/adjust-sink.yml"))
assert dp["apiVersion"] == 1 and dp["providers"][0]["options"]["path"], dp
PY

echo "deploy kit: all checks passed"
