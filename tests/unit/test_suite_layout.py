"""The suite collects as one: pytest imports test modules by their basename (rootdir-relative
packages are not used), so two test files with one name in different folders stop the whole
run at collection. Each helper running only its own files never sees it; this test does."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert names, "no test modules found"
    assert [name for name, count in names.items() if count > 1] == []
