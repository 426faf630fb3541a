"""The broker contract suite on the in-memory fake."""

from __future__ import annotations

import pytest

from push_gateway.broker_memory import MemoryBroker, MemoryBus

from ..broker_contract import BrokerContract


class TestMemoryBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self):
        bus = MemoryBus()
        return lambda: MemoryBroker(bus)
