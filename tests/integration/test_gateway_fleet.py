"""A gateway fleet on one RabbitMQ: three pods (and a cold fourth), official SDK clients spread over them.

Pods are ``python -m push_gateway`` processes on free ports sharing this module's own vhost, fed by
``PushPublication`` JSON published to the fanout exchange ``flashline.push``. Clients that must
move between pods connect through ``LoadBalancer`` (a TCP proxy routing new connections to ready
pods, as a Kubernetes Service does), because the SDK takes one URL; clients pinned to one pod use
its URL directly. Drain windows are short (``GATEWAY_DRAIN_SECONDS=3``) to keep the module quick.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from flashline_service.testing import ThrowawayVhosts, user_token

from .gateway_fleet import Fleet, LoadBalancer, Producer, Viewer, eventually

DRAIN_SECONDS = 3.0
EPOCH = "fleet-epoch-1"
FLEET_ENV = {
    "GATEWAY_DRAIN_SECONDS": str(DRAIN_SECONDS),
    "GATEWAY_PRESENCE_INTERVAL": "0.5",
    "GATEWAY_LOG_LEVEL": "INFO",
}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def stock(available: int, product_id: int = 1) -> dict:
    status = "out" if available == 0 else ("low" if available < 5 else "in_stock")
    return {"product_id": product_id, "available": available, "status": status, "version": available}


@pytest.fixture(scope="module")
async def producer(throwaway_vhosts: ThrowawayVhosts) -> AsyncIterator[Producer]:
    p = Producer(throwaway_vhosts.create("gateway-fleet"), epoch=EPOCH)
    await p.start()
    yield p
    await p.close()


@pytest.fixture(scope="module")
async def fleet(producer: Producer, dev_keys: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fleet]:
    f = Fleet(
        amqp_url=producer.amqp_url,
        keys_dir=dev_keys,
        producer_url=producer.url,
        log_dir=tmp_path_factory.mktemp("gateway-fleet"),
        env=FLEET_ENV,
    )
    try:
        await f.start("pod-a", "pod-b", "pod-c")
        yield f
    finally:
        await f.close()


@pytest.fixture(scope="module")
async def lb(fleet: Fleet) -> AsyncIterator[LoadBalancer]:
    balancer = LoadBalancer(fleet)
    await balancer.start()
    yield balancer
    await balancer.close()


async def disconnect_all(viewers: list[Viewer]) -> None:
    await asyncio.gather(*(v.disconnect() for v in viewers))


async def pods_of(fleet: Fleet, viewers: list[Viewer]) -> dict[str, list[Viewer]]:
    by_pod: dict[str, list[Viewer]] = {}
    for viewer in viewers:
        by_pod.setdefault(await fleet.pod_name(viewer.client_id), []).append(viewer)
    return by_pod


# ---- 1. every pod delivers, exactly once ---------------------------------------------------------


async def test_publication_reaches_subscribers_on_every_pod_exactly_once(fleet: Fleet, producer: Producer):
    pods = [fleet.pods[n] for n in ("pod-a", "pod-b", "pod-c")]
    for pod in pods:  # GATEWAY_NODE_NAME (what `make run GATEWAYS=3` sets) names the pod
        # Readiness turns true as warm-up ends, a moment before the "started" line is written.
        await eventually(
            lambda pod=pod: any(d.get("event") == "gateway started" and d.get("node") == pod.name for d in pod.logs()),
            what=f"{pod.name} logs its start",
        )
    channel = unique("stock:")
    viewers = [Viewer(f"{pod.name}-{i}", pod.ws_url) for pod in pods for i in range(2)]
    try:
        await asyncio.gather(*(v.connect() for v in viewers))
        logs = await asyncio.gather(*(v.subscribe(channel) for v in viewers))
        assert {await fleet.pod_name(v.client_id) for v in viewers} == {p.name for p in pods}

        await producer.publish(channel, stock(7))
        await eventually(lambda: all(log.pubs for log in logs), what="every subscriber got the publication")
        await asyncio.sleep(0.5)  # a duplicate from any pod would arrive meanwhile
        assert all(log.pubs == [(1, stock(7))] for log in logs), [log.pubs for log in logs]

        await producer.publish(channel, stock(6))  # next one, after the conflation window
        await eventually(lambda: all(len(log.pubs) >= 2 for log in logs), what="second publication")
        await asyncio.sleep(0.3)
        assert all(log.offsets == [1, 2] for log in logs), [log.offsets for log in logs]

        for pod in pods:  # scaling signals an HPA can use
            samples = await fleet.metrics(pod)
            assert samples["flashline_gateway_connections"] == 2
            assert samples["flashline_gateway_fanout_lag_seconds_count"] >= 2
    finally:
        await disconnect_all(viewers)


# ---- 5. presence across pods ---------------------------------------------------------------------


async def test_presence_stats_count_clients_and_distinct_users_across_pods(fleet: Fleet, dev_keys: Path):
    a, b, c = (fleet.pods[n] for n in ("pod-a", "pod-b", "pod-c"))
    channel = unique("stock:")
    alice = user_token(dev_keys, "alice")
    seats = [
        ("alice@a", a, alice),
        ("alice@b", b, alice),
        ("carol@a", a, user_token(dev_keys, "carol")),
        ("bob@c", c, user_token(dev_keys, "bob")),
        ("anon@b", b, ""),
        ("anon@c", c, ""),
    ]
    viewers = {name: Viewer(name, pod.ws_url, token) for name, pod, token in seats}
    try:
        await asyncio.gather(*(v.connect() for v in viewers.values()))
        await asyncio.gather(*(v.subscribe(channel) for v in viewers.values()))

        async def everyone_sees(clients: int, users: int) -> bool:
            stats = await asyncio.gather(*(v.client.presence_stats(channel) for v in viewers.values()))
            return all((s.num_clients, s.num_users) == (clients, users) for s in stats)

        # alice twice (pods a and b) is one user; anonymous viewers are one user (""), as in Centrifugo
        await eventually(lambda: everyone_sees(6, 4), timeout=8, what="6 clients / 4 users on every pod")
        await viewers.pop("alice@b").disconnect()
        await eventually(lambda: everyone_sees(5, 4), timeout=8, what="5 clients / 4 users")
        await viewers.pop("alice@a").disconnect()
        await eventually(lambda: everyone_sees(4, 3), timeout=8, what="4 clients / 3 users")
    finally:
        await disconnect_all(list(viewers.values()))


# ---- 4. admission control ------------------------------------------------------------------------


class _SdkCloseCodes(logging.Handler):
    """The close codes the SDK saw on its connections (its debug log; a refused attempt emits no event)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.codes: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.args, tuple) or not record.args:
            return
        found = record.args[0]
        if record.msg == "connection closed, code: %d, reason: %s" and isinstance(found, int):
            self.codes.append(found)
        # The close can reach the SDK while it sends its connect instead: it logs the exception.
        elif str(record.msg).startswith("connection closed with error during"):
            received = getattr(found, "rcvd", None)
            if isinstance(getattr(received, "code", None), int):
                self.codes.append(received.code)


