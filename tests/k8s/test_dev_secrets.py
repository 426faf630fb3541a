"""deploy/k8s/dev-secrets.sh makes exactly the Secrets and ConfigMap the manifests reference.

Runs the script for real (openssl) in print mode, and in --apply mode against a fake kubectl that
keeps "cluster" state in a file, to check that re-running keeps passwords and keys.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flashline_auth import KeySet


def _load_module(name: str, path: Path):
    """Import a helper beside this file (works with any pytest import mode)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


manifests = _load_module("flashline_k8s_manifests", Path(__file__).resolve().parent / "manifests.py")

from flashline_k8s_manifests import all_containers, of_kind, pod_spec, rendered_docs, workloads  # noqa: E402

SERVICES = ("catalog", "orders", "cart")
DEV_SECRETS = manifests.REPO_ROOT / "deploy" / "k8s" / "dev-secrets.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("bash") is None, reason="needs bash and openssl"
)
needs_kubectl = pytest.mark.skipif(manifests.kubectl() is None, reason="kubectl is not installed")


def referenced_secrets_and_configmaps(docs: list[dict]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(secret, key) and (configmap, key) pairs the workloads and operators read, not made by kustomize."""
    secrets: set[tuple[str, str]] = set()
    configmaps: set[tuple[str, str]] = set()
    rendered_cms = {d["metadata"]["name"] for d in of_kind(docs, "ConfigMap")}
    for doc in workloads(docs):
        spec = pod_spec(doc)
        for c in all_containers(spec):
            for item in c.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secrets.add((ref["name"], ref["key"]))
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"].get("items", [{"key": "*"}]):
                    secrets.add((volume["secret"]["secretName"], item["key"]))
            if "configMap" in volume and volume["configMap"]["name"] not in rendered_cms:
                for item in volume["configMap"].get("items", [{"key": "*"}]):
                    configmaps.add((volume["configMap"]["name"], item["key"]))
    for cluster in of_kind(docs, "Cluster"):
        name = cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"]
        secrets |= {(name, "username"), (name, "password")}
    for user in of_kind(docs, "User"):
        name = user["spec"]["importCredentialsSecret"]["name"]
        secrets |= {(name, "username"), (name, "password")}
    return secrets, configmaps


def run_dev_secrets(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEV_SECRETS), *args], capture_output=True, text=True, env=env, check=False)


@needs_kubectl
def test_dev_secrets_cover_every_reference():
    result = run_dev_secrets()
    assert result.returncode == 0, result.stderr
    made = manifests.load(result.stdout)
    docs = rendered_docs("dev")
    secrets, configmaps = referenced_secrets_and_configmaps(docs)
    made_secrets = {(d["metadata"]["name"], k) for d in made if d["kind"] == "Secret" for k in d["data"]}
    made_cms = {(d["metadata"]["name"], k) for d in made if d["kind"] == "ConfigMap" for k in d["data"]}
    assert secrets - made_secrets == set()
    assert configmaps - made_cms == set()
    assert all(d["metadata"]["namespace"] == "flashline-dev" for d in made)

    values = {
        d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
        for d in made
        if d["kind"] == "Secret"
    }
    vhost = of_kind(docs, "Vhost")[0]["spec"]["name"]
    for svc in SERVICES:
        url = urlsplit(values[f"{svc}-runtime"]["database-url"])
        assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql+asyncpg", f"{svc}-db-rw", 5432, f"/{svc}")
        assert url.password == values[f"{svc}-db-credentials"]["password"]
        amqp = urlsplit(values[f"{svc}-runtime"]["amqp-url"])
        assert (amqp.hostname, amqp.port, amqp.path, amqp.username) == ("rabbitmq", 5672, f"/{vhost}", svc)
        assert amqp.password == values[f"{svc}-rabbitmq-credentials"]["password"]
        assert "BEGIN PRIVATE KEY" in values[f"{svc}-signing-key"]["signing-key.pem"]
    assert urlsplit(values["push-gateway-runtime"]["amqp-url"]).path == f"/{vhost}"


def test_dev_secrets_trusted_keys_match_the_signing_keys():
    cryptography = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    made = manifests.load(run_dev_secrets().stdout)
    key_set = json.loads(next(d for d in made if d["kind"] == "ConfigMap")["data"]["trusted-keys.json"])
    by_kid = {k["kid"]: k for k in key_set["keys"]}
    for doc in (d for d in made if d["kind"] == "Secret" and d["metadata"]["name"].endswith("signing-key")):
        pem = base64.b64decode(doc["data"]["signing-key.pem"])
        kid = base64.b64decode(doc["data"]["kid"]).decode()
        private = cryptography.load_pem_private_key(pem, password=None)
        public = private.public_key().public_bytes(
            cryptography.Encoding.PEM, cryptography.PublicFormat.SubjectPublicKeyInfo
        )
        assert by_kid[kid]["public_key_pem"] == public.decode()
        assert by_kid[kid]["alg"] == ("RS256" if kid.startswith("dev-identity") else "EdDSA")
    KeySet.from_json(key_set)  # what every pod loads: each key matches its algorithm
    grants = {k["iss"]: k["namespaces"] for k in key_set["keys"]}
    assert grants == {
        "flashline-identity": [],
        "flashline-catalog": ["stock"],
        "flashline-orders": ["order", "user", "tenant"],
        "flashline-cart": ["cart"],
    }


def test_dev_secrets_refuses_production():
    result = run_dev_secrets("--namespace", "flashline-prod")
    assert result.returncode != 0 and result.stdout == ""


def test_dev_secrets_apply_reuses_what_the_cluster_has(tmp_path):
    """--apply keeps existing passwords and keys (a database keeps its password); --rotate replaces them."""
    store, applied = tmp_path / "store.yaml", tmp_path / "applied.yaml"
    fake = tmp_path / "bin" / "kubectl"
    fake.parent.mkdir()
    fake.write_text(f"""#!{sys.executable}
import sys, yaml, shutil, pathlib
args = sys.argv[1:]
store, applied = pathlib.Path({str(store)!r}), pathlib.Path({str(applied)!r})
if "get" in args and "secret" in args:
    name = args[args.index("secret") + 1]
    key = [a for a in args if a.startswith("jsonpath=")][0][len("jsonpath={{.data."):-1].replace("\\\\.", ".")
    docs = list(yaml.safe_load_all(store.read_text())) if store.exists() else []
    for d in docs:
        if d and d["kind"] == "Secret" and d["metadata"]["name"] == name and key in d["data"]:
            print(d["data"][key], end="")
            sys.exit(0)
    sys.exit(1)
if "apply" in args:
    shutil.copy(args[args.index("-f") + 1], applied)
    sys.exit(0)
sys.exit(2)
""")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    assert run_dev_secrets("--apply", env=env).returncode == 0
    first = applied.read_text()
    store.write_text(first)
    assert run_dev_secrets("--apply", env=env).returncode == 0
    assert applied.read_text() == first
    assert run_dev_secrets("--apply", "--rotate", env=env).returncode == 0
    assert applied.read_text() != first
