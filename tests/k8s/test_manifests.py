"""The rendered deploy/k8s overlays (dev and prod) keep the promises deploy/README.md makes.

Each ``check_*`` function returns a list of problems (empty = fine). The tests assert that the real
render has none, and ``test_checks_catch_mutations`` feeds mutated copies to the same functions to
prove each check fails when the thing it guards is taken away. The overlays are rendered here with
``kubectl kustomize`` so that the tests stand alone; without kubectl they are skipped.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml


def _load_module(name: str, path: Path):
    """Import a helper beside this file (works with any pytest import mode)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_HERE = Path(__file__).resolve().parent
manifests = _load_module("flashline_k8s_manifests", _HERE / "manifests.py")
netpol = _load_module("flashline_k8s_netpol", _HERE / "netpol.py")

from flashline_k8s_manifests import (  # noqa: E402 - loaded by path just above
    all_containers,
    configmap,
    container_env,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    prestop_seconds,
    rendered_docs,
    rendered_text,
    workloads,
)
from flashline_k8s_netpol import Pod, pod_in, policy_types, selector_matches  # noqa: E402

SERVICES = {"catalog": 8001, "orders": 8002, "cart": 8003}
GATEWAY = "push-gateway"
GATEWAY_PORT = 8000
DB_PORT = 5432
AMQP_PORT = 5672

pytestmark = pytest.mark.skipif(manifests.kubectl() is None, reason="kubectl is not installed")


@pytest.fixture(params=manifests.OVERLAYS)
def env(request) -> str:
    return request.param


@pytest.fixture
def docs(env) -> list[dict]:
    """A fresh copy per test: tests may mutate it."""
    return rendered_docs(env)


# --------------------------------------------------------------------------------------------
# The pods of a Flashline namespace, and the ones around it, as network policies see them
# --------------------------------------------------------------------------------------------


def namespace_of(docs: list[dict]) -> str:
    return of_kind(docs, "Namespace")[0]["metadata"]["name"]


def workload_pods(docs: list[dict]) -> dict[str, Pod]:
    """Pods of the Deployments and Jobs, keyed by workload name."""
    pods = {}
    for doc in workloads(docs):
        ports = {
            p["name"]: p["containerPort"]
            for c in all_containers(pod_spec(doc))
            for p in c.get("ports", [])
            if "name" in p
        }
        name = doc["metadata"]["name"]
        pods[name] = pod_in(namespace_of(docs), name, pod_labels(doc), ports)
    return pods


def database_pods(docs: list[dict]) -> dict[str, Pod]:
    """Instance pods of each CNPG Cluster, labelled as the operator labels them."""
    pods = {}
    for cluster in of_kind(docs, "Cluster"):
        name = cluster["metadata"]["name"]
        labels = dict(cluster["spec"].get("inheritedMetadata", {}).get("labels", {}))
        labels.update({"cnpg.io/cluster": name, "cnpg.io/podRole": "instance", "role": "primary"})
        pods[name] = pod_in(namespace_of(docs), name, labels, {"postgresql": 5432, "metrics": 9187, "status": 8000})
    return pods


def broker_pods(docs: list[dict]) -> dict[str, Pod]:
    """Pods of each RabbitmqCluster, labelled as the Cluster Operator labels them."""
    labels = {"app.kubernetes.io/component": "rabbitmq", "app.kubernetes.io/part-of": "rabbitmq"}
    return {
        c["metadata"]["name"]: pod_in(
            namespace_of(docs),
            c["metadata"]["name"],
            {**labels, "app.kubernetes.io/name": c["metadata"]["name"]},
            {"amqp": 5672, "management": 15672, "prometheus": 15692},
        )
        for c in of_kind(docs, "RabbitmqCluster")
    }