async def _raw_close_code(url: str) -> int | None:
    async with websockets.connect(url, proxy=None, open_timeout=5) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code


async def test_admission_rejects_excess_with_3013_and_the_sdk_gets_in_later(fleet: Fleet):
    pod = (await fleet.start("pod-admission", GATEWAY_MAX_CONNECTIONS="3", GATEWAY_MAX_CONNECTS_PER_SECOND="2"))[0]
    sdk_log = logging.getLogger("centrifuge")
    seen = _SdkCloseCodes()
    previous_level = sdk_log.level
    sdk_log.addHandler(seen)
    sdk_log.setLevel(logging.DEBUG)
    viewers = [Viewer(f"storm-{i}", pod.ws_url) for i in range(3)]
    late = Viewer("late", pod.ws_url)
    try:
        # a storm of 3 at once against 2 connects/s: 2 get in, the third is told 3013 and retries
        started = time.monotonic()
        await asyncio.gather(*(v.connect(timeout=10) for v in viewers))
        samples = await fleet.metrics(pod)
        assert samples.get('flashline_gateway_rejected_connections_total{reason="rate"}', 0) >= 1
        assert time.monotonic() - started < 8

        # the pod is full (3): a raw probe and a fourth SDK client are refused with 3013
        assert await _raw_close_code(pod.ws_url) == 3013
        await late.client.connect()
        await eventually(lambda: 3013 in seen.codes, what="the SDK saw close code 3013")
        await asyncio.sleep(0.5)
        assert not late.connected and not late.disconnects, "3013 is a reconnect code: the SDK keeps trying"
        samples = await fleet.metrics(pod)
        assert samples.get('flashline_gateway_rejected_connections_total{reason="capacity"}', 0) >= 2

        await viewers[0].disconnect()  # room again: the SDK's next attempt gets in
        await late.client.ready(10)
        assert await fleet.pod_of(late.client_id) is pod
    finally:
        sdk_log.removeHandler(seen)
        sdk_log.setLevel(previous_level)
        await disconnect_all([*viewers, late])
        fleet.terminate(pod)
        assert await fleet.wait_exit(pod, 10) == 0


