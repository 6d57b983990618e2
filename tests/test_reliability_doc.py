"""docs/reliability.md names the tests behind each claim: those names must stay true.

A renamed or removed test fails the first test here; a new fault, crash or idempotency test that
the page does not mention fails the second, so the page is updated with the behaviour.
"""

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DOC = TESTS.parent / "docs" / "reliability.md"
# Modules whose every test is a result the page reports.
REPORTED_MODULES = [
    "test_faults",
    "test_crash_safety",
    "test_big_download",
    "test_idempotency",
    "test_fuzz",
    "test_access_matrix",
    "test_escaping",
    "test_hostile_provider",
]


def defined_tests(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def cited() -> set[str]:
    return set(re.findall(r"`(test_\w+)`", DOC.read_text()))


def test_every_test_the_reliability_page_names_exists():
    existing = set().union(*(defined_tests(module) for module in TESTS.rglob("test_*.py")))
    missing = sorted(cited() - existing)
    assert cited(), "the page names its tests"
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"


def test_every_reliability_test_is_on_the_page():
    unreported = sorted(
        f"{name}: {test}"
        for name in REPORTED_MODULES
        for module in TESTS.rglob(f"{name}.py")
        for test in defined_tests(module) - cited()
    )
    assert not unreported, f"add these to docs/reliability.md: {unreported}"
