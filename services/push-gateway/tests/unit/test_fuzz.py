"""Random frames never make an exception escape the session."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Harness

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
methods = st.sampled_from(
    [
        "connect",
        "subscribe",
        "unsubscribe",
        "publish",
        "presence",
        "presence_stats",
        "history",
        "rpc",
        "send",
        "refresh",
        "sub_refresh",
        "nope",
    ]
)
commands = st.builds(
    lambda i, m, p: {"id": i, m: p},
    st.one_of(st.integers(-3, 50), st.text(max_size=3), st.none()),
    methods,
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"channel": st.sampled_from(["stock:1", "order:1", "user#u", "x", ""])},
            optional={
                "recover": st.booleans(),
                "offset": json_values,
                "epoch": json_values,
                "token": json_values,
                "flag": json_values,
                "limit": json_values,
                "since": json_values,
            },
        ),
    ),
)
frames = st.one_of(
    st.binary(max_size=200),
    st.lists(commands, min_size=1, max_size=5).map(lambda cs: b"\n".join(orjson.dumps(c) for c in cs)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=6))
def test_random_frames_never_raise(keys_dir, batch):
    harness = Harness(keys_dir)
    harness.publish("stock:1", 1, {"a": 1})
    session, transport = harness.session("")
    for frame in batch:
        session.receive(frame, harness.clock.now)
        for channel in list(harness.lookups):
            harness.lookups.remove(channel)
            harness.resolve(channel, None)
        harness.publish("stock:1", 2, {"a": 2})
        harness.clock.now += 1
        harness.node.tick()
    for message in transport.messages():
        assert isinstance(message, dict)
