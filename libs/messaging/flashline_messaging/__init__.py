"""Reliable messaging shared by the services.

- ``outbox``: write events and channel publications in the caller's transaction.
- ``relay``: publish outbox rows with publisher confirms, in order, until confirmed.
- ``bus`` (port), ``rabbitmq`` and ``memory`` (adapters): consume integration events with
  bounded retries and dead-lettering.
- ``inbox``: make a handler idempotent (processed-event row in the handler's transaction).
"""
