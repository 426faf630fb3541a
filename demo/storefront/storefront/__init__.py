"""Flashline storefront demo: live stock, cart sync and order status with the official centrifuge SDK."""