INGRESS_CONTROLLER = pod_in("ingress-nginx", "ingress-nginx-controller", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = pod_in("monitoring", "prometheus", {"app.kubernetes.io/name": "prometheus"})
KUBE_DNS = pod_in("kube-system", "coredns", {"k8s-app": "kube-dns"}, {"dns": 53})
STRANGER_ELSEWHERE = pod_in("default", "stranger", {"app": "stranger"})


def stranger_inside(docs: list[dict]) -> Pod:
    return pod_in(namespace_of(docs), "debug-shell", {"app": "debug-shell"})


def _policies(docs: list[dict]) -> list[dict]:
    return of_kind(docs, "NetworkPolicy")


def ingress_allowed(docs: list[dict], dst: Pod, src: Pod, port: int, protocol: str = "TCP") -> bool:
    return netpol.ingress_allowed(_policies(docs), dst, src, port, protocol)


def egress_allowed(docs: list[dict], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    return netpol.egress_allowed(_policies(docs), src, dst, port, protocol)


def connection_allowed(docs: list[dict], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    return netpol.connection_allowed(_policies(docs), src, dst, port, protocol)


# --------------------------------------------------------------------------------------------
# Checks: each returns a list of problems
# --------------------------------------------------------------------------------------------


def check_resources(docs: list[dict]) -> list[str]:
    problems = []
    for doc in workloads(docs):
        for c in all_containers(pod_spec(doc)):
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in res.get(part, {}):
                        problems.append(f"{doc['kind']}/{doc['metadata']['name']}/{c['name']}: no {part}.{resource}")
    return problems


def check_security_context(docs: list[dict]) -> list[str]:
    problems = []
    for doc in workloads(docs):
        spec = pod_spec(doc)
        pod_sc = spec.get("securityContext", {})
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service account token it does not need")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{where}: shares a host namespace")
        for c in all_containers(spec):
            sc = c.get("securityContext", {})
            name = f"{where}/{c['name']}"
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
                problems.append(f"{name}: runAsNonRoot is not true")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append(f"{name}: runs as uid 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{name}: privileged")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{name}: capabilities do not drop ALL")
            if sc.get("capabilities", {}).get("add"):
                problems.append(f"{name}: adds capabilities")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    return problems


def check_service_links(docs: list[dict]) -> list[str]:
    """Service links would inject CATALOG_PORT=tcp://... and clash with the <P>PORT settings."""
    return [
        f"{d['kind']}/{d['metadata']['name']}: enableServiceLinks is not false"
        for d in workloads(docs)
        if pod_spec(d).get("enableServiceLinks") is not False
    ]


def check_probes(docs: list[dict]) -> list[str]:
    problems = []
    for doc in of_kind(docs, "Deployment"):
        for c in pod_spec(doc)["containers"]:
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                http = c.get(probe, {}).get("httpGet")
                name = f"{doc['metadata']['name']}/{c['name']}"
                if not http:
                    problems.append(f"{name}: no HTTP {probe}")
                    continue
                if http.get("path") != path:
                    problems.append(f"{name}: {probe} on {http.get('path')}, not {path}")
                if http.get("port") not in ports and http.get("port") not in ports.values():
                    problems.append(f"{name}: {probe} port {http.get('port')} is not a container port")
    return problems


def expected_workloads() -> dict[str, tuple[str, int]]:
    """Deployment name -> (python module, HTTP port)."""
    wanted = {svc: (svc, port) for svc, port in SERVICES.items()}
    wanted[GATEWAY] = ("push_gateway", GATEWAY_PORT)
    return wanted


def check_workloads(docs: list[dict]) -> list[str]:
    """One Deployment, Service, ServiceAccount and ConfigMap per service, on the agreed ports."""
    problems = []
    for name, (_module, port) in expected_workloads().items():
        deployment = named(docs, "Deployment", name)
        if deployment is None:
            problems.append(f"no Deployment {name}")
            continue
        spec = pod_spec(deployment)
        container = spec["containers"][0]
        if not container.get("image", "").startswith(f"flashline/{name}"):
            problems.append(f"Deployment {name}: image {container.get('image')}")
        if port not in [p["containerPort"] for p in container.get("ports", [])]:
            problems.append(f"Deployment {name}: does not listen on {port}")
        if spec.get("serviceAccountName") != name or named(docs, "ServiceAccount", name) is None:
            problems.append(f"Deployment {name}: no own ServiceAccount")
        if configmap(docs, f"{name}-config") is None:
            problems.append(f"no ConfigMap {name}-config")
        service = named(docs, "Service", name)
        if service is None:
            problems.append(f"no Service {name}")
        else:
            if not selector_matches({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment)):
                problems.append(f"Service {name} does not select its pods")
            if port not in [p["port"] for p in service["spec"]["ports"]]:
                problems.append(f"Service {name}: no port {port}")
    return problems


def check_settings(docs: list[dict], environment: str) -> list[str]:
    """Every container sees FLASHLINE_ENV and its own prefixed settings."""
    problems = []
    for name in [*SERVICES, GATEWAY]:
        deployment = named(docs, "Deployment", name)
        if deployment is None:
            problems.append(f"no Deployment {name}")
            continue
        values = container_env(docs, pod_spec(deployment)["containers"][0])
        prefix = "GATEWAY_" if name == GATEWAY else f"{name.upper()}_"
        required = [
            "FLASHLINE_ENV",
            "FLASHLINE_TRUSTED_KEYS_FILE",
            f"{prefix}PORT",
            f"{prefix}HOST",
            f"{prefix}AMQP_URL",
        ]
        if name == GATEWAY:
            required += [
                "GATEWAY_ADMIN_API_KEY",
                "GATEWAY_DRAIN_SECONDS",
                "GATEWAY_MAX_CONNECTIONS",
                "GATEWAY_MAX_CONNECTS_PER_SECOND",
                "GATEWAY_NAMESPACES_FILE",
                "GATEWAY_POSITION_URLS",
            ]
        else:
            required += [f"{prefix}DATABASE_URL", f"{prefix}SIGNING_KEY_FILE", f"{prefix}SIGNING_KEY_ID"]
        problems += [f"{name}: {key} is not set" for key in required if key not in values]
        if values.get("FLASHLINE_ENV") != environment:
            problems.append(f"{name}: FLASHLINE_ENV={values.get('FLASHLINE_ENV')}, want {environment}")
        if values.get(f"{prefix}HOST") not in (None, "0.0.0.0"):
            problems.append(f"{name}: {prefix}HOST does not listen on all interfaces")
    return problems


def check_mounted_files(docs: list[dict]) -> list[str]:
    """Every ``*_FILE`` setting points into a volume mounted in that container, at a key it projects."""
    problems = []
    for doc in workloads(docs):
        spec = pod_spec(doc)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in all_containers(spec):
            mounts = [(m["mountPath"].rstrip("/") + "/", volumes.get(m["name"], {})) for m in c.get("volumeMounts", [])]
            for key, value in container_env(docs, c).items():
                if not key.endswith("_FILE"):
                    continue
                where = f"{doc['kind']}/{doc['metadata']['name']}/{c['name']}: {key}={value}"
                mount = next(((path, vol) for path, vol in mounts if value.startswith(path)), None)
                if mount is None:
                    problems.append(f"{where} is not in a mounted volume")
                    continue
                relative = value[len(mount[0]) :]
                source = mount[1].get("secret") or mount[1].get("configMap") or {}
                items = [item["path"] for item in source.get("items", [])]
                if items and relative not in items:
                    problems.append(f"{where}: the volume projects only {items}")
                if "configMap" in mount[1]:
                    cm = named(docs, "ConfigMap", mount[1]["configMap"]["name"])
                    if cm is not None and not items and relative not in cm.get("data", {}):
                        problems.append(f"{where}: ConfigMap {cm['metadata']['name']} has no key {relative}")
    return problems


def check_migrations(docs: list[dict]) -> list[str]:
    """A Job per service runs `python -m <svc> migrate`; no Deployment migrates at pod start."""
    problems = []
    for doc in of_kind(docs, "Deployment"):
        for c in all_containers(pod_spec(doc)):
            if "migrate" in [*c.get("command", []), *c.get("args", [])]:
                problems.append(f"Deployment {doc['metadata']['name']}: container {c['name']} runs migrations")
    jobs = of_kind(docs, "Job")
    for svc in SERVICES:
        deployment = named(docs, "Deployment", svc)
        image = pod_spec(deployment)["containers"][0]["image"] if deployment else None
        matching = [
            j
            for j in jobs
            if any(c.get("args") == ["migrate"] and c.get("image") == image for c in pod_spec(j)["containers"])
        ]
        if not matching:
            problems.append(f"no migration Job for {svc} (args ['migrate'] on image {image})")
        for job in matching:
            if pod_spec(job).get("restartPolicy") not in ("Never", "OnFailure"):
                problems.append(f"Job {job['metadata']['name']}: bad restartPolicy")
            if job["spec"].get("activeDeadlineSeconds") is None:
                problems.append(f"Job {job['metadata']['name']}: no activeDeadlineSeconds")
    return problems


def check_gateway_drain(docs: list[dict]) -> list[str]:
    deployment = named(docs, "Deployment", GATEWAY)
    if deployment is None:
        return ["no gateway Deployment"]
    spec = pod_spec(deployment)
    container = spec["containers"][0]
    problems = []
    drain = container_env(docs, container).get("GATEWAY_DRAIN_SECONDS")
    if drain is None:
        problems.append("GATEWAY_DRAIN_SECONDS is not set")
        drain = "20"  # the gateway's default
    pre_stop = prestop_seconds(container)
    if pre_stop <= 0:
        problems.append("the gateway has no preStop delay")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if not grace > int(drain) + pre_stop:
        problems.append(f"terminationGracePeriodSeconds {grace} <= drain {drain} + preStop {pre_stop}")
    if "replicas" in deployment["spec"]:
        problems.append("the gateway Deployment sets replicas (the HPA owns them)")
    return problems


def check_gateway_hpa(docs: list[dict]) -> list[str]:
    hpas = [
        h
        for h in of_kind(docs, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"].get("name") == GATEWAY
        and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
    ]
    if len(hpas) != 1:
        return [f"want one HPA targeting Deployment/{GATEWAY}, found {len(hpas)}"]
    hpa, problems = hpas[0], []
    if hpa["apiVersion"] != "autoscaling/v2":
        problems.append(f"HPA apiVersion {hpa['apiVersion']}")
    metrics = hpa["spec"].get("metrics", [])
    connections = [
        m for m in metrics if m.get("type") == "Pods" and m["pods"]["metric"]["name"] == "flashline_gateway_connections"
    ]
    if not connections:
        problems.append("HPA does not scale on the Pods metric flashline_gateway_connections")
    elif connections[0]["pods"]["target"].get("type") != "AverageValue":
        problems.append("connections target is not a per-pod AverageValue")
    if not any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in metrics):
        problems.append("HPA has no CPU fallback metric")
    scale_down = hpa["spec"].get("behavior", {}).get("scaleDown", {})
    if scale_down.get("stabilizationWindowSeconds", 300) < 300 or "stabilizationWindowSeconds" not in scale_down:
        problems.append("HPA has no scale-down stabilization window of at least 300 s")
    policies = scale_down.get("policies", [])
    if (
        not policies
        or any(p["type"] == "Percent" and p["value"] > 25 for p in policies)
        or any(p["type"] == "Pods" and p["value"] > 2 for p in policies)
    ):
        problems.append("HPA scale-down is not gentle (want small Pods/Percent steps)")
    if hpa["spec"].get("minReplicas", 1) < 1 or hpa["spec"]["maxReplicas"] <= hpa["spec"].get("minReplicas", 1):
        problems.append("HPA min/max replicas make no room to scale")
    return problems


def check_gateway_spread(docs: list[dict]) -> list[str]:
    deployment = named(docs, "Deployment", GATEWAY)
    if deployment is None:
        return ["no gateway Deployment"]
    keys = {
        c["topologyKey"]
        for c in pod_spec(deployment).get("topologySpreadConstraints", [])
        if selector_matches(c.get("labelSelector"), pod_labels(deployment))
    }
    return [
        f"gateway pods are not spread over {k}"
        for k in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        if k not in keys
    ]


def ingresses_for_service(docs: list[dict], service: str) -> list[tuple[dict, dict, dict]]:
    """(ingress, rule, path) triples whose backend is ``service``."""
    found = []
    for ing in of_kind(docs, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                if path["backend"].get("service", {}).get("name") == service:
                    found.append((ing, rule, path))
    return found


def check_gateway_ingress(docs: list[dict]) -> list[str]:
    routes = ingresses_for_service(docs, GATEWAY)
    if not routes:
        return ["no Ingress routes to the gateway"]
    problems = []
    for ing, _rule, path in routes:
        notes = ing["metadata"].get("annotations", {})
        for key in ("nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"):
            if int(notes.get(key, "60")) < 3600:
                problems.append(f"Ingress {ing['metadata']['name']}: {key} below 3600")
        if not "/connection/websocket".startswith(path["path"]):
            problems.append(f"Ingress {ing['metadata']['name']}: path {path['path']} misses /connection/websocket")
        if path["path"] in ("/", ""):
            problems.append(f"Ingress {ing['metadata']['name']}: exposes the whole gateway (metrics, admin)")
    return problems


def route_for(docs: list[dict], host: str, url_path: str) -> tuple[dict, dict] | None:
    """The (ingress, path) ingress-nginx would pick for host+path: the longest matching prefix."""
    best = None
    for ing in of_kind(docs, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            if rule.get("host") != host:
                continue
            for path in rule.get("http", {}).get("paths", []):
                prefix = path["path"]
                exact = path.get("pathType") == "Exact"
                hit = (
                    url_path == prefix
                    if exact
                    else (url_path == prefix or url_path.startswith(prefix.rstrip("/") + "/") or prefix == "/")
                )
                if hit and (best is None or len(prefix) > len(best[1]["path"])):
                    best = (ing, path)
    return best


def check_internal_paths_not_public(docs: list[dict]) -> list[str]:
    """/internal/* and /metrics of the services are not reachable through the ingress."""
    problems = []
    for svc in SERVICES:
        routes = ingresses_for_service(docs, svc)
        if not routes:
            problems.append(f"{svc}: no public Ingress")
        for host in {rule["host"] for _ing, rule, _path in routes}:
            for url_path in ("/internal/channels/stock:1", "/metrics"):
                route = route_for(docs, host, url_path)
                if route is None:
                    continue
                allow = (
                    route[0]["metadata"]
                    .get("annotations", {})
                    .get("nginx.ingress.kubernetes.io/whitelist-source-range", "")
                )
                if allow.strip() not in ("127.0.0.1/32", "::1/128"):
                    problems.append(f"{host}{url_path} is public (via Ingress {route[0]['metadata']['name']})")
    return problems


def check_pdbs(docs: list[dict]) -> list[str]:
    problems = []
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for name in [*SERVICES, GATEWAY]:
        deployment = named(docs, "Deployment", name)
        if deployment is None:
            problems.append(f"no Deployment {name}")
            continue
        covering = [p for p in pdbs if selector_matches(p["spec"]["selector"], pod_labels(deployment))]
        if not covering:
            problems.append(f"no PodDisruptionBudget covers {name}")
        for pdb in covering:
            if pdb["spec"].get("minAvailable") == "100%" or pdb["spec"].get("maxUnavailable") in (0, "0%"):
                problems.append(f"PDB {pdb['metadata']['name']} blocks every eviction")
    return problems


def check_no_secret_values(text: str) -> list[str]:
    problems = []
    for doc in manifests.load(text):
        if doc.get("kind") == "Secret":
            problems.append(
                f"Secret {doc['metadata']['name']} is rendered (with data: {sorted(doc.get('data', {}))}"
                f"{sorted(doc.get('stringData', {}))})"
            )
    if "PRIVATE KEY" in text:
        problems.append("a private key is in the rendered manifests")
    for match in re.finditer(r"[a-z][a-z0-9+.-]*://[^\s/:@\"']+:[^\s/@\"']+@", text):
        problems.append(f"credentials in a URL: {match.group(0)}")
    return problems


def check_network_policies(docs: list[dict]) -> list[str]:
    """The traffic rules of deploy/README.md, evaluated on modelled pods."""
    problems = []
    pods = workload_pods(docs)
    dbs = database_pods(docs)
    brokers = broker_pods(docs)
    stranger = stranger_inside(docs)

    def expect(allowed: bool, want: bool, what: str) -> None:
        if allowed != want:
            problems.append(f"{what}: {'allowed' if allowed else 'denied'}, want {'allowed' if want else 'denied'}")

    # default deny: a policy selecting every pod, both directions, no rule
    if not any(
        p["spec"]["podSelector"] == {}
        and set(policy_types(p)) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in of_kind(docs, "NetworkPolicy")
    ):
        problems.append("no default-deny NetworkPolicy (podSelector {}, Ingress+Egress, no rules)")
    expect(
        connection_allowed(docs, stranger, pods.get(GATEWAY, stranger), GATEWAY_PORT),
        False,
        "an unrelated pod -> gateway",
    )

    # each database: its own service (server + migration Job) only
    for svc in SERVICES:
        db = dbs.get(f"{svc}-db")
        if db is None:
            problems.append(f"no database Cluster {svc}-db")
            continue
        for name, pod in pods.items():
            own = pod.labels.get("app.kubernetes.io/name") == svc
            expect(ingress_allowed(docs, db, pod, DB_PORT), own, f"{name} -> {svc}-db (database side)")
            if own:
                expect(connection_allowed(docs, pod, db, DB_PORT), True, f"{name} -> {svc}-db")
        for outsider in (INGRESS_CONTROLLER, PROMETHEUS, STRANGER_ELSEWHERE, stranger, *brokers.values()):
            expect(ingress_allowed(docs, db, outsider, DB_PORT), False, f"{outsider.name} -> {svc}-db")
        for other in dbs.values():
            if other is not db:
                expect(ingress_allowed(docs, db, other, DB_PORT), False, f"{other.name} -> {svc}-db")

    # the broker: services and gateway only
    if not brokers:
        problems.append("no RabbitmqCluster")
    for broker in brokers.values():
        for name, pod in pods.items():
            component = pod.labels.get("app.kubernetes.io/component")
            want = component in ("server", "gateway")
            expect(ingress_allowed(docs, broker, pod, AMQP_PORT), want, f"{name} -> {broker.name} (broker side)")
            if want:
                expect(connection_allowed(docs, pod, broker, AMQP_PORT), True, f"{name} -> {broker.name}")
        for outsider in (INGRESS_CONTROLLER, STRANGER_ELSEWHERE, stranger, *dbs.values()):
            expect(ingress_allowed(docs, broker, outsider, AMQP_PORT), False, f"{outsider.name} -> {broker.name}")

    # clients through the ingress controller: the gateway and the services' HTTP ports, nothing else
    public = {GATEWAY: GATEWAY_PORT, **SERVICES}
    for name, port in public.items():
        if name in pods:
            expect(ingress_allowed(docs, pods[name], INGRESS_CONTROLLER, port), True, f"ingress -> {name}:{port}")
            expect(ingress_allowed(docs, pods[name], STRANGER_ELSEWHERE, port), False, f"other namespace -> {name}")
    for target in (*dbs.values(), *brokers.values()):
        for port in (DB_PORT, AMQP_PORT, 15672):
            expect(ingress_allowed(docs, target, INGRESS_CONTROLLER, port), False, f"ingress -> {target.name}:{port}")
    for name, pod in pods.items():
        if pod.labels.get("app.kubernetes.io/component") == "migration":
            expect(ingress_allowed(docs, pod, INGRESS_CONTROLLER, 8080), False, f"ingress -> {name}")

    # the gateway fetches channel positions from the services named in GATEWAY_POSITION_URLS
    gateway = pods.get(GATEWAY)
    if gateway is not None:
        urls = container_env(docs, pod_spec(named(docs, "Deployment", GATEWAY))["containers"][0]).get(
            "GATEWAY_POSITION_URLS", ""
        )
        for entry in filter(None, urls.split(",")):
            url = urlsplit(entry.partition("=")[2])
            target = pods.get(url.hostname)
            if target is None or named(docs, "Service", url.hostname) is None:
                problems.append(f"position URL {entry}: no such Service/Deployment")
                continue
            expect(connection_allowed(docs, gateway, target, url.port), True, f"gateway -> {entry}")

    # Prometheus scrapes /metrics on every workload's HTTP port
    for name in public:
        if name in pods:
            expect(
                ingress_allowed(docs, pods[name], PROMETHEUS, pods[name].ports.get("http", 0)),
                True,
                f"prometheus -> {name}",
            )

    # DNS from every pod
    for name, pod in [*pods.items(), *dbs.items(), *brokers.items()]:
        expect(egress_allowed(docs, pod, KUBE_DNS, 53, "UDP"), True, f"{name} -> DNS")
    return problems


def check_rabbitmq(docs: list[dict], environment: str) -> list[str]:
    problems = []
    clusters = of_kind(docs, "RabbitmqCluster")
    if len(clusters) != 1:
        return [f"want one RabbitmqCluster, found {len(clusters)}"]
    cluster = clusters[0]
    if cluster["apiVersion"] != "rabbitmq.com/v1beta1":
        problems.append(f"RabbitmqCluster apiVersion {cluster['apiVersion']}")
    replicas = cluster["spec"].get("replicas", 1)
    if environment == "prod" and replicas != 3:
        problems.append(f"prod RabbitmqCluster has {replicas} replicas, want 3")
    if replicas % 2 == 0:
        problems.append("an even number of broker nodes cannot keep a quorum majority")
    if "rabbitmq_prometheus" not in cluster["spec"].get("rabbitmq", {}).get("additionalPlugins", []):
        problems.append("rabbitmq_prometheus is not listed")
    vhosts = [v["spec"]["name"] for v in of_kind(docs, "Vhost")]
    if vhosts != [f"flashline-{environment}"]:
        problems.append(f"vhosts {vhosts}, want ['flashline-{environment}']")
    users = {u["metadata"]["name"] for u in of_kind(docs, "User")}
    for name in [*SERVICES, GATEWAY]:
        if name not in users:
            problems.append(f"no broker User for {name}")
    for permission in of_kind(docs, "Permission"):
        if permission["spec"]["vhost"] not in vhosts:
            problems.append(f"Permission {permission['metadata']['name']} on vhost {permission['spec']['vhost']}")
    return problems


def check_databases(docs: list[dict]) -> list[str]:
    problems = []
    clusters = {c["metadata"]["name"]: c for c in of_kind(docs, "Cluster")}
    if sorted(clusters) != sorted(f"{s}-db" for s in SERVICES):
        problems.append(f"database clusters {sorted(clusters)}, want one per service")
    for svc in SERVICES:
        cluster = clusters.get(f"{svc}-db")
        if cluster is None:
            continue
        if cluster["apiVersion"] != "postgresql.cnpg.io/v1":
            problems.append(f"{svc}-db apiVersion {cluster['apiVersion']}")
        initdb = cluster["spec"].get("bootstrap", {}).get("initdb", {})
        if (initdb.get("database"), initdb.get("owner")) != (svc, svc):
            problems.append(f"{svc}-db does not create database and role {svc}")
        if initdb.get("secret", {}).get("name") != f"{svc}-db-credentials":
            problems.append(f"{svc}-db owner password is not from the Secret {svc}-db-credentials")
        if cluster["spec"].get("enableSuperuserAccess"):
            problems.append(f"{svc}-db exposes the superuser")
    return problems


def check_namespace(docs: list[dict], environment: str) -> list[str]:
    want = f"flashline-{environment}"
    problems = [
        f"{d['kind']}/{d['metadata']['name']} in namespace {d['metadata'].get('namespace')}"
        for d in docs
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != want
    ]
    namespaces = of_kind(docs, "Namespace")
    if [n["metadata"]["name"] for n in namespaces] != [want]:
        problems.append(f"Namespace objects {[n['metadata']['name'] for n in namespaces]}, want [{want}]")
    return problems


# --------------------------------------------------------------------------------------------
# Tests on the real render
# --------------------------------------------------------------------------------------------


def test_overlays_render_only_known_kinds(docs):
    builtin, custom = manifests.split(docs)
    assert builtin and custom


def test_workloads(docs):
    assert check_workloads(docs) == []


def test_settings(docs, env):
    assert check_settings(docs, {"dev": "development", "prod": "production"}[env]) == []


def test_settings_files_are_mounted(docs):
    assert check_mounted_files(docs) == []


SECRET_STAND_INS = {  # what the Secrets hold, in form (values are never rendered)
    "database-url": "postgresql+asyncpg://svc:pw@svc-db-rw:5432/svc",
    "amqp-url": "amqp://svc:pw@rabbitmq:5672/flashline-prod",
    "kid": "prod-key-1",
    "admin-api-key": "an-admin-key",
    "internal-api-key": "an-internal-key",
}


def production_environ(container: dict, docs: list[dict]) -> dict[str, str]:
    environ = {k: v for k, v in container_env(docs, container).items() if v != "<from valueFrom>"}
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            environ[item["name"]] = SECRET_STAND_INS[ref["key"]]
    return environ


def test_gateway_settings_accept_the_production_environment(monkeypatch):
    """The gateway's own Settings load from exactly what the prod Deployment provides."""
    settings_module = pytest.importorskip("push_gateway.settings")
    docs = rendered_docs("prod")
    container = pod_spec(named(docs, "Deployment", GATEWAY))["containers"][0]
    for key in list(os.environ):
        if key.startswith(("GATEWAY_", "FLASHLINE_")):
            monkeypatch.delenv(key)
    for key, value in production_environ(container, docs).items():
        monkeypatch.setenv(key, value)
    settings = settings_module.Settings()
    assert (settings.env, settings.host, settings.port) == ("production", "0.0.0.0", GATEWAY_PORT)
    assert (
        settings.drain_seconds + prestop_seconds(container)
        < pod_spec(named(docs, "Deployment", GATEWAY))["terminationGracePeriodSeconds"]
    )
    assert settings.admin_api_key == "an-admin-key" and settings.internal_api_key == "an-internal-key"
    assert settings.namespaces_file and settings.trusted_keys_file.startswith("/etc/flashline/")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_service_settings_accept_the_production_environment(service, monkeypatch):
    """The shared ServiceSettings (production refuses anything missing) load from the prod Deployment's env."""
    base = pytest.importorskip("flashline_service.settings")
    from pydantic_settings import SettingsConfigDict

    class Settings(base.ServiceSettings):
        model_config = SettingsConfigDict(env_prefix=f"{service.upper()}_", extra="ignore", populate_by_name=True)
        service_name: str = service

    docs = rendered_docs("prod")
    for deployment in (named(docs, "Deployment", service), named(docs, "Job", f"{service}-migrate")):
        container = pod_spec(deployment)["containers"][0]
        for key in list(os.environ):
            if key.startswith((f"{service.upper()}_", "FLASHLINE_")):
                monkeypatch.delenv(key)
        for key, value in production_environ(container, docs).items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert (settings.environment, settings.host, settings.port) == ("production", "0.0.0.0", SERVICES[service])
        assert str(settings.signing_key_file).startswith("/var/run/secrets/flashline/")
        assert settings.database_url.startswith("postgresql+asyncpg://")


def test_every_container_has_requests_and_limits(docs):
    assert check_resources(docs) == []


def test_every_container_is_locked_down(docs):
    assert check_security_context(docs) == []


def test_no_service_links(docs):
    assert check_service_links(docs) == []


def test_deployments_probe_the_health_endpoints(docs):
    assert check_probes(docs) == []


def test_migrations_run_in_jobs_not_at_pod_start(docs):
    assert check_migrations(docs) == []


def test_gateway_grace_period_covers_prestop_and_drain(docs):
    assert check_gateway_drain(docs) == []


def test_gateway_autoscales_on_connections_with_cpu_fallback(docs):
    assert check_gateway_hpa(docs) == []


def test_gateway_spreads_over_zones_and_hosts(docs):
    assert check_gateway_spread(docs) == []


def test_gateway_ingress_keeps_websockets_open(docs):
    assert check_gateway_ingress(docs) == []


def test_internal_paths_are_not_public(docs):
    assert check_internal_paths_not_public(docs) == []


def test_every_workload_has_a_disruption_budget(docs):
    assert check_pdbs(docs) == []


def test_network_policies(docs):
    assert check_network_policies(docs) == []


def test_rabbitmq(docs, env):
    assert check_rabbitmq(docs, env) == []


def test_databases(docs):
    assert check_databases(docs) == []


def test_namespace(docs, env):
    assert check_namespace(docs, env) == []


def test_no_secret_values_rendered(env):
    assert check_no_secret_values(rendered_text(env)) == []


def test_prod_images_are_pinned():
    for doc in workloads(rendered_docs("prod")):
        for c in all_containers(pod_spec(doc)):
            image = c["image"]
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            assert "@sha256:" in image or (tag and tag != "latest"), f"{doc['metadata']['name']}: {image}"


def test_gateway_namespaces_file_loads():
    """The namespaces ConfigMap parses with the gateway's own loader (when the gateway is importable)."""
    module = pytest.importorskip("push_gateway.namespaces")
    docs = rendered_docs("prod")
    cm = configmap(docs, "push-gateway-namespaces")
    path_env = container_env(docs, pod_spec(named(docs, "Deployment", GATEWAY))["containers"][0])
    file_name = Path(path_env["GATEWAY_NAMESPACES_FILE"]).name
    assert file_name in cm["data"]
    position_urls = module.parse_position_urls(path_env["GATEWAY_POSITION_URLS"])
    overrides = yaml.safe_load(cm["data"][file_name])["namespaces"]
    table = module.Namespaces.build(overrides, position_urls)
    assert {ns.name for ns in table} >= {"stock", "order", "cart", "user", "tenant"}
    assert all(ns.position_url for ns in table if ns.recoverable)


# --------------------------------------------------------------------------------------------
# The checks fail when what they guard is taken away
# --------------------------------------------------------------------------------------------


def _container(docs, kind, name, index=0, init=False):
    spec = pod_spec(named(docs, kind, name))
    return spec["initContainers" if init else "containers"][index]


def _drop(mapping: dict, *path: str) -> None:
    for key in path[:-1]:
        mapping = mapping[key]
    del mapping[path[-1]]


def _add_init_container(docs):
    spec = pod_spec(named(docs, "Deployment", "orders"))
    extra = copy.deepcopy(spec["containers"][0])
    extra["name"] = "wait"
    del extra["resources"]["limits"]
    spec["initContainers"] = [extra]


def _policy(docs, name):
    return named(docs, "NetworkPolicy", name)


def _open_db_to_namespace(docs):
    _policy(docs, "catalog-db")["spec"]["ingress"][0]["from"].append({"podSelector": {}})


def _drop_db_policy(docs):
    docs.remove(_policy(docs, "orders-db"))


def _open_broker(docs):
    _policy(docs, "rabbitmq")["spec"]["ingress"][0]["from"][0] = {"podSelector": {}}


def _drop_default_deny(docs):
    docs.remove(_policy(docs, "default-deny-all"))


def _block_gateway_positions(docs):
    egress = _policy(docs, GATEWAY)["spec"]["egress"]
    egress[:] = [rule for rule in egress if all(p.get("port") != 8002 for p in rule.get("ports", []))]


def _drop_dns(docs):
    docs.remove(_policy(docs, "allow-dns-egress"))


def _open_gateway_to_everyone(docs):
    _policy(docs, GATEWAY)["spec"]["ingress"].append({})


def _add_literal_secret(docs):
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "oops", "namespace": "x"},
            "stringData": {"password": "hunter2"},
        }
    )


def _break_drain(docs):
    pod_spec(named(docs, "Deployment", GATEWAY))["terminationGracePeriodSeconds"] = 20


def _raise_drain(docs):
    cm = configmap(docs, "push-gateway-config")
    cm["data"]["GATEWAY_DRAIN_SECONDS"] = "60"


def _hpa(docs):
    return next(h for h in of_kind(docs, "HorizontalPodAutoscaler"))


def _hpa_cpu_only(docs):
    _hpa(docs)["spec"]["metrics"] = [m for m in _hpa(docs)["spec"]["metrics"] if m["type"] == "Resource"]


def _hpa_no_cpu(docs):
    _hpa(docs)["spec"]["metrics"] = [m for m in _hpa(docs)["spec"]["metrics"] if m["type"] == "Pods"]


def _internal_route_public(docs):
    named(docs, "Ingress", "cart-internal-paths")["metadata"]["annotations"].clear()


def _drop_internal_route(docs):
    docs.remove(named(docs, "Ingress", "catalog-internal-paths"))


def _migrate_at_start(docs):
    spec = pod_spec(named(docs, "Deployment", "catalog"))
    init = copy.deepcopy(spec["containers"][0])
    init.update(name="migrate", args=["migrate"])
    spec["initContainers"] = [init]


def _drop_job(docs):
    docs.remove(named(docs, "Job", "cart-migrate"))


MUTATIONS: dict[str, tuple[Callable[[list], object], Callable[[list], list[str]]]] = {
    "limits removed": (lambda d: _drop(_container(d, "Deployment", "catalog"), "resources", "limits"), check_resources),
    "requests removed from a Job": (
        lambda d: _drop(_container(d, "Job", "orders-migrate"), "resources", "requests"),
        check_resources,
    ),
    "init container without limits": (_add_init_container, check_resources),
    "runAsNonRoot removed": (
        lambda d: (
            _drop(_container(d, "Deployment", "cart"), "securityContext", "runAsNonRoot"),
            _drop(pod_spec(named(d, "Deployment", "cart")), "securityContext", "runAsNonRoot"),
        ),
        check_security_context,
    ),
    "writable root filesystem": (
        lambda d: _drop(_container(d, "Job", "catalog-migrate"), "securityContext", "readOnlyRootFilesystem"),
        check_security_context,
    ),
    "privilege escalation": (
        lambda d: _container(d, "Deployment", GATEWAY)["securityContext"].update(allowPrivilegeEscalation=True),
        check_security_context,
    ),
    "capabilities kept": (
        lambda d: _container(d, "Deployment", "orders")["securityContext"]["capabilities"].update(drop=[]),
        check_security_context,
    ),
    "no seccomp": (
        lambda d: (
            _drop(_container(d, "Deployment", "orders"), "securityContext", "seccompProfile"),
            _drop(pod_spec(named(d, "Deployment", "orders")), "securityContext", "seccompProfile"),
        ),
        check_security_context,
    ),
    "service links on": (
        lambda d: _drop(pod_spec(named(d, "Deployment", "orders")), "enableServiceLinks"),
        check_service_links,
    ),
    "no readiness probe": (lambda d: _drop(_container(d, "Deployment", "catalog"), "readinessProbe"), check_probes),
    "liveness on the wrong path": (
        lambda d: _container(d, "Deployment", GATEWAY)["livenessProbe"]["httpGet"].update(path="/"),
        check_probes,
    ),
    "migrations at pod start": (_migrate_at_start, check_migrations),
    "migration Job removed": (_drop_job, check_migrations),
    "grace period too short": (_break_drain, check_gateway_drain),
    "drain longer than grace": (_raise_drain, check_gateway_drain),
    "no preStop": (lambda d: _drop(_container(d, "Deployment", GATEWAY), "lifecycle"), check_gateway_drain),
    "gateway replicas pinned": (
        lambda d: named(d, "Deployment", GATEWAY)["spec"].update(replicas=3),
        check_gateway_drain,
    ),
    "HPA without connections metric": (_hpa_cpu_only, check_gateway_hpa),
    "HPA without CPU fallback": (_hpa_no_cpu, check_gateway_hpa),
    "HPA without scale-down window": (
        lambda d: _drop(_hpa(d), "spec", "behavior", "scaleDown", "stabilizationWindowSeconds"),
        check_gateway_hpa,
    ),
    "HPA scales down abruptly": (
        lambda d: _hpa(d)["spec"]["behavior"]["scaleDown"].update(
            policies=[{"type": "Percent", "value": 100, "periodSeconds": 15}]
        ),
        check_gateway_hpa,
    ),
    "HPA removed": (lambda d: d.remove(_hpa(d)), check_gateway_hpa),
    "no zone spread": (
        lambda d: pod_spec(named(d, "Deployment", GATEWAY))["topologySpreadConstraints"].pop(0),
        check_gateway_spread,
    ),
    "short WebSocket timeout": (
        lambda d: named(d, "Ingress", GATEWAY)["metadata"]["annotations"].update(
            {"nginx.ingress.kubernetes.io/proxy-read-timeout": "60"}
        ),
        check_gateway_ingress,
    ),
    "internal paths public": (_internal_route_public, check_internal_paths_not_public),
    "internal route removed": (_drop_internal_route, check_internal_paths_not_public),
    "PDB removed": (lambda d: d.remove(named(d, "PodDisruptionBudget", "orders")), check_pdbs),
    "database open to the namespace": (_open_db_to_namespace, check_network_policies),
    "database policy removed": (_drop_db_policy, check_network_policies),
    "broker open to the namespace": (_open_broker, check_network_policies),
    "no default deny": (_drop_default_deny, check_network_policies),
    "gateway cannot reach orders": (_block_gateway_positions, check_network_policies),
    "no DNS": (_drop_dns, check_network_policies),
    "gateway open to everyone": (_open_gateway_to_everyone, check_network_policies),
    "database missing": (lambda d: d.remove(named(d, "Cluster", "cart-db")), check_databases),
    "database owned by the wrong role": (
        lambda d: named(d, "Cluster", "orders-db")["spec"]["bootstrap"]["initdb"].update(owner="postgres"),
        check_databases,
    ),
    "broker vhost shared": (
        lambda d: of_kind(d, "Vhost")[0]["spec"].update(name="/"),
        lambda d: check_rabbitmq(d, "prod"),
    ),
    "broker two nodes": (
        lambda d: of_kind(d, "RabbitmqCluster")[0]["spec"].update(replicas=2),
        lambda d: check_rabbitmq(d, "prod"),
    ),
    "service without ConfigMap": (lambda d: d.remove(configmap(d, "cart-config")), check_workloads),
    "service on the wrong port": (
        lambda d: named(d, "Service", "orders")["spec"]["ports"][0].update(port=80),
        check_workloads,
    ),
    "settings file outside its mount": (
        lambda d: _container(d, "Deployment", "orders")["volumeMounts"][0].update(mountPath="/elsewhere"),
        check_mounted_files,
    ),
    "settings file not projected": (
        lambda d: pod_spec(named(d, "Deployment", GATEWAY))["volumes"][0]["configMap"]["items"][0].update(
            path="x.json"
        ),
        check_mounted_files,
    ),
    "settings: database URL missing": (
        lambda d: _container(d, "Deployment", "catalog")["env"].remove(
            next(e for e in _container(d, "Deployment", "catalog")["env"] if e["name"] == "CATALOG_DATABASE_URL")
        ),
        lambda d: check_settings(d, "production"),
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_checks_catch_mutations(mutation):
    docs = rendered_docs("prod")
    mutate, check = MUTATIONS[mutation]
    before = check(copy.deepcopy(docs))
    assert before == [], f"the unmutated render already fails: {before}"
    mutate(docs)
    assert check(docs), f"{mutation}: the check did not notice"


def test_checks_catch_secret_values():
    docs = rendered_docs("prod")
    _add_literal_secret(docs)
    assert check_no_secret_values(yaml.safe_dump_all(docs))
    assert check_no_secret_values("url: amqp://user:pass@rabbitmq:5672/flashline-prod\n")
    assert check_no_secret_values("key: |\n  -----BEGIN PRIVATE KEY-----\n")


def test_split_refuses_unknown_kinds():
    with pytest.raises(manifests.UnknownKindError):
        manifests.split([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}])
    with pytest.raises(manifests.UnknownKindError):  # a built-in kind under a made-up group
        manifests.split([{"apiVersion": "apps.example.com/v1", "kind": "Deployment", "metadata": {"name": "d"}}])
