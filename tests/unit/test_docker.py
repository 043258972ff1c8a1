"""docker/ stays in step with the CLI: every command the compose file runs exists, with the
options it passes, and the image copies every package the distribution needs. (No Docker
engine runs here, so the containers themselves cannot be started in tests.)"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from provledger.cli.consortium import parse_hosts
from provledger.cli.main import build_parser
from provledger.node.config import NodeConfig, split_host_port

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


# --- the image --------------------------------------------------------------------------------

DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
BUILT_IMAGE = "provledger:latest"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_every_file_the_dockerfile_copies_exists() -> None:
    copies = [
        arguments.split() for keyword, arguments in dockerfile_instructions() if keyword == "COPY"
    ]
    assert copies
    for words in copies:
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


def test_the_data_folder_is_made_and_owned_by_the_node_user_before_the_switch_to_it() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    user_at = keywords.index("USER")
    assert keywords.count("USER") == 1 and instructions[user_at][1].split(":")[0] == "10001"
    runs = " ".join(arguments for keyword, arguments in instructions[:user_at] if keyword == "RUN")
    assert "groupadd --gid 10001 provledger" in runs and "--uid 10001 --gid 10001" in runs
    assert "mkdir -p /consortium" in runs
    assert re.search(r"chown provledger(:provledger)? /consortium", runs)
    workdirs = [i for i, (k, a) in enumerate(instructions) if (k, a) == ("WORKDIR", "/consortium")]
    assert workdirs and all(i < user_at for i in workdirs)
    assert ("ENTRYPOINT", '["provledger"]') in instructions
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["provledger"] == "provledger.cli.main:main"  # what pip install . puts on PATH


def test_the_image_installs_the_pinned_versions() -> None:
    runs = [a for k, a in dockerfile_instructions() if k == "RUN" and "pip install" in a]
    assert len(runs) == 1 and "--constraint constraints.txt ." in runs[0]
    assert ("COPY", "docker/constraints.txt ./constraints.txt") in dockerfile_instructions()


def pins() -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, separator, version = line.partition("==")
            assert separator and version, f"{line!r} is not NAME==VERSION"
            pinned[canonicalize_name(name)] = version
    return pinned


def test_every_runtime_dependency_is_pinned_inside_its_range() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = pins()
    for text in dependencies:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is not pinned in docker/constraints.txt"
        assert requirement.specifier.contains(pinned[name]), (
            f"{requirement.name}=={pinned[name]} is outside pyproject's {requirement.specifier}"
        )


def test_the_pins_are_made_for_the_image_python() -> None:
    base = next(a for k, a in dockerfile_instructions() if k == "FROM")
    version = re.fullmatch(r"python:(\d+\.\d+)-slim", base)
    assert version, base
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{version.group(1)}.0")
    # docker/pin_constraints.py evaluates markers with the interpreter that runs it.
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == version.group(1)


# --- the compose file -------------------------------------------------------------------------


def node_services() -> dict[str, dict]:
    return {n: s for n, s in COMPOSE["services"].items() if n.startswith("node-")}


def init_arguments() -> list[str]:
    return next(a for a in provledger_commands() if a[:2] == ["consortium", "init"])


def test_every_service_runs_the_image_the_compose_file_builds() -> None:
    for name, service in COMPOSE["services"].items():
        assert service.get("image") == BUILT_IMAGE, name
        build = service.get("build")
        assert build is not None, f"{name} does not build {BUILT_IMAGE}"
        context = (ROOT / "docker" / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).is_file()


def test_the_nodes_run_on_a_bridge_network_with_no_host_networking() -> None:
    assert COMPOSE["networks"]["consortium"]["driver"] == "bridge"
    for name, service in COMPOSE["services"].items():
        assert "network_mode" not in service, name
        assert service["networks"] == ["consortium"], name


def written_consortium(tmp_path: Path) -> tuple[argparse.Namespace, list[NodeConfig]]:
    """What the compose file's init command writes, written into tmp_path instead."""
    arguments = init_arguments()
    at = arguments.index("--dir") + 1
    assert arguments[at] == "/consortium"
    args = build_parser().parse_args([*arguments[:at], str(tmp_path), *arguments[at + 1 :]])
    args.handler(args)
    assert (tmp_path / "genesis.json").is_file()  # what the init service's `test -f` looks for
    configs = [NodeConfig.load(tmp_path / name / "config.toml") for name in node_services()]
    return args, configs


def test_the_hostnames_are_the_names_in_the_certificates_and_the_peer_addresses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, configs = written_consortium(tmp_path)
    capsys.readouterr()
    given = parse_hosts(args.host, args.nodes)
    for (name, service), config in zip(node_services().items(), configs, strict=True):
        assert config.node_id == name
        assert service["hostname"] == name and given[name] == [name]
        certificate = x509.load_pem_x509_certificate((config.tls_dir / "node.pem").read_bytes())
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert name in names.value.get_values_for_type(x509.DNSName)
        for other in configs:
            if other.node_id != name:
                assert other.peers[name] == f"{name}:{split_host_port(config.peer_listen)[1]}"


def test_the_nodes_listen_on_every_interface_over_tls_and_publish_their_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, configs = written_consortium(tmp_path)
    capsys.readouterr()
    for (name, service), config in zip(node_services().items(), configs, strict=True):
        listeners = [config.grpc_listen, config.peer_listen, config.rest_listen]
        assert [split_host_port(a)[0] for a in listeners] == ["0.0.0.0"] * 3, name
        assert config.grpc_tls_dir is not None and not config.grpc_plaintext
        published = {}
        for mapping in service["ports"]:
            host, host_port, container_port = mapping.split(":")
            assert host == "127.0.0.1" and host_port == container_port, mapping
            published[int(container_port)] = mapping
        ports = {split_host_port(config.grpc_listen)[1], split_host_port(config.rest_listen)[1]}
        assert set(published) == ports, name


def test_the_health_check_asks_the_node_s_own_readiness_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, configs = written_consortium(tmp_path)
    capsys.readouterr()
    base = next(a for k, a in dockerfile_instructions() if k == "FROM")
    assert base.startswith("python:")  # the image has the interpreter the check runs
    for (name, service), config in zip(node_services().items(), configs, strict=True):
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        port = split_host_port(config.rest_listen)[1]
        urls = re.findall(r"http://[^'\"]+", test[3])
        assert urls == [f"http://127.0.0.1:{port}/v1/health/ready"], name
        compile(test[3], f"{name} healthcheck", "exec")  # the check is Python that parses


def test_listen_all_needs_a_name_of_its_own_for_every_node(tmp_path: Path) -> None:
    from provledger.cli.consortium import init_consortium, peer_hosts

    ids = ["node-0", "node-1"]
    assert peer_hosts({"node-0": ["a", "shared"], "node-1": ["shared", "b"]}, ids) == {
        "node-0": "a",
        "node-1": "b",
    }
    with pytest.raises(ValueError, match="give --host node-1=NAME"):
        peer_hosts({"node-0": ["a", "shared"], "node-1": ["shared"]}, ids)
    with pytest.raises(ValueError, match="give --host node-0=NAME"):
        init_consortium(tmp_path / "c", 2, listen_all=True)
    assert not (tmp_path / "c" / "genesis.json").exists()
