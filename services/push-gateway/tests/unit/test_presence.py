"""Presence across pods: distinct users merged from per-pod user sets, exact when small, sketched when big."""

from __future__ import annotations

import pytest

from push_gateway.presence import PresenceBoard
from push_gateway.user_sketch import EXACT_LIMIT, UserSet


def merged(*pods: list[str]) -> UserSet:
    total = UserSet()
    for users in pods:
        total.update(UserSet.decode(UserSet.of_users(users).encode()))
    return total


def test_small_sets_are_exact_and_a_user_on_two_pods_counts_once():
    total = merged(["alice", "carol", ""], ["alice", ""], ["bob"])
    assert total.exact and total.count() == 4


def test_union_of_exact_sets_stays_exact_past_the_limit():
    pods = [[f"u{i}" for i in range(start, start + EXACT_LIMIT)] for start in (0, 64, 128)]
    total = merged(*pods)
    assert total.exact and total.count() == 128 + EXACT_LIMIT


@pytest.mark.parametrize("distinct", [1_000, 20_000])
def test_big_sets_are_sketched_within_a_few_percent_and_bounded_in_size(distinct):
    users = [f"user-{i}" for i in range(distinct)]
    pods = [users[: distinct * 2 // 3], users[distinct // 3 :], users[::2]]  # heavy overlap
    encoded = [UserSet.of_users(p).encode() for p in pods]
    assert all(e.startswith("h:") and len(e) < 1500 for e in encoded)
    total = UserSet()
    for e in encoded:
        total.update(UserSet.decode(e))
    assert not total.exact
    assert abs(total.count() - distinct) / distinct < 0.08


def test_exact_and_sketched_sets_merge():
    big = UserSet.of_users(f"user-{i}" for i in range(5_000))
    small = UserSet.of_users(["someone-else", "user-1"])
    total = UserSet()
    total.update(UserSet.decode(small.encode()))
    total.update(UserSet.decode(big.encode()))
    assert abs(total.count() - 5_001) / 5_001 < 0.08


@pytest.mark.parametrize("text", ["", "x:!!", "x:AAAA", "h:AAAA", "q:AAAAAAAAAAA=", 17, None])
def test_garbage_is_refused(text):
    with pytest.raises(ValueError):
        UserSet.decode(text)


def report(pod: str, channel: str, users: list[str], *, at: float = 0.0) -> dict:
    user_set = UserSet.of_users(users)
    return {
        "pod": pod,
        "at": at,
        "counts": {channel: [len(users), user_set.count()]},
        "users": {channel: user_set.encode()},
        "clients": {},
    }


def test_board_merges_pods_and_forgets_the_stale_and_the_departed():
    board = PresenceBoard("me", expire_after=6.0)
    board.apply(report("b", "stock:1", ["alice", "bob"]), now=100.0)
    board.apply(report("c", "stock:1", ["alice", "alice", ""]), now=101.0)
    board.apply(report("me", "stock:1", ["ignored"]), now=101.0)
    local = UserSet.of_users(["alice", "carol"])
    assert board.fleet_stats("stock:1", 2, local, now=102.0) == (7, 4)  # alice, bob, "", carol

    board.apply({"pod": "c", "at": 103.0, "counts": {}, "users": {}, "clients": {}}, now=103.0)  # c left
    assert board.fleet_stats("stock:1", 2, local, now=103.0) == (4, 3)
    assert board.fleet_stats("stock:1", 2, local, now=107.0) == (2, 2)  # b's report expired


def test_board_adds_reports_without_user_sets_from_older_pods():
    board = PresenceBoard("me")
    board.apply({"pod": "old", "counts": {"stock:1": [5, 4]}}, now=0.0)
    board.apply(report("new", "stock:1", ["alice"]), now=0.0)
    board.apply({"pod": "broken", "counts": {"stock:1": [1, 1]}, "users": {"stock:1": 42}}, now=0.0)
    assert board.fleet_stats("stock:1", 1, UserSet.of_users(["alice"]), now=1.0) == (8, 6)


def test_report_carries_user_sets_only_for_presence_namespaces(harness, tokens):
    alice, _ = harness.session(tokens.user("alice"))
    for channel in ("stock:1", "user#alice"):
        harness.send(alice, {"id": 2 if channel == "stock:1" else 3, "subscribe": {"channel": channel}})
        harness.resolve(channel, None)
    built = harness.node.presence_report()
    assert set(built["counts"]) == {"stock:1"} == set(built["users"])
    assert UserSet.decode(built["users"]["stock:1"]).count() == 1


def test_node_counts_a_user_on_two_pods_once(harness, tokens):
    local, transport = harness.session(tokens.user("alice"))
    harness.send(local, {"id": 2, "subscribe": {"channel": "stock:1"}})
    harness.resolve("stock:1", None)
    harness.node.presence_board.apply(report("other", "stock:1", ["alice", "bob"]), harness.clock.now)
    reply = harness.ask(local, transport, {"id": 3, "presence_stats": {"channel": "stock:1"}})
    assert reply["presence_stats"] == {"num_clients": 3, "num_users": 2}
