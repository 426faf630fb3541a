"""Flashline's shared contracts: events on the bus, channels at the gateway, token claims.

Pure data. Nothing here performs I/O, so every service and the gateway can import it freely.
"""
