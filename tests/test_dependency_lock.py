"""Dependencies: every third-party import is declared in pyproject.toml, and
requirements.lock pins every declared dependency to a version its bounds allow.

A failure here after editing pyproject.toml means: run `make lock` and commit the lock.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"schema", "resolvers", "store", "batcher", "server", "tests", "benchmarks"}
SCANNED = ("schema", "resolvers", "store", "batcher", "server", "tests", "benchmarks")


def declared() -> list[Requirement]:
    """The runtime and dev requirements of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in lines]


def locked() -> dict[str, str]:
    """Package name -> pinned version, from requirements.lock."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def imported_modules() -> set[str]:
    """Top-level modules imported by the project's code, tests and benchmarks."""
    modules: set[str] = set()
    for folder in SCANNED:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return modules - FIRST_PARTY - set(sys.stdlib_module_names)


def test_every_declared_dependency_is_locked_within_its_bounds() -> None:
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}: "
            "run `make lock`"
        )


def test_every_imported_package_is_declared() -> None:
    names = {canonicalize_name(requirement.name) for requirement in declared()}
    distributions = packages_distributions()
    undeclared = {
        module: distributions.get(module)
        for module in imported_modules()
        if not names & {canonicalize_name(name) for name in distributions.get(module, [])}
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
