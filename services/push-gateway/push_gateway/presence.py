"""Presence across pods without join/leave messages: periodic per-pod reports, merged.

Every ``presence_interval`` each pod sends one report on the presence fanout, also when it has
nothing (an empty report is the heartbeat that retires its previous counts at once):

    {"pod", "at", "counts": {channel: [clients, local distinct users]},
     "users": {channel: UserSet.encode()}, "clients": {channel: {client_id: info}}}

for every active channel of a presence-enabled namespace (``clients`` only for ``presence: full``,
at most ``FULL_LIMIT`` entries per channel per pod). Every pod keeps the latest report of every
other pod and drops it after ``expire_after`` (three intervals: a pod that died silently) or when
the pod says goodbye (an empty report on shutdown). Fleet counts = own live counts + the others'
latest reports: ``num_clients`` adds up; ``num_users`` is the size of the union of the pods' user
sets (``user_sketch``: exact for small channels, HyperLogLog for big ones), so a user connected to
two pods counts once. A report without ``users`` (an older pod during a rollout) adds its count.

Cost: one message per pod per interval, whatever the churn; a pod's report grows with its number
of presence channels, at most ~1.4 KB per channel.
"""

from __future__ import annotations

import logging
from typing import Any

from push_gateway.hub import Hub
from push_gateway.namespaces import Namespaces, Presence
from push_gateway.user_sketch import UserSet

log = logging.getLogger("push_gateway.presence")

FULL_LIMIT = 1000  # client entries per channel in a report: `full` is for small channels


class _Report:
    __slots__ = ("clients", "counts", "received", "users")

    def __init__(
        self, received: float, counts: dict[str, Any], users: dict[str, UserSet], clients: dict[str, Any]
    ) -> None:
        self.received = received
        self.counts = counts
        self.users = users
        self.clients = clients


class PresenceBoard:
    def __init__(self, pod_id: str, *, expire_after: float = 6.0) -> None:
        self._pod = pod_id
        self._expire = expire_after
        self._reports: dict[str, _Report] = {}

    def build_report(self, hub: Hub, namespaces: Namespaces, now: float) -> dict[str, Any]:
        counts: dict[str, list[int]] = {}
        users: dict[str, str] = {}
        clients: dict[str, dict[str, Any]] = {}
        for channel, subs in hub.channels.items():
            ns = namespaces.get(channel.split(":", 1)[0].split("#", 1)[0])
            if ns is None or ns.presence is Presence.NONE:
                continue
            local = UserSet.of_users(s.user for s in subs.values())
            counts[channel] = [len(subs), local.count()]
            users[channel] = local.encode()
            if ns.presence is Presence.FULL:
                clients[channel] = {cid: {"user": s.user, "client": cid} for cid, s in list(subs.items())[:FULL_LIMIT]}
        return {"pod": self._pod, "at": now, "counts": counts, "users": users, "clients": clients}

    def goodbye(self, now: float) -> dict[str, Any]:
        """The last report of a pod that stops: nothing here any more."""
        return {"pod": self._pod, "at": now, "counts": {}, "users": {}, "clients": {}}

    def apply(self, report: dict[str, Any], now: float) -> None:
        pod = report.get("pod")
        if not isinstance(pod, str) or pod == self._pod:
            return
        counts, users, clients = report.get("counts"), report.get("users"), report.get("clients")
        counts = counts if isinstance(counts, dict) else {}
        parsed: dict[str, UserSet] = {}
        if isinstance(users, dict):
            for channel, text in users.items():
                try:
                    parsed[channel] = UserSet.decode(text)
                except ValueError:
                    log.warning("bad user set in presence report", extra={"pod": pod, "channel": channel})
        if not counts:
            self._reports.pop(pod, None)
            return
        self._reports[pod] = _Report(now, counts, parsed, clients if isinstance(clients, dict) else {})

    def forget(self, pod: str) -> None:
        self._reports.pop(pod, None)

    def _live(self, now: float):
        for pod, report in list(self._reports.items()):
            if now - report.received > self._expire:
                del self._reports[pod]
                continue
            yield report

    def fleet_stats(self, channel: str, local_clients: int, local_users: UserSet, now: float) -> tuple[int, int]:
        """(clients, distinct users) of ``channel`` on the whole fleet, this pod's live part included."""
        clients = local_clients
        users = UserSet()
        users.update(local_users)
        unmerged = 0  # users reported as a bare count (a pod without user sets): added, may double count
        for report in self._live(now):
            entry = report.counts.get(channel)
            if not entry:
                continue
            try:
                clients += int(entry[0])
                remote_users = report.users.get(channel)
                if remote_users is not None:
                    users.update(remote_users)
                else:
                    unmerged += int(entry[1])
            except (TypeError, ValueError, IndexError):
                continue
        return clients, users.count() + unmerged

    def remote_clients(self, channel: str, now: float) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for report in self._live(now):
            entries = report.clients.get(channel)
            if isinstance(entries, dict):
                merged.update(entries)
        return merged

    @property
    def pods(self) -> int:
        return len(self._reports)
