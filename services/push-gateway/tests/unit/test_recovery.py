"""Recovery rules: stream and cache modes, lagging pods, flag 2 (error 112), never partial."""

from __future__ import annotations

import pytest

from push_gateway.node import Position

from .conftest import Harness


def _sub(harness, token, channel, *, grant="", offset=None, epoch="e1", flag=1):
    session, transport = harness.session(token)
    params = {"channel": channel, "token": grant, "flag": flag}
    if offset is not None:
        params.update(recover=True, offset=offset, epoch=epoch)
    harness.send(session, {"id": 5, "subscribe": params})
    return session, transport, transport.take()[0]


@pytest.fixture
def order(harness, tokens):
    for offset in range(1, 8):
        harness.publish("order:1", offset, {"v": offset})
    return lambda **kw: _sub(
        harness, tokens.user("alice"), "order:1", grant=tokens.grant("orders", user="alice", channel="order:1"), **kw
    )


def test_fresh_subscribe_reports_position(order):
    _, _, reply = order()
    result = reply["subscribe"]
    assert result == {
        "expires": True,
        "ttl": result["ttl"],
        "recoverable": True,
        "positioned": True,
        "epoch": "e1",
        "offset": 7,
    }


def test_stream_recovery_returns_every_missed_publication_in_order(order):
    _, _, reply = order(offset=4)
    result = reply["subscribe"]
    assert result["recovered"] is True and result["was_recovering"] is True
    assert result["publications"] == [{"data": {"v": v}, "offset": v} for v in (5, 6, 7)]


def test_at_top_recovers_with_nothing(order):
    result = order(offset=7)[2]["subscribe"]
    assert result["recovered"] is True and "publications" not in result


def test_epoch_mismatch_is_unrecovered_or_112(order):
    result = order(offset=7, epoch="old")[2]["subscribe"]
    assert result["recovered"] is not True if "recovered" in result else True
    assert "publications" not in result and result["epoch"] == "e1" and result["offset"] == 7
    assert order(offset=7, epoch="old", flag=3)[2]["error"]["code"] == 112


def test_position_older_than_history_is_never_partial(keys_dir, tokens):
    harness = Harness(keys_dir, overrides={"order": {"history_size": 3}})
    for offset in range(1, 8):
        harness.publish("order:1", offset, {"v": offset})
    grant = tokens.grant("orders", user="alice", channel="order:1")
    result = _sub(harness, tokens.user("alice"), "order:1", grant=grant, offset=3)[2]["subscribe"]
    assert "recovered" not in result and "publications" not in result and result["offset"] == 7
    assert _sub(harness, tokens.user("alice"), "order:1", grant=grant, offset=3, flag=2)[2]["error"]["code"] == 112
    assert _sub(harness, tokens.user("alice"), "order:1", grant=grant, offset=4)[2]["subscribe"]["recovered"] is True


def test_history_ttl_expiry_makes_position_unrecoverable(keys_dir, tokens):
    harness = Harness(keys_dir)
    harness.clock.now -= 3700  # published long ago
    for offset in range(1, 4):
        harness.publish("order:1", offset, {"v": offset})
    harness.clock.now += 3700
    grant = tokens.grant("orders", user="alice", channel="order:1")
    assert _sub(harness, tokens.user("alice"), "order:1", grant=grant, offset=1, flag=2)[2]["error"]["code"] == 112
    assert _sub(harness, tokens.user("alice"), "order:1", grant=grant, offset=3)[2]["subscribe"]["recovered"] is True


def test_gap_in_stream_resets_contiguous_history(order, harness):
    harness.publish("order:1", 10, {"v": 10})  # 8 and 9 never reached this pod
    assert order(offset=7, flag=2)[2]["error"]["code"] == 112
    assert order(offset=9)[2]["subscribe"]["publications"] == [{"data": {"v": 10}, "offset": 10}]


def test_duplicates_are_dropped(order, harness):
    _session, transport, _ = order()
    harness.publish("order:1", 6, {"v": "dup"})
    harness.publish("order:1", 7, {"v": "dup"})
    assert transport.take() == []
    harness.publish("order:1", 8, {"v": 8})
    assert harness.pubs(transport.take()) == [{"data": {"v": 8}, "offset": 8}]


def test_client_ahead_of_lagging_pod_gets_no_duplicates(order, harness):
    _session, transport, reply = order(offset=9)  # read REST at 9; this pod has seen 7
    result = reply["subscribe"]
    assert result["recovered"] is True and result["offset"] == 9 and "publications" not in result
    for offset in (8, 9, 10):
        harness.publish("order:1", offset, {"v": offset})
    assert harness.pubs(transport.take()) == [{"data": {"v": 10}, "offset": 10}]


def test_cache_mode_returns_only_latest(harness):
    for offset in range(1, 6):
        harness.publish("stock:3", offset, {"available": 10 - offset})
    result = _sub(harness, "", "stock:3", offset=1)[2]["subscribe"]
    assert result["recovered"] is True
    assert result["publications"] == [{"data": {"available": 5}, "offset": 5}]


