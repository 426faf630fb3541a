"""Flashline cart service: guest and user carts, live across tabs, merged at sign-in."""
