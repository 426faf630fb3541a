"""Per-address limits and client addresses behind trusted proxies, without sockets."""

from __future__ import annotations

import logging

import pytest

from push_gateway.address_limit import AddressLimiter, client_address, parse_address, parse_networks

LOOPBACK = parse_networks("127.0.0.0/8,::1")


def test_one_address_is_capped_while_another_is_unaffected():
    limiter = AddressLimiter(max_per_address=3)
    a, b = limiter.key("203.0.113.7"), limiter.key("198.51.100.9")
    assert a is not None and b is not None
    assert [limiter.admit(a, 0.0) for _ in range(4)] == [None, None, None, "address limit"]
    assert limiter.admit(b, 0.0) is None
    assert limiter.open_connections(a) == 3 and limiter.open_connections(b) == 1
    limiter.release(a)
    assert limiter.admit(a, 0.0) is None, "a closed connection frees its slot"
    assert limiter.admit(a, 0.0) == "address limit"


def test_release_forgets_an_address_with_no_connection_left():
    limiter = AddressLimiter(max_per_address=2)
    key = limiter.key("203.0.113.7")
    assert key is not None
    limiter.admit(key, 0.0)
    limiter.release(key)
    limiter.release(key)  # one release too many does not go negative
    assert limiter.open_connections(key) == 0
    assert limiter._open == {}


def test_off_and_exempt_addresses_are_not_limited():
    assert AddressLimiter(max_per_address=0).key("203.0.113.7") is None
    limiter = AddressLimiter(max_per_address=1, exempt=LOOPBACK)
    assert limiter.key("127.0.0.1") is None
    assert limiter.key("::1") is None
    assert limiter.key("::ffff:127.0.0.1") is None, "IPv4-mapped loopback is loopback"
    assert limiter.key("not an address") is None
    assert limiter.key("") is None
    assert limiter.key("10.1.2.3") == "10.1.2.3"


def test_ipv6_addresses_count_per_64():
    limiter = AddressLimiter(max_per_address=2)
    one, two = limiter.key("2001:db8:1:2::1"), limiter.key("2001:db8:1:2:ffff::9")
    other = limiter.key("2001:db8:1:3::1")
    assert one == two == "2001:db8:1:2::/64"
    assert other != one
    assert one is not None and other is not None
    assert limiter.admit(one, 0.0) is None and limiter.admit(one, 0.0) is None
    assert limiter.admit(one, 0.0) == "address limit", "rotating through the /64 does not escape the cap"
    assert limiter.admit(other, 0.0) is None


def test_accept_rate_per_address():
    limiter = AddressLimiter(max_per_address=0, per_second=2.0)
    key, other = limiter.key("203.0.113.7"), limiter.key("198.51.100.9")
    assert key is not None and other is not None
    assert [limiter.admit(key, 100.0) for _ in range(3)] == [None, None, "address rate"]
    assert limiter.admit(other, 100.0) is None, "another address has its own bucket"
    assert limiter.admit(key, 100.5) is None, "refilled at 2 per second"
    assert limiter.admit(key, 100.5) == "address rate"
    limiter.sweep(100.6)
    assert key in limiter._buckets, "a bucket still refilling is kept"
    limiter.sweep(200.0)
    assert limiter._buckets == {}, "full buckets are forgotten"


def test_refusals_are_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture):
    limiter = AddressLimiter(max_per_address=1, log_every=10.0)
    key = limiter.key("203.0.113.7")
    assert key is not None
    limiter.admit(key, 0.0)
    with caplog.at_level(logging.WARNING, logger="push_gateway.admission"):
        for i in range(50):
            limiter.admit(key, 1.0 + i * 0.1)
        limiter.admit(key, 12.0)
    lines = [r for r in caplog.records if r.name == "push_gateway.admission"]
    assert len(lines) == 2
    assert lines[0].__dict__["refused_since_last_line"] == 1
    assert lines[1].__dict__["refused_since_last_line"] == 50
    assert lines[1].__dict__["address"] == "203.0.113.7"


PROXIES = parse_networks("10.0.0.0/8")


def test_client_address_is_the_peer_without_trusted_proxies():
    assert client_address("203.0.113.7", ["198.51.100.1"], ()) == "203.0.113.7"


def test_an_untrusted_peer_cannot_choose_its_address():
    assert client_address("203.0.113.7", ["198.51.100.1"], PROXIES) == "203.0.113.7"


def test_a_trusted_proxy_names_the_client():
    assert client_address("10.0.0.5", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.5", [], PROXIES) == "10.0.0.5", "no header: the proxy itself"


def test_the_rightmost_untrusted_hop_wins_over_a_spoofed_prefix():
    # the client sent "X-Forwarded-For: 1.2.3.4"; the edge proxy appended the real peer, then an inner proxy
    assert client_address("10.0.0.5", ["1.2.3.4, 198.51.100.1, 10.0.0.9"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.5", ["1.2.3.4", "198.51.100.1"], PROXIES) == "198.51.100.1", "several header lines"


def test_forwarded_hops_with_ports_brackets_or_garbage():
    assert client_address("10.0.0.5", ["198.51.100.1:4711"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.5", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert client_address("10.0.0.5", ["unknown"], PROXIES) == "10.0.0.5", "unparseable: the peer is counted"
    assert client_address("10.0.0.5", ["10.0.0.7, 10.0.0.9"], PROXIES) == "10.0.0.7", "only proxies: the first"


def test_parse_address():
    assert str(parse_address("::ffff:192.0.2.1")) == "192.0.2.1"
    assert parse_address("") is None
    with pytest.raises(ValueError):
        parse_networks("10.0.0.0/8, nonsense")
