"""docs/security.md names a test for every claim: each test it names must exist, so a
renamed or deleted test cannot leave a claim unsupported."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "security.md"
# `tests/x.py::test_name`, `x.py::test_name` (a file named before), `::test_name` (the last file)
REFERENCE = re.compile(r"`((?:tests/[\w/]+\.py|[\w]+\.py))?::(test_\w+)")
FILE_ONLY = re.compile(r"`?(tests/[\w/]+\.py)`?")


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def resolve(name: str) -> Path:
    if name.startswith("tests/"):
        return ROOT / name
    found = sorted((ROOT / "tests").rglob(name))
    assert len(found) == 1, f"{name} names {len(found)} test files"
    return found[0]


def test_every_test_the_security_model_names_exists():
    text = DOCUMENT.read_text()
    last: Path | None = None
    checked = 0
    for match in REFERENCE.finditer(text):
        if match.group(1):
            last = resolve(match.group(1))
        assert last is not None, f"{match.group(0)} names no file"
        assert match.group(2) in defined_tests(last), f"{last.name} has no {match.group(2)}"
        checked += 1
    for match in FILE_ONLY.finditer(text):
        assert (ROOT / match.group(1)).is_file(), match.group(1)
    assert checked >= 30
