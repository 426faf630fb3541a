"""A small NetworkPolicy evaluator: would the policies of a namespace let pod A reach port P of pod B?

Enough of the semantics for the selectors deploy/k8s uses: label selectors (matchLabels and
matchExpressions), namespace selectors, named and numbered ports, endPort, protocols. An ipBlock
peer is treated as matching any pod: the conservative reading for "who may reach X" checks.
Only the policies passed in are known; a pod in another namespace is governed by none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    """A pod as network policies see it."""

    name: str
    labels: dict
    namespace: str
    namespace_labels: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)  # port name -> number


def pod_in(namespace: str, name: str, labels: dict, ports: dict | None = None) -> Pod:
    """A pod in ``namespace``, whose namespace carries the automatic name label."""
    return Pod(name, labels, namespace, {"kubernetes.io/metadata.name": namespace}, ports or {})


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """Kubernetes label selector semantics ({} matches everything, None nothing)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def policy_types(policy: dict) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def peer_matches(peer: dict, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return True
    ns_selector = peer.get("namespaceSelector")
    if ns_selector is None:
        ns_ok = pod.namespace == policy_namespace
    else:
        ns_ok = selector_matches(ns_selector, pod.namespace_labels)
    pod_selector = peer.get("podSelector")
    return ns_ok and (pod_selector is None or selector_matches(pod_selector, pod.labels))


def port_matches(rule_ports: list[dict] | None, port: int, protocol: str, target: Pod) -> bool:
    if not rule_ports:
        return True
    for rule in rule_ports:
        if rule.get("protocol", "TCP") != protocol:
            continue
        declared = rule.get("port")
        if declared is None:
            return True
        number = target.ports.get(declared) if isinstance(declared, str) else declared
        if number is not None and number <= port <= rule.get("endPort", number):
            return True
    return False


def _allowed(policies: list[dict], direction: str, subject: Pod, other: Pod, port: int, protocol: str) -> bool:
    peers_key, rules_key = ("from", "ingress") if direction == "Ingress" else ("to", "egress")
    port_owner = subject if direction == "Ingress" else other
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace", subject.namespace) == subject.namespace
        and direction in policy_types(p)
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(peer_matches(peer, other, subject.namespace) for peer in peers)
            if peer_ok and port_matches(rule.get("ports"), port, protocol, port_owner):
                return True
    return False


def ingress_allowed(policies: list[dict], dst: Pod, src: Pod, port: int, protocol: str = "TCP") -> bool:
    """Does the destination's side admit ``src`` on ``port``?"""
    return _allowed(policies, "Ingress", dst, src, port, protocol)


def egress_allowed(policies: list[dict], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    """May ``src`` send to ``dst`` on ``port``?"""
    return _allowed(policies, "Egress", src, dst, port, protocol)


def connection_allowed(policies: list[dict], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    return egress_allowed(policies, src, dst, port, protocol) and ingress_allowed(policies, dst, src, port, protocol)
