"""The exported SDL matches the code, and the code honours the public contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    BreakingChangeType,
    DangerousChangeType,
    GraphQLObjectType,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
)

from schema.build import SDL_PATH, export_sdl

pytestmark = pytest.mark.unit

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract.graphql"


def test_exported_sdl_is_the_live_schema() -> None:
    assert SDL_PATH.read_text() == export_sdl(), (
        "schema/schema.graphql drifted from the code: run `leaderboard export-schema`"
    )


def test_no_breaking_change_against_the_contract() -> None:
    contract = build_schema(CONTRACT.read_text())
    live = build_schema(export_sdl())
    breaking = find_breaking_changes(contract, live)
    assert breaking == [], [change.description for change in breaking]


def test_contract_defaults_are_kept() -> None:
    contract = build_schema(CONTRACT.read_text())
    live = build_schema(export_sdl())
    changed_defaults = [
        change.description
        for change in find_dangerous_changes(contract, live)
        if change.type is DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE
    ]
    assert changed_defaults == []


def test_the_check_detects_a_dropped_field() -> None:
    contract = build_schema(CONTRACT.read_text())
    mutilated = build_schema(export_sdl())
    score_update = mutilated.type_map["ScoreUpdate"]
    assert isinstance(score_update, GraphQLObjectType)
    del score_update.fields["applied"]
    kinds = {change.type for change in find_breaking_changes(contract, mutilated)}
    assert BreakingChangeType.FIELD_REMOVED in kinds
