"""Guests' consoles: the console types, their tokens, and the proxies that open them."""
