"""The broker contract suite on real RabbitMQ (stream + fanouts) in this run's vhost."""

from __future__ import annotations

import pytest

from push_gateway.broker_rabbitmq import RabbitBroker

from ..broker_contract import BrokerContract


class TestRabbitBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self, amqp_url):
        return lambda: RabbitBroker(amqp_url)
