"""Malformed input, unknown methods, floods: each gets its documented answer; others carry on."""

from __future__ import annotations

from push_gateway.protocol.session import Limits

from .conftest import Harness


def test_malformed_json_closes_3501(harness):
    session, transport = harness.session("")
    session.receive(b'{"id": 2, "subscribe": ', harness.clock.now)
    assert transport.closed[0] == 3501


def test_non_object_command_closes_3501(harness):
    session, transport = harness.session("")
    session.receive(b"[1,2,3]", harness.clock.now)
    assert transport.closed[0] == 3501


def test_publish_is_103_rpc_and_unknown_are_104(harness):
    session, transport = harness.session("")
    publish = {"id": 2, "publish": {"channel": "stock:1", "data": {}}}
    assert harness.ask(session, transport, publish)["error"]["code"] == 103
    assert harness.ask(session, transport, {"id": 3, "rpc": {"method": "x"}})["error"]["code"] == 104
    assert harness.ask(session, transport, {"id": 4, "teleport": {}})["error"]["code"] == 104
    assert harness.ask(session, transport, {"id": 5, "subscribe": "stock:1"})["error"]["code"] == 107
    assert transport.closed is None


def test_batched_commands_in_one_frame_get_batched_replies(harness):
    session, transport = harness.session("")
    session.receive(b'{"id":2,"subscribe":{"channel":"stock:1"}}\n{"id":3,"rpc":{}}', harness.clock.now)
    harness.resolve("stock:1", None)
    ids = sorted(m["id"] for m in transport.take())
    assert ids == [2, 3]


def test_flood_gets_111_then_close_3509(keys_dir):
    harness = Harness(keys_dir, limits=Limits(commands_per_second=10, command_burst=5))
    session, transport = harness.session("")  # connect took one token
    for i in range(4):
        harness.send(session, {"id": 10 + i, "rpc": {}})
    assert [m["error"]["code"] for m in transport.take()] == [104] * 4
    for i in range(5):
        harness.send(session, {"id": 20 + i, "rpc": {}})
    errors = [m["error"] for m in transport.take()]
    assert [e["code"] for e in errors] == [111] * 5 and all(e["temporary"] for e in errors)
    assert transport.closed is None
    harness.clock.now += 0.2  # two tokens back
    harness.send(session, {"id": 30, "rpc": {}})
    assert transport.take()[0]["error"]["code"] == 104
    for i in range(8):
        harness.send(session, {"id": 40 + i, "rpc": {}})
    assert transport.closed[0] == 3509
    other, other_t = harness.session("")
    assert harness.ask(other, other_t, {"id": 2, "rpc": {}})["error"]["code"] == 104


def test_presence_stats_counts_local_and_remote_pods(harness, tokens):
    a, ta = harness.session("")
    b, _tb = harness.session(tokens.user("alice"))
    for session in (a, b):
        harness.send(session, {"id": 2, "subscribe": {"channel": "stock:1"}})
        harness.resolve("stock:1", None)
    harness.node.presence_board.apply({"pod": "other", "counts": {"stock:1": [5, 4]}}, harness.clock.now)
    reply = harness.ask(a, ta, {"id": 3, "presence_stats": {"channel": "stock:1"}})
    assert reply["presence_stats"] == {"num_clients": 7, "num_users": 6}
    harness.clock.now += 10  # the other pod's report expired
    reply = harness.ask(a, ta, {"id": 4, "presence_stats": {"channel": "stock:1"}})
    assert reply["presence_stats"] == {"num_clients": 2, "num_users": 2}
    assert harness.ask(a, ta, {"id": 5, "presence": {"channel": "stock:1"}})["error"]["code"] == 108
