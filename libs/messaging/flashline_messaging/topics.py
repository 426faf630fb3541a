"""AMQP topic matching, for the in-memory bus to route as RabbitMQ's topic exchange does."""

from __future__ import annotations


def matches(binding: str, routing_key: str) -> bool:
    """Whether a topic ``binding`` receives ``routing_key``: ``*`` is one word, ``#`` zero or more."""
    return _match(binding.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])
