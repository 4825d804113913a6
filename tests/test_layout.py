"""The tests' own layout: no test module imports another test module or a conftest, helpers
live only in tests/support/ (every other module is a test module, a conftest or a package
marker), and each test module declares exactly one kind marker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parent
KINDS = {"unit", "integration", "browser", "property"}


def is_test_module(module: str) -> bool:
    """Whether a dotted module name names a test module or a conftest under tests/."""
    parts = module.split(".")
    return parts[0] == "tests" and (parts[-1].startswith("test_") or parts[-1] == "conftest")


def imported_modules(source: str) -> list[str]:
    """Every module an `import` or `from ... import` statement of this source names."""
    modules: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
            # `from tests.store import test_ranking_contract` names a test module too.
            modules.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def kind_markers(source: str) -> list[str]:
    """The kinds a module-level `pytestmark = pytest.mark.<kind>` declares."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytestmark" for target in node.targets
        ):
            values: list[ast.expr] = (
                node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            )
            return [
                sub.attr
                for value in values
                for sub in ast.walk(value)
                if isinstance(sub, ast.Attribute) and sub.attr in KINDS
            ]
    return []


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    offenders = [
        f"{path.relative_to(TESTS)} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        if "node_modules" not in path.parts
        for module in imported_modules(path.read_text())
        if is_test_module(module)
    ]
    assert offenders == [], "move what they share to tests/support/"


def is_helper_outside_support(relative: Path) -> bool:
    """Whether a module under tests/ (path relative to it) is a helper kept outside support/."""
    return (
        relative.parts[0] != "support"
        and not relative.name.startswith("test_")
        and relative.name not in {"conftest.py", "__init__.py"}
    )


def test_helpers_live_only_in_support() -> None:
    misplaced = [
        str(relative)
        for path in sorted(TESTS.rglob("*.py"))
        if "node_modules" not in path.parts
        and is_helper_outside_support(relative := path.relative_to(TESTS))
    ]
    assert misplaced == [], "move them to tests/support/"


def test_each_test_module_declares_one_kind() -> None:
    wrong = {
        str(path.relative_to(TESTS)): kinds
        for path in sorted(TESTS.rglob("test_*.py"))
        if len(kinds := kind_markers(path.read_text())) != 1
    }
    assert wrong == {}, f"set pytestmark = pytest.mark.<one of {sorted(KINDS)}>"


def test_the_checks_see_an_offender() -> None:
    assert is_test_module("tests.store.test_ranking_contract")
    assert is_test_module("tests.containers.conftest")
    assert not is_test_module("tests.support.ranking")
    assert is_helper_outside_support(Path("containers/podman.py"))
    assert not is_helper_outside_support(Path("support/podman.py"))
    assert not is_helper_outside_support(Path("containers/conftest.py"))
    assert "tests.schema.test_operations" in imported_modules(
        "from tests.schema import test_operations"
    )
    assert kind_markers("import pytest\npytestmark = pytest.mark.unit") == ["unit"]
    assert kind_markers("pytestmark = [pytest.mark.unit, pytest.mark.integration]") == [
        "unit",
        "integration",
    ]
    assert kind_markers("import pytest") == []
