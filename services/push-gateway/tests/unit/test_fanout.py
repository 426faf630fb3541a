"""Fan-out: encode once, batch, exclude_client, conflation, bounded queues (3008)."""

from __future__ import annotations

from push_gateway.protocol.session import Limits

from .conftest import Harness


def _subscribers(harness, channel, n):
    out = []
    for _ in range(n):
        session, transport = harness.session("")
        harness.send(session, {"id": 2, "subscribe": {"channel": channel}})
        for c in list(harness.lookups):
            harness.lookups.remove(c)
            harness.resolve(c, None)
        transport.take()
        out.append((session, transport))
    return out


def test_same_frame_object_written_to_every_subscriber(harness):
    subs = _subscribers(harness, "cart:x", 0)
    harness.node.history  # noqa: B018
    subs = _subscribers(harness, "stock:1", 3)
    harness.publish("stock:1", 1, {"available": 3})
    frames = [t.frames[0] for _, t in subs]
    assert all(f is frames[0] for f in frames), "encoded once"
    assert harness.node.fanout.deliveries == 3


def test_several_publications_in_one_turn_are_batched_in_one_frame(keys_dir):
    harness = Harness(keys_dir, overrides={"stock": {"conflation_ms": 0}})
    ((_, transport),) = _subscribers(harness, "stock:1", 1)
    from push_gateway.broker import Incoming

    for offset in (1, 2, 3):
        harness.node.publish(Incoming("stock:1", offset, "e", b'{"a":%d}' % offset, None, 0))
    harness.run_soon()
    assert len(transport.frames) == 1
    assert [p["offset"] for p in harness.pubs(transport.messages())] == [1, 2, 3]


def test_exclude_client_skips_the_tab_that_made_the_change(harness, tokens):
    subs = []
    for _ in range(2):
        session, transport = harness.session("")
        grant = tokens.grant("cart", user="", channel="cart:c1")
        harness.send(session, {"id": 2, "subscribe": {"channel": "cart:c1", "token": grant}})
        harness.resolve("cart:c1", None)
        transport.take()
        subs.append((session, transport))
    (maker, maker_t), (_other, other_t) = subs
    harness.publish("cart:c1", 1, {"items": 1}, exclude=maker.client_id)
    assert maker_t.take() == []
    assert harness.pubs(other_t.take()) == [{"data": {"items": 1}, "offset": 1}]


def test_conflation_delivers_first_and_latest_per_window(harness):
    ((_, transport),) = _subscribers(harness, "stock:1", 1)
    harness.publish("stock:1", 1, {"available": 9})
    for offset in range(2, 7):
        harness.publish("stock:1", offset, {"available": 10 - offset})
    assert [p["offset"] for p in harness.pubs(transport.take())] == [1]
    harness.advance(0.1)
    assert harness.pubs(transport.take()) == [{"data": {"available": 4}, "offset": 6}]
    harness.advance(0.5)
    assert transport.take() == []
    harness.publish("stock:1", 7, {"available": 3})
    assert [p["offset"] for p in harness.pubs(transport.take())] == [7]


def test_slow_client_is_closed_with_3008_and_others_unaffected(keys_dir):
    harness = Harness(keys_dir, limits=Limits(queue_bytes=2000), overrides={"stock": {"conflation_ms": 0}})
    (slow, slow_t), (fast, fast_t) = _subscribers(harness, "stock:1", 2)
    slow_t.backlog = 1900  # its socket is not draining
    harness.publish("stock:1", 1, {"pad": "x" * 200})
    assert slow_t.closed[0] == 3008 and fast_t.closed is None
    assert "stock:1" not in slow.subs
    harness.publish("stock:1", 2, {"pad": "y"})
    assert [p["offset"] for p in harness.pubs(fast_t.take())] == [1, 2]
    assert list(harness.node.hub.channels["stock:1"]) == [fast.client_id]


def test_publications_on_channels_without_local_subscribers_are_still_recorded(harness):
    harness.publish("order:77", 1, {"s": 1})
    harness.publish("order:77", 2, {"s": 2})
    state = harness.node.history.get("order:77")
    assert (state.epoch, state.top, len(state.entries)) == ("e1", 2, 2)
    assert harness.node.fanout.deliveries == 0


def test_unknown_namespace_publications_are_ignored(harness):
    harness.publish("mystery:1", 1, {})
    assert harness.node.history.get("mystery:1") is None


def test_the_writes_of_a_flush_are_timed_apart_from_the_queueing(harness):
    _subscribers(harness, "stock:1", 3)
    histogram = harness.node.metrics.flush_seconds
    before = histogram.collect()[0].samples
    flushes_before = next(s.value for s in before if s.name.endswith("_count"))
    harness.publish("stock:1", 1, {"available": 3})
    after = histogram.collect()[0].samples
    assert next(s.value for s in after if s.name.endswith("_count")) == flushes_before + 1
    assert next(s.value for s in after if s.name.endswith("_sum")) > 0
