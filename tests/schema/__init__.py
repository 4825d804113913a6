"""Tests of schema/: the operations, their limits and fast paths, through the ASGI app."""
