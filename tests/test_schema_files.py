"""The exported SDL matches the code, and the code honours the public contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    BreakingChangeType,
    DangerousChangeType,
    DefinitionNode,
    DocumentNode,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    ObjectTypeExtensionNode,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
    parse,
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

IMPLEMENTED_ADDITIONS: dict[str, frozenset[str] | None] = {
    "UpdateRule": None,
    "SortOrder": None,
    "TieBreak": None,
    "LeaderboardInput": None,
    "Leaderboard": frozenset(
        {
            "updateRule",
            "sortOrder",
            "tieBreak",
            "timeZone",
            "minScore",
            "maxScore",
            "maxDelta",
            "active",
            "periods",
        }
    ),
    "Query": frozenset({"leaderboard", "players", "ranking"}),
    "PageInfo": None,
    "RankedPlayerEdge": None,
    "RankedPlayerConnection": None,
    "RankedPlayer": frozenset({"topPercent", "displayName", "metadata"}),
    "RankChange": frozenset({"displayName"}),
    "JSON": None,
    "Mutation": frozenset(
        {
            "createLeaderboard",
            "updateLeaderboard",
            "archiveLeaderboard",
            "removePlayer",
            "banPlayer",
            "unbanPlayer",
            "erasePlayer",
            "setScore",
            "setPlayerProfile",
        }
    ),
    "PlayerRemoval": None,
    "ScoreSubmission": None,
    "PeriodSummary": None,
    "PeriodConnection": None,
    "PeriodEdge": None,
    "PeriodResult": None,
    "Subscription": frozenset({"periodEnded"}),
}
"""The parts of contract-additions.graphql the service implements so far (None: the whole
definition; a set: those fields of a type extension). Add to it as issues land."""


def implemented_additions() -> str:
    """The implemented subset of contract-additions.graphql, as SDL."""
    kept: list[DefinitionNode] = []
    for definition in parse(ADDITIONS.read_text()).definitions:
        name = getattr(getattr(definition, "name", None), "value", None)
        if name not in IMPLEMENTED_ADDITIONS:
            continue
        fields = IMPLEMENTED_ADDITIONS[name]
        if fields is not None:
            assert isinstance(definition, ObjectTypeExtensionNode), name
            definition = ObjectTypeExtensionNode(
                name=definition.name,
                directives=definition.directives,
                interfaces=definition.interfaces,
                fields=tuple(
                    field for field in definition.fields or () if field.name.value in fields
                ),
            )
        kept.append(definition)
    return print_ast(DocumentNode(definitions=tuple(kept)))


def contract() -> GraphQLSchema:
    """The contract: contract.graphql plus the implemented part of its additions."""
    return build_schema(CONTRACT.read_text() + "\n" + implemented_additions())


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


def test_the_implemented_additions_are_checked() -> None:
    sdl = implemented_additions()
    assert "createLeaderboard(input: LeaderboardInput!): Leaderboard!" in sdl
    assert 'timeZone: String! = "UTC"' in sdl
    assert "periods(first: Int! = 12, after: String = null): PeriodConnection!" in sdl
    assert 'periodEnded(board: ID! = "global"): PeriodResult!' in sdl
    assert "setScore(username: String!, score: Long!, board: ID!, eventId: String = null)" in sdl
    assert "removePlayer(username: String!, board: ID!, period: String = null)" in sdl
    mutilated = build_schema(
        export_sdl()
        .replace('timeZone: String! = "UTC"', 'timeZone: String! = "Europe/Paris"')
        .replace("maxDelta: Long = null): Leaderboard!", "maxDelta: Long): Leaderboard!")
    )
    assert set(changed_defaults(contract(), mutilated)) == {
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
