#!/usr/bin/env bash
# Checks the Kubernetes manifests offline (no cluster needed).
#
# Usage: scripts/check-kubernetes.sh [FILE...]   (default: deploy/kubernetes/*.yaml)
#
#   1. Schema: every document validates strictly (unknown fields are errors) against the
#      Kubernetes API schemas of the oldest and newest versions checked, with the
#      `kubernetes-validate` package in a virtualenv under target/k8s-venv.
#   2. Consistency: selectors match the pod labels, the StatefulSet's serviceName is a
#      headless Service, probe and Service ports name container ports, volume mounts
#      exist, referenced ConfigMaps exist, and every ADJUST_SINK_* variable a container
#      gets is an option of the subcommand it runs (read from `adjust-sink <cmd> --help`).
#
# Environment:
#   ADJUST_SINK_BIN  adjust-sink binary whose --help is read (default: `cargo run -q --`)
#   PYTHON           interpreter used to create the virtualenv (default python3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="$PWD/target/k8s-venv"
PACKAGE="kubernetes-validate==1.37.0"
KUBERNETES_VERSIONS=(1.27.0 1.34.0)
PY="${PYTHON:-python3}"

log() { echo "check-kubernetes.sh: $*" >&2; }

if [ "$#" -gt 0 ]; then
    files=("$@")
else
    files=(deploy/kubernetes/*.yaml)
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root (or sudo) to run: $*"
        exit 1
    fi
}

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    if ! "$PY" -c 'import ensurepip' >/dev/null 2>&1; then
        log "installing python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        as_root apt-get install -y -q python3-venv >&2 ||
            { as_root apt-get update -q >&2 && as_root apt-get install -y -q python3-venv >&2; }
    fi
    log "creating $VENV with $PACKAGE"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$PACKAGE" >&2
fi

echo "==> schema (kubernetes-validate --strict, Kubernetes ${KUBERNETES_VERSIONS[*]})"
for version in "${KUBERNETES_VERSIONS[@]}"; do
    "$VENV/bin/kubernetes-validate" --strict --no-warn --quiet -k "$version" "${files[@]}"
    echo "ok: ${files[*]} against $version"
done

echo "==> consistency"
if [ -n "${ADJUST_SINK_BIN:-}" ]; then
    bin=("$ADJUST_SINK_BIN")
else
    export PATH="$HOME/.cargo/bin:$PATH"
    bin=(cargo run -q --)
fi
help_dir="$(mktemp -d)"
trap 'rm -rf "$help_dir"' EXIT
for cmd in serve migrate replay check; do
    "${bin[@]}" "$cmd" --help >"$help_dir/$cmd"
done

# PyYAML comes with kubernetes-validate.
"$VENV/bin/python" - "$help_dir" "${files[@]}" <<'EOF'
import os
import re
import sys

import yaml

help_dir, files = sys.argv[1], sys.argv[2:]
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def env_options(cmd):
    """ADJUST_SINK_* variables the subcommand reads (from its --help)."""
    path = os.path.join(help_dir, cmd)
    if not os.path.exists(path):
        return None
    text = " ".join(open(path).read().split())
    return set(re.findall(r"\[env: ?(ADJUST_SINK_[A-Z0-9_]+)", text))


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


for path in files:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}
    services = by_kind.get("Service", [])

    workloads = by_kind.get("StatefulSet", []) + by_kind.get("Deployment", []) + by_kind.get("Job", [])
    pod_labels = []
    for w in workloads:
        where = f"{path}: {w['kind']} {w['metadata']['name']}"
        spec = w["spec"]
        tmpl = spec["template"]
        labels = tmpl["metadata"].get("labels", {})
        if w["kind"] != "Job":
            pod_labels.append((where, labels))
            if not matches(spec["selector"]["matchLabels"], labels):
                problem(where, "selector does not match the pod template labels")
        if w["kind"] == "StatefulSet":
            headless = [s for s in services if s["metadata"]["name"] == spec.get("serviceName")]
            if not headless or headless[0]["spec"].get("clusterIP") != "None":
                problem(where, f"serviceName {spec.get('serviceName')!r} is not a headless Service here")
            for c in tmpl["spec"].get("topologySpreadConstraints", []):
                if not matches(c["labelSelector"]["matchLabels"], labels):
                    problem(where, "a topology spread selector does not match the pods")
        volumes = {v["name"] for v in tmpl["spec"].get("volumes", [])}
        volumes |= {v["metadata"]["name"] for v in spec.get("volumeClaimTemplates", [])}
        for c in tmpl["spec"]["containers"] + tmpl["spec"].get("initContainers", []):
            cw = f"{where} container {c['name']}"
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and isinstance(port, str) and port not in ports:
                    problem(cw, f"{probe} uses port {port!r}, not a container port")
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    problem(cw, f"mounts unknown volume {m['name']!r}")
            names = [e["name"] for e in c.get("env", [])]
            for ref in c.get("envFrom", []):
                cm = ref.get("configMapRef", {}).get("name")
                if cm is not None:
                    if cm not in config_maps:
                        problem(cw, f"ConfigMap {cm!r} is not defined here")
                    names += list(config_maps.get(cm, {}))
            args = c.get("args") or []
            cmd = args[0] if args else "serve"
            known = env_options(cmd)
            if known is None:
                problem(cw, f"unknown subcommand {cmd!r}")
                continue
            for name in names:
                if name.startswith("ADJUST_SINK_") and name not in known:
                    problem(cw, f"{name} is not an option of `adjust-sink {cmd}`")
            scrape = tmpl["metadata"].get("annotations", {}).get("prometheus.io/port")
            if scrape and scrape not in {str(p["containerPort"]) for p in c.get("ports", [])}:
                problem(cw, f"prometheus.io/port {scrape} is not a container port")

    container_ports = set()
    for w in workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            container_ports |= {p.get("name") for p in c.get("ports", [])}
    for d in services + by_kind.get("PodDisruptionBudget", []):
        where = f"{path}: {d['kind']} {d['metadata']['name']}"
        sel = d["spec"].get("selector", {})
        sel = sel.get("matchLabels", sel) if d["kind"] == "PodDisruptionBudget" else sel
        if not any(matches(sel, labels) for _, labels in pod_labels):
            problem(where, "selects no pods of this file")
        for p in d["spec"].get("ports", []):
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in container_ports:
                problem(where, f"targetPort {p['targetPort']!r} is not a container port")
    print(f"ok: {path} ({', '.join(sorted(f'{len(v)} {k}' for k, v in by_kind.items()))})"
          if not problems else f"checked {path}")

if problems:
    for p in problems:
        print(f"FAIL {p}")
    sys.exit(1)
EOF
echo "==> Kubernetes manifests OK"
