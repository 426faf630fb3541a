"""Per-address limits: open connections per client address and, optionally, accepted connects per second.

A flood from one address is capped without touching anyone else's share of the pod. Addresses are
counted by key: an IPv4 address as is, an IPv6 address by its /64 (one subscriber's allocation, so
rotating through it does not escape the cap). Exempt networks (loopback by default: a sidecar proxy,
the dev stack, the bench) are never limited. Refusals are logged at most once per ``log_every``
seconds, with how many were refused since the previous line.
"""

from __future__ import annotations

import ipaddress
import logging

log = logging.getLogger("push_gateway.admission")

KEY_CACHE_SIZE = 4096  # peers seen recently: a reconnecting address is not parsed again

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.1.5, ::1"`` -> networks; raises ValueError on a bad entry."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def parse_address(text: str) -> Address | None:
    """An IP address from a peer name or a forwarded hop (``[v6]:port`` and ``v4:port`` too); None if not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)


def client_address(peer: str, forwarded: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the forwarded one.

    ``forwarded`` holds the values of the configured header (``X-Forwarded-For`` style: hops
    appended left to right). Walking from the right, the first hop that is not a trusted proxy was
    written by a trusted proxy about its own peer: that is the client. A peer that is not a trusted
    proxy is never believed, whatever it sends.
    """
    if not trusted or not forwarded:
        return peer
    peer_address = parse_address(peer)
    if peer_address is None or not _within(peer_address, trusted):
        return peer
    hops = [hop for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return peer
        if not _within(address, trusted):
            return str(address)
    first = parse_address(hops[0]) if hops else None
    return str(first) if first is not None else peer


class AddressLimiter:
    def __init__(
        self,
        *,
        max_per_address: int,
        per_second: float = 0.0,
        exempt: tuple[Network, ...] = (),
        log_every: float = 10.0,
    ) -> None:
        self._max = max_per_address
        self._rate = per_second
        self._burst = max(1.0, per_second)
        self._exempt = exempt
        self._open: dict[str, int] = {}
        self._keys: dict[str, str | None] = {}
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill]
        self._log_every = log_every
        self._logged_at = float("-inf")
        self._unlogged = 0

    @property
    def enabled(self) -> bool:
        return self._max > 0 or self._rate > 0

    def key(self, address: str) -> str | None:
        """What ``address`` is counted as; None when it is not limited (exempt, not an IP, limits off)."""
        if not self.enabled:
            return None
        try:
            return self._keys[address]
        except KeyError:
            pass
        parsed = parse_address(address)
        key: str | None
        if parsed is None or _within(parsed, self._exempt):
            key = None
        elif isinstance(parsed, ipaddress.IPv6Address):
            key = f"{ipaddress.IPv6Network((parsed, 64), strict=False).network_address}/64"
        else:
            key = str(parsed)
        if len(self._keys) >= KEY_CACHE_SIZE:
            self._keys.clear()
        self._keys[address] = key
        return key

    def open_connections(self, key: str) -> int:
        return self._open.get(key, 0)

    def admit(self, key: str, now: float) -> str | None:
        """None to accept (then counted until ``release``), else why not: ``address limit`` or ``address rate``."""
        count = self._open.get(key, 0)
        if self._max and count >= self._max:
            return self._refused(key, "address limit", now)
        if self._rate:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [self._burst, now]
            bucket[0] = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
            bucket[1] = now
            if bucket[0] < 1.0:
                return self._refused(key, "address rate", now)
            bucket[0] -= 1.0
        self._open[key] = count + 1
        return None

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def sweep(self, now: float) -> None:
        """Forget the rate buckets that have filled up again (they would admit a full burst anyway)."""
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * self._rate >= self._burst]
        for key in full:
            del self._buckets[key]

    def _refused(self, key: str, reason: str, now: float) -> str:
        self._unlogged += 1
        if now - self._logged_at >= self._log_every:
            log.warning(
                "connections refused for an address over its limit",
                extra={
                    "address": key,
                    "reason": reason,
                    "open": self._open.get(key, 0),
                    "refused_since_last_line": self._unlogged,
                },
            )
            self._logged_at = now
            self._unlogged = 0
        return reason
