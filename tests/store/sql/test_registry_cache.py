"""The player registry's per-instance cache (store/sql/registry.py) on its own: which
triples a flush must upsert, at which epoch it may trust what it learnt."""

from __future__ import annotations

import pytest

from store.sql.registry import PlayerRegistry

pytestmark = pytest.mark.unit


def rows(*triples: tuple[str, str, str]) -> list[tuple[object, ...]]:
    """Event rows (`EVENT_COLUMNS` order: board, period, username, ...) of the triples."""
    return [(board, period, username, 1) for username, board, period in triples]


def test_the_cache_trusts_only_the_epoch_it_was_filled_at() -> None:
    registry = PlayerRegistry()
    ann, bob = ("ann", "b", "p"), ("bob", "b", "p")
    assert registry.unregistered(3, rows(bob, ann, bob)) == [ann, bob]
    registry.registered(3, [ann])
    assert registry.unregistered(3, rows(ann, bob, ann)) == [bob]
    # A new epoch (an erasure committed): everything again.
    assert registry.unregistered(4, rows(ann, bob)) == [ann, bob]
    # A flush that read the old epoch commits late: it teaches the cache nothing.
    registry.registered(3, [ann, bob])
    assert registry.unregistered(4, rows(ann, bob)) == [ann, bob]
    # No epoch row: nothing trusted, nothing learnt.
    registry.registered(4, [ann])
    assert registry.unregistered(None, rows(ann)) == [ann]
    registry.registered(None, [ann])
    assert registry.unregistered(None, rows(ann)) == [ann]


def test_the_cache_tells_board_periods_apart() -> None:
    registry = PlayerRegistry()
    registry.unregistered(1, [])
    registry.registered(1, [("ann", "b", "p")])
    mixed = [("ann", "b", "p"), ("ann", "b", "q"), ("ann", "c", "p"), ("bob", "b", "p")]
    assert registry.unregistered(1, rows(*mixed, ("ann", "b", "p"))) == sorted(mixed[1:])


def test_the_cache_starts_again_past_its_limit() -> None:
    registry = PlayerRegistry(limit=2)
    triples = [("a", "b", "p"), ("c", "b", "p"), ("d", "b", "q")]
    registry.unregistered(1, rows(*triples))
    registry.registered(1, triples[:2])
    assert registry.unregistered(1, rows(*triples)) == triples[2:]
    registry.registered(1, triples[2:])
    assert registry.unregistered(1, rows(*triples)) == triples