def test_namespace_without_recovery_is_not_recoverable(keys_dir):
    harness = Harness(keys_dir, overrides={"news": {"subscribe": "public", "allow_anonymous": True}})
    result = _sub(harness, "", "news:1", offset=3)[2]["subscribe"]
    assert result == {}


def test_new_epoch_restarts_history(order, harness):
    harness.publish("order:1", 1, {"v": "fresh"}, epoch="e2")
    assert order(offset=7)[2]["subscribe"].get("recovered") is None
    result = order(offset=0, epoch="e2")[2]["subscribe"]
    assert result["recovered"] is True and result["publications"] == [{"data": {"v": "fresh"}, "offset": 1}]


def test_history_command(order, harness):
    session, transport, _ = order()
    reply = harness.ask(
        session,
        transport,
        {"id": 9, "history": {"channel": "order:1", "limit": 2, "since": {"offset": 4, "epoch": "e1"}}},
    )
    assert reply["history"]["publications"] == [{"data": {"v": 5}, "offset": 5}, {"data": {"v": 6}, "offset": 6}]
    assert reply["history"]["offset"] == 7
    other, other_t = harness.session("")
    assert harness.ask(other, other_t, {"id": 9, "history": {"channel": "order:1", "limit": 2}})["error"]["code"] == 103


def test_position_on_a_never_published_channel_continues_into_its_first_epoch(harness, tokens):
    grant = tokens.grant("orders", user="alice", channel="order:2")
    session, transport = harness.session(tokens.user("alice"))
    harness.send(session, {"id": 5, "subscribe": {"channel": "order:2", "token": grant}})
    harness.resolve("order:2", None)  # the producer never published on it
    result = transport.take()[0]["subscribe"]
    assert (result["epoch"], result["offset"]) == ("", 0)
    for offset in (1, 2, 3):
        harness.publish("order:2", offset, {"v": offset})
    result = _sub(harness, tokens.user("alice"), "order:2", grant=grant, offset=1, epoch="")[2]["subscribe"]
    assert result["recovered"] is True and [p["offset"] for p in result["publications"]] == [2, 3]
    assert result["epoch"] == "e1"


def test_recovery_leaves_out_the_recovering_clients_own_changes(harness, tokens):
    """A tab that wrote before its subscribe landed must not get its own echo through recovery."""
    grant = tokens.grant("cart", user="", channel="cart:c1")
    tab, transport = harness.session("")
    for offset, author in ((1, None), (2, tab.client_id), (3, "other-tab")):
        harness.publish("cart:c1", offset, {"v": offset}, exclude=author)
    params = {"channel": "cart:c1", "token": grant, "recover": True, "offset": 1, "epoch": "e1", "flag": 1}
    result = harness.ask(tab, transport, {"id": 5, "subscribe": params})["subscribe"]
    assert result["recovered"] is True and result["offset"] == 3
    assert result["publications"] == [{"data": {"v": 3}, "offset": 3}]  # cart recovers the latest only
    harness.ask(tab, transport, {"id": 6, "unsubscribe": {"channel": "cart:c1"}})

    harness.publish("cart:c1", 4, {"v": 4}, exclude=tab.client_id)
    params["offset"] = 3
    again = harness.ask(tab, transport, {"id": 7, "subscribe": params})["subscribe"]
    assert again["recovered"] is True and "publications" not in again and again["offset"] == 4


def test_stream_recovery_skips_only_the_authors_publications(order, harness, tokens):
    grant = tokens.grant("orders", user="alice", channel="order:1")
    session, transport = harness.session(tokens.user("alice"))
    harness.publish("order:1", 8, {"v": 8}, exclude=session.client_id)
    harness.publish("order:1", 9, {"v": 9})
    params = {"channel": "order:1", "token": grant, "recover": True, "offset": 7, "epoch": "e1", "flag": 1}
    result = harness.ask(session, transport, {"id": 5, "subscribe": params})["subscribe"]
    assert result["recovered"] is True and result["offset"] == 9
    assert result["publications"] == [{"data": {"v": 9}, "offset": 9}]
    _, _, other = order(offset=7)
    assert [p["offset"] for p in other["subscribe"]["publications"]] == [8, 9]


def test_a_channel_learnt_from_its_producer_recovers_the_one_publication_behind(harness, tokens):
    """A pod that never saw the channel asks the producer; the latest publication it gets back is
    exactly what a client one offset behind missed."""
    grant = tokens.grant("orders", user="alice", channel="order:3")
    session, transport = harness.session(tokens.user("alice"))
    params = {"channel": "order:3", "token": grant, "recover": True, "offset": 1, "epoch": "ep", "flag": 3}
    harness.send(session, {"id": 5, "subscribe": params})
    harness.resolve("order:3", Position(epoch="ep", offset=2, data={"status": "paid"}))
    result = transport.take()[0]["subscribe"]
    assert result["recovered"] is True
    assert result["publications"] == [{"data": {"status": "paid"}, "offset": 2}]
    further_behind = {**params, "offset": 0}
    harness.send(session, {"id": 6, "unsubscribe": {"channel": "order:3"}})
    transport.take()
    harness.send(session, {"id": 7, "subscribe": further_behind})
    assert transport.take()[0]["error"]["code"] == 112  # never partial: offset 1 is not known here
