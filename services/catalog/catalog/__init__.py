"""Flashline catalog service: products, stock and reservations."""
