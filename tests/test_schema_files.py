"""The exported SDL matches the code, and the code honours the public contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    BreakingChangeType,
    DangerousChangeType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
    print_ast,
)

from schema.build import SDL_PATH, export_sdl

pytestmark = pytest.mark.unit

# The nearest shared/ above the repository (worktrees sit one level deeper than the main copy).
CONTRACT = next(
    folder / "shared" / "contract.graphql"
    for folder in Path(__file__).resolve().parents
    if (folder / "shared" / "contract.graphql").is_file()
)
ADDITIONS = CONTRACT.with_name("contract-additions.graphql")


def contract() -> GraphQLSchema:
    """The contract: contract.graphql plus the whole of contract-additions.graphql (every
    addition has landed: #12, #13, #14)."""
    return build_schema(CONTRACT.read_text() + "\n" + ADDITIONS.read_text())


def test_exported_sdl_is_the_live_schema() -> None:
    assert SDL_PATH.read_text() == export_sdl(), (
        "schema/schema.graphql drifted from the code: run `leaderboard export-schema`"
    )


def test_no_breaking_change_against_the_contract() -> None:
    live = build_schema(export_sdl())
    breaking = find_breaking_changes(contract(), live)
    assert breaking == [], [change.description for change in breaking]


def test_contract_defaults_are_kept() -> None:
    live = build_schema(export_sdl())
    changed_defaults = [
        change.description
        for change in find_dangerous_changes(contract(), live)
        if change.type is DangerousChangeType.ARG_DEFAULT_VALUE_CHANGE
    ]
    assert changed_defaults == []


def declared_defaults(schema: GraphQLSchema) -> dict[str, str | None]:
    """The default of every argument and input field, as written in the SDL (None: none).

    Read from the SDL nodes: `build_schema` leaves `default_value` unset, so graphql-core's
    own ARG_DEFAULT_VALUE_CHANGE check cannot see a changed default of a built schema.
    """
    defaults: dict[str, str | None] = {}
    for name, named in schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(named, GraphQLInputObjectType):
            for field_name, input_field in named.fields.items():
                node = input_field.ast_node
                value = node.default_value if node is not None else None
                defaults[f"{name}.{field_name}"] = None if value is None else print_ast(value)
        elif isinstance(named, GraphQLObjectType):
            for field_name, field in named.fields.items():
                for arg_name, argument in field.args.items():
                    arg_node = argument.ast_node
                    value = arg_node.default_value if arg_node is not None else None
                    key = f"{name}.{field_name}({arg_name})"
                    defaults[key] = None if value is None else print_ast(value)
    return defaults


def changed_defaults(expected: GraphQLSchema, live: GraphQLSchema) -> list[str]:
    """Arguments and input fields of `expected` whose default `live` changed or lacks."""
    served = declared_defaults(live)
    return [
        key
        for key, default in declared_defaults(expected).items()
        if key not in served or served[key] != default
    ]


def test_input_field_defaults_are_kept() -> None:
    assert changed_defaults(contract(), build_schema(export_sdl())) == []


def test_the_whole_of_both_contract_files_is_checked() -> None:
    checked = contract()
    for name in ("Leaderboard", "PeriodResult", "RankedPlayerConnection", "PlayerRemoval"):
        assert name in checked.type_map, name
    mutation = checked.type_map["Mutation"]
    assert isinstance(mutation, GraphQLObjectType)
    assert {"setScore", "removePlayer", "erasePlayer", "setPlayerProfile"} <= set(mutation.fields)
    mutilated = build_schema(
        export_sdl()
        .replace('timeZone: String! = "UTC"', 'timeZone: String! = "Europe/Paris"')
        .replace("maxDelta: Long = null): Leaderboard!", "maxDelta: Long): Leaderboard!")
    )
    assert set(changed_defaults(checked, mutilated)) == {
        "LeaderboardInput.timeZone",
        "Mutation.updateLeaderboard(maxDelta)",
    }


def test_the_check_detects_a_dropped_field() -> None:
    mutilated = build_schema(export_sdl())
    score_update = mutilated.type_map["ScoreUpdate"]
    assert isinstance(score_update, GraphQLObjectType)
    del score_update.fields["applied"]
    kinds = {change.type for change in find_breaking_changes(contract(), mutilated)}
    assert BreakingChangeType.FIELD_REMOVED in kinds


def test_the_check_detects_a_dropped_addition() -> None:
    mutilated = build_schema(export_sdl())
    mutation = mutilated.type_map["Mutation"]
    assert isinstance(mutation, GraphQLObjectType)
    del mutation.fields["archiveLeaderboard"]
    kinds = {change.type for change in find_breaking_changes(contract(), mutilated)}
    assert BreakingChangeType.FIELD_REMOVED in kinds
