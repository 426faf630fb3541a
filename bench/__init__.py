"""Flashline benchmarks: `make bench` (or `python -m bench`) measures the flash-sale path end to end.

Scenario entry points: `python -m bench.<scenario>` (see bench/README.md).
"""