# ---- 6. a cold pod warms up before it is ready --------------------------------------------------


async def test_cold_pod_warms_its_history_before_turning_ready(
    fleet: Fleet, lb: LoadBalancer, producer: Producer, dev_keys: Path
):
    tenant = unique("t")
    channel = f"tenant:{tenant}"
    for version in (1, 2, 3):
        await producer.publish(channel, {"order_id": version, "status": "pending"})
    lb.pool = {"pod-a", "pod-b", "pod-c"}
    viewers = [Viewer(f"w{i}", lb.ws_url, user_token(dev_keys, f"w{i}", tenant=tenant)) for i in range(4)]
    try:
        for viewer in viewers:
            await viewer.connect()
        logs = [await v.subscribe(channel) for v in viewers]
        assert all(log.subscribed[0].stream_position.offset == 3 for log in logs)
        await producer.publish(channel, {"order_id": 4, "status": "paid"})
        await eventually(lambda: all(log.last == 4 for log in logs), what="offset 4 everywhere")
        await disconnect_all(viewers)  # e.g. phones in a pocket

        for version in range(5, 10):  # published while nobody listens and before the new pod exists
            await producer.publish(channel, {"order_id": version, "status": "shipped"})
        lookups_before = len(producer.lookups)
        cold = fleet.launch("pod-d")
        states: list[int] = []
        while cold.running and (not states or states[-1] != 200):
            states.append(await fleet.readyz(cold))
            await asyncio.sleep(0.01)
        assert states[-1] == 200, cold.tail()
        assert 503 in states, "the port answers at once, but not ready while warming up"
        warmed = [d for d in cold.logs() if d.get("event") == "warmed up"]
        assert warmed and warmed[0]["channels"] >= 1, "ready only after reading its own marker back"

        lb.pool = {"pod-d"}  # every reconnect now lands on the new pod
        for viewer in viewers:
            await viewer.connect()
        await eventually(lambda: all(len(log.subscribed) == 2 for log in logs), what="resubscribed on pod-d")
        assert {await fleet.pod_name(v.client_id) for v in viewers} == {"pod-d"}
        for log in logs:
            ctx = log.subscribed[-1]
            assert ctx.was_recovering and ctx.recovered, "recovered from the history it warmed up"
            assert ctx.stream_position.epoch == EPOCH and ctx.stream_position.offset == 9
        await eventually(lambda: all(log.last == 9 for log in logs), what="missed publications")
        assert all(log.offsets == [4, 5, 6, 7, 8, 9] for log in logs), [log.offsets for log in logs]
        assert channel not in producer.lookups[lookups_before:], "no REST fallback was needed"
    finally:
        lb.pool = None
        await disconnect_all(viewers)


# ---- 2 + 3. SIGKILL one pod, drain another: nothing lost, the drain spread over its window -----


