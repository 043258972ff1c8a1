"""docs/operations.md documents every setting node/config.py accepts, in its section's table,
with a default; and the sections the guide promises are there.

The settings are read from node/config.py's own source, so a key added there without a line in
the guide fails here: a key read from a section's table (`node["id"]`, `peer.get("listen")`,
`"tls_dir" in grpc`), the [grpc] keys in `_GRPC_SETTINGS` and the [consensus] keys, which are
the fields of `Params`. A section's table is the variable a section is read into
(`peer = document.get("peer", {})`), or a function parameter named after its section (`grpc`,
`rest`).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

from provledger.node import config
from provledger.protocol.consensus import Params

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "operations.md").read_text()
SOURCE = Path(config.__file__).read_text()


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def sections_read(source: str = SOURCE) -> dict[str, str]:
    """{variable name: section} for `X = document["S"]` / `X = document.get("S", ...)`."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not isinstance(target, ast.Name):
            continue
        section = None
        if isinstance(value, ast.Subscript) and _is_document(value.value):
            section = _string(value.slice)
        elif (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr == "get"
            and _is_document(value.func.value)
            and value.args
        ):
            section = _string(value.args[0])
        if section is not None:
            found[target.id] = section
    return found


def _is_document(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "document"


def _section_of(node: ast.AST, tables: dict[str, str]) -> str | None:
    """The section a table expression is: a variable holding one, or `document["S"]` /
    `document.get("S", ...)` itself."""
    if isinstance(node, ast.Name):
        return tables.get(node.id)
    if isinstance(node, ast.Subscript) and _is_document(node.value):
        return _string(node.slice)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and _is_document(node.func.value)
        and node.args
    ):
        return _string(node.args[0])
    return None


def declared_settings(source: str = SOURCE) -> set[tuple[str, str]]:
    """(section, key) for every key in a module-level `_<SECTION>_SETTINGS = {...}` set."""
    assigned = {
        node.targets[0].id: node.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    }

    def strings(value: ast.AST) -> set[str]:  # a set or dict literal's, `*NAME` followed
        if isinstance(value, ast.Name) and value.id in assigned:
            return strings(assigned[value.id])
        elements: list[ast.expr | None] = []
        if isinstance(value, ast.Set):
            elements = list(value.elts)
        elif isinstance(value, ast.Dict):
            elements = list(value.keys)
        found = set()
        for element in elements:
            if isinstance(element, ast.Starred):
                found |= strings(element.value)
            elif element is not None and _string(element) is not None:
                found.add(str(_string(element)))
        return found

    sections = {
        _section_of(node, {})
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Subscript | ast.Call)
    }
    declared = set()
    for name, value in assigned.items():
        match = re.fullmatch(r"_([A-Z]+)_SETTINGS", name)
        if match and match.group(1).lower() in sections:  # not _CONNECTION_SETTINGS
            declared |= {(match.group(1).lower(), key) for key in strings(value)}
    return declared


def accepted_settings(source: str = SOURCE) -> set[tuple[str, str]]:
    """Every (section, key) node/config.py reads."""
    tables = sections_read(source)
    tables.update({name: name for name in ("grpc", "rest", "peer", "node", "operations")})
    tables = {v: s for v, s in tables.items() if s not in ("consensus", "peers")}
    settings = set()
    for node in ast.walk(ast.parse(source)):
        section, key = None, None
        if isinstance(node, ast.Subscript):
            section, key = _section_of(node.value, tables), _string(node.slice)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
        ):
            section, key = _section_of(node.func.value, tables), _string(node.args[0])
        elif (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.In | ast.NotIn)
        ):
            section, key = _section_of(node.comparators[0], tables), _string(node.left)
        if section is not None and key is not None:
            settings.add((section, key))
    settings |= declared_settings(source)
    settings -= {(s, k) for s, k in settings if s in ("consensus", "peers")}
    settings |= {("consensus", f.name) for f in dataclasses.fields(Params)}  # [consensus]
    settings.add(("peers", "<node id>"))  # [peers]: one key per other validator
    return settings


def guide_tables() -> dict[str, dict[str, list[str]]]:
    """{section: {key: [the row's cells]}} from the guide's `### `[section]`` tables."""
    tables: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in GUIDE.splitlines():
        heading = re.match(r"### `\[(\w+)\]`", line)
        if heading:
            section = heading.group(1)
            tables[section] = {}
        elif line.startswith("## "):
            section = None
        elif section is not None and line.startswith("| `"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
            tables[section][cells[0].strip("`")] = cells
    return tables


def test_the_source_reading_finds_the_settings_it_should() -> None:
    found = accepted_settings()
    for expected in [
        ("node", "id"),
        ("node", "data_dir"),
        ("node", "genesis"),
        ("node", "validator_key"),
        ("peer", "listen"),
        ("peer", "tls_dir"),
        ("rest", "listen"),
        ("grpc", "insecure_plaintext"),
        ("grpc", "connection_in_flight_bytes_max"),
        ("consensus", "propose_timeout_ms"),
    ]:
        assert expected in found, expected


@pytest.mark.parametrize("section, key", sorted(accepted_settings()))
def test_every_setting_is_in_the_guide_with_a_default(section: str, key: str) -> None:
    tables = guide_tables()
    assert section in tables, f"docs/operations.md has no ### `[{section}]` table"
    assert key in tables[section], f"docs/operations.md does not document [{section}] {key}"
    row = tables[section][key]
    assert len(row) == 4 and row[1], f"[{section}] {key}: key | default | unit | meaning"


def test_the_consensus_defaults_in_the_guide_are_the_code_s() -> None:
    rows = guide_tables()["consensus"]
    for field in dataclasses.fields(Params):
        default = json.dumps(field.default)  # as TOML writes it: 3000, true
        assert rows[field.name][1] == f"`{default}`", field.name


def test_the_guide_has_every_part_the_issue_names() -> None:
    headings = re.findall(r"^## (.+)$", GUIDE, flags=re.MULTILINE)
    for part in [
        "Install",
        "Configuration",
        "TLS and keys",
        "Upgrades",
        "Logs",
        "Monitoring",
        "Backups and restore",
        "Snapshot sync",
        "Troubleshooting",
    ]:
        assert part in headings, part
    assert "make .venv/.installed" in GUIDE and "pip install" in GUIDE
    assert "--log-format" in GUIDE
