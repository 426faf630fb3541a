"""Render the kustomize overlays and sort the objects into built-in kinds and known custom resources.

Used by the tests in this folder and, as a script, by ``make k8s-validate``:

    python tests/k8s/manifests.py build/k8s/dev.yaml build/k8s/prod.yaml

writes ``build/k8s/<env>.builtin.yaml`` next to each rendered file: only the objects of built-in
Kubernetes API groups, which kubernetes-validate then checks strictly. Custom resources have no
schema there; they are skipped *by name* (CUSTOM_KINDS), so an unknown kind, or a built-in kind
under a mistyped apiVersion, fails instead of slipping through as "custom".
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERLAYS_DIR = REPO_ROOT / "deploy" / "k8s" / "overlays"
OVERLAYS = ("dev", "prod")
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod")

# API groups served by Kubernetes itself ("" is the core group).
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "certificates.k8s.io",
        "node.k8s.io",
    }
)

# Custom resources this repository uses on purpose (operators must be installed in the cluster).
CUSTOM_KINDS = frozenset(
    {
        ("rabbitmq.com/v1beta1", "RabbitmqCluster"),  # RabbitMQ Cluster Operator
        ("rabbitmq.com/v1beta1", "Vhost"),  # RabbitMQ Messaging Topology Operator
        ("rabbitmq.com/v1beta1", "User"),
        ("rabbitmq.com/v1beta1", "Permission"),
        ("postgresql.cnpg.io/v1", "Cluster"),  # CloudNativePG
        ("monitoring.coreos.com/v1", "ServiceMonitor"),  # Prometheus Operator
        ("monitoring.coreos.com/v1", "PodMonitor"),
    }
)


class UnknownKindError(ValueError):
    """An object that is neither a built-in kind nor a known custom resource."""


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render(overlay: str) -> str:
    """``kubectl kustomize deploy/k8s/overlays/<overlay>`` as text."""
    exe = kubectl()
    if exe is None:
        raise FileNotFoundError("kubectl is not installed")
    result = subprocess.run(
        [exe, "kustomize", str(OVERLAYS_DIR / overlay)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed:\n{result.stderr}")
    return result.stdout


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> list[dict]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


def split(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(built-in objects, custom resources); UnknownKindError for anything else."""
    builtin, custom = [], []
    for doc in docs:
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        if (api_version, kind) in CUSTOM_KINDS:
            custom.append(doc)
        elif api_group(api_version) in BUILTIN_GROUPS:
            builtin.append(doc)
        else:
            name = doc.get("metadata", {}).get("name")
            raise UnknownKindError(
                f"{kind} {name} ({api_version}) is neither a built-in kind nor listed in CUSTOM_KINDS"
            )
    return builtin, custom


def write_builtin(rendered: Path) -> Path:
    """Write ``<stem>.builtin.yaml`` beside ``rendered``; print what was skipped and why."""
    builtin, custom = split(load(rendered.read_text()))
    out = rendered.with_name(f"{rendered.stem}.builtin.yaml")
    out.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
    for doc in custom:
        print(f"  skip (custom resource, no built-in schema): {doc['kind']}/{doc['metadata']['name']}")
    print(f"{rendered}: {len(builtin)} built-in objects -> {out}, {len(custom)} custom resources skipped")
    return out


# --- rendered once per overlay and test session; lookups on the parsed objects ---------------

_RENDERED: dict[str, str] = {}
_PARSED: dict[str, list[dict]] = {}


def rendered_text(env: str) -> str:
    if env not in _RENDERED:
        _RENDERED[env] = render(env)
    return _RENDERED[env]


def rendered_docs(env: str) -> list[dict]:
    """The parsed render, as a private copy the caller may mutate."""
    if env not in _PARSED:
        _PARSED[env] = load(rendered_text(env))
    return copy.deepcopy(_PARSED[env])


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((d for d in of_kind(docs, kind) if d["metadata"]["name"] == name), None)


def configmap(docs: list[dict], name: str) -> dict | None:
    """A ConfigMap by generator name (kustomize appends a content hash)."""
    pattern = re.compile(rf"^{re.escape(name)}(-[a-z0-9]{{10}})?$")
    return next((d for d in of_kind(docs, "ConfigMap") if pattern.match(d["metadata"]["name"])), None)


def pod_spec(doc: dict) -> dict:
    if doc["kind"] == "Pod":
        return doc["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    return doc["spec"]["template"]["metadata"].get("labels", {})


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in POD_KINDS]


def all_containers(spec: dict) -> Iterator[dict]:
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def container_env(docs: list[dict], container: dict) -> dict[str, str]:
    """Literal env of a container: envFrom ConfigMaps, then env values (secret refs as markers)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            cm = named(docs, "ConfigMap", ref["name"])
            values.update((cm or {}).get("data", {}))
    for item in container.get("env", []):
        values[item["name"]] = item.get("value", "<from valueFrom>")
    return values


def prestop_seconds(container: dict) -> int:
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    numbers = [int(x) for x in command if re.fullmatch(r"\d+", str(x))]
    return max(numbers, default=0)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    try:
        for path in argv:
            write_builtin(Path(path))
    except UnknownKindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
