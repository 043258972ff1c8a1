"""docker/ stays in step with the CLI: every command the compose file runs exists, with the
options it passes, and the image copies every package the distribution needs. (No Docker
engine runs here, so the containers themselves cannot be started in tests.)"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import yaml

from provledger.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def provledger_commands() -> list[list[str]]:
    """Every provledger argument list the compose file runs."""
    commands = []
    for name, service in COMPOSE["services"].items():
        command = service.get("command")
        if service.get("entrypoint") == ["/bin/sh", "-c"]:
            for clause in command[0].split("||"):
                words = shlex.split(clause)
                if words and words[0] == "provledger":
                    commands.append(words[1:])
        else:
            assert command, f"service {name} runs nothing"
            commands.append(list(command))
    return commands


def test_compose_runs_a_four_node_consortium() -> None:
    nodes = [name for name in COMPOSE["services"] if name.startswith("node-")]
    assert nodes == ["node-0", "node-1", "node-2", "node-3"]
    init = provledger_commands()[0]
    assert init[:2] == ["consortium", "init"] and init[init.index("--nodes") + 1] == "4"


def test_every_compose_command_parses_with_the_cli() -> None:
    parser = build_parser()
    commands = provledger_commands()
    assert len(commands) == 5
    for arguments in commands:
        parsed = parser.parse_args(arguments)  # exits (fails the test) on an unknown option
        assert callable(parsed.handler)


def test_node_configs_named_by_compose_are_the_ones_init_writes(tmp_path: Path) -> None:
    from provledger.cli.consortium import init_consortium

    layout = init_consortium(tmp_path, nodes=4, base_port=7050)
    written = {f"/consortium/{p.relative_to(tmp_path)}" for p in layout.node_configs}
    named = {a[a.index("--config") + 1] for a in provledger_commands() if a[:2] == ["node", "run"]}
    assert named == written


def test_the_image_copies_every_package_directory() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    top_level = {path.split("/")[0] for path in package_dirs.values()}
    for directory in sorted(top_level):
        assert f"COPY {directory} ./{directory}" in dockerfile
