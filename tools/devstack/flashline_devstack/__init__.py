"""The local Flashline stack: `make run` and tests/integration both start the system through it."""