async def test_kill_and_drain_lose_nothing_and_the_drain_is_spread(
    fleet: Fleet, lb: LoadBalancer, producer: Producer, dev_keys: Path
):
    killed, drained = fleet.pods["pod-a"], fleet.pods["pod-b"]
    survivors = [p for p in fleet.live() if p not in (killed, drained)]
    pods_in_rotation = [killed, drained, *survivors]
    tenant = unique("t")
    live_channel, stock_channel = f"tenant:{tenant}", unique("stock:")
    await producer.publish(live_channel, {"n": 1})
    await producer.publish(stock_channel, stock(100))

    publishing = asyncio.Event()
    publishing.set()

    async def keep_publishing() -> None:
        n = 100
        while publishing.is_set():
            n -= 1
            await producer.publish(live_channel, {"n": producer.top(live_channel) + 1})
            await producer.publish(stock_channel, stock(max(n, 0)))
            await asyncio.sleep(0.1)

    per_pod = 6
    viewers = [
        Viewer(f"v{i}", lb.ws_url, user_token(dev_keys, f"v{i}", tenant=tenant))
        for i in range(per_pod * len(pods_in_rotation))
    ]
    feed = asyncio.get_running_loop().create_task(keep_publishing())
    try:
        for viewer in viewers:  # one at a time: the balancer's round-robin spreads them evenly
            await viewer.connect()
            await viewer.subscribe(live_channel)
            await viewer.subscribe(stock_channel)
        placement = await pods_of(fleet, viewers)
        assert set(placement) == {p.name for p in pods_in_rotation}, placement
        assert all(len(vs) >= per_pod // 2 for vs in placement.values()), placement  # round-robin: ~per_pod each
        on_drained = len(placement[drained.name])
        await asyncio.sleep(0.5)

        # the outage, with publications going on
        fleet.kill(killed)
        fleet.terminate(drained)
        term_at = time.monotonic()

        async def unready() -> bool:
            return await fleet.readyz(drained) == 503

        await eventually(unready, timeout=1.0, interval=0.02, what="readiness 503 at once")
        assert any(v.connected for v in placement[drained.name]), "readiness flipped before the drain ended"
        assert await _raw_close_code(drained.ws_url) == 3001, "new connects refused with a reconnect code"

        moved = placement[killed.name] + placement[drained.name]
        await eventually(
            lambda: all(len(v.client_ids) >= 2 and v.connected for v in moved),
            timeout=DRAIN_SECONDS + 8,
            what="every moved client reconnected",
        )
        assert await fleet.wait_exit(drained, 10) == 0
        assert await fleet.wait_exit(killed, 1) == -9
        await asyncio.sleep(1.0)  # publications keep flowing to everyone on the survivors
        publishing.clear()
        await feed
        top_live, top_stock = producer.top(live_channel), producer.top(stock_channel)
        await eventually(
            lambda: all(v.subs[live_channel].last == top_live for v in viewers),
            timeout=5,
            what="every viewer reached the last publication",
        )
        await eventually(
            lambda: all(v.subs[stock_channel].last == top_stock for v in viewers),
            timeout=5,
            what="every viewer has the latest stock",
        )

        # nothing lost, nothing twice: each viewer saw every offset after its subscribe position, in order
        for viewer in viewers:
            log = viewer.subs[live_channel]
            start = log.subscribed[0].stream_position.offset
            assert log.offsets == list(range(start + 1, top_live + 1)), (viewer.name, log.offsets)
            stock_offsets = viewer.subs[stock_channel].offsets
            assert stock_offsets == sorted(set(stock_offsets)), (viewer.name, stock_offsets)  # conflated, monotonic
        # the moved ones recovered on a survivor: same epoch, continuing from their own offsets
        on_survivors = {p.name for p in survivors}
        for viewer in moved:
            assert await fleet.pod_name(viewer.client_id) in on_survivors
            for channel in (live_channel, stock_channel):
                ctx = viewer.subs[channel].subscribed[-1]
                assert len(viewer.subs[channel].subscribed) == 2 and ctx.was_recovering and ctx.recovered, (
                    viewer.name,
                    channel,
                    ctx,
                )
                assert ctx.stream_position.epoch == EPOCH
        missed = sum(v.subs[live_channel].missed(1) for v in moved)
        assert missed > 0, "some publications were missed during the outage and came back through recovery"
        if len(survivors) > 1:
            landed = await pods_of(fleet, moved)
            assert all(landed.get(p.name) for p in survivors), "the moved clients spread over the survivors"

        # the drain: every client of the drained pod got 3001, spread over the window
        closes = sorted(t - term_at for v in placement[drained.name] for (t, code, _) in v.reconnects if code == 3001)
        assert len(closes) == on_drained, closes
        assert sum(1 for t in closes if t < 0.1 * DRAIN_SECONDS) < on_drained / 2, closes
        assert closes[-1] - closes[0] >= 0.5 * DRAIN_SECONDS, closes
        assert closes[-1] <= DRAIN_SECONDS + 1.0, closes
        assert all(code != 3001 for v in placement[killed.name] for (_, code, _) in v.reconnects)

        survivors_connections = sum([(await fleet.metrics(p))["flashline_gateway_connections"] for p in survivors])
        assert survivors_connections == len(viewers)
    finally:
        publishing.clear()
        await asyncio.gather(feed, return_exceptions=True)
        await disconnect_all(viewers)
