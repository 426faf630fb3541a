"""Flashline push gateway: the Centrifugo-protocol WebSocket gateway fed by the RabbitMQ push log."""
