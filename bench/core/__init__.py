"""Shared machinery of the bench: environment, load tool, floor server, bus, statistics, report."""
