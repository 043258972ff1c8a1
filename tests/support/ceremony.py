"""The founding ceremony (ADR 015) run with the `provledger` command, for integration tests:
organisations in folders of their own, only public files carried between them.

    founded = found_consortium(tmp_path, "chain", (("org-a", "agency", "node-a"), ...))
    founded.configs["org-a"]                        # its node's config.toml (`org node-config`)
    assert_no_private_file_outside(tmp_path, founded.organisations)

Invariants:
- every ceremony step is a `provledger` command run in a process of its own (`run_cli`);
- files travel between folders only through `courier`, and only public ones (public.json,
  the draft, approvals, the sealed genesis, the peers' addresses);
- `assert_no_private_file_outside` finds every private file's secret (PRIVATE_FILES) of each
  organisation in no file outside its folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from support.processes import free_ports, provledger_command

CLI_TIMEOUT_S = 60
PRIVATE_FILES = (
    "identity.json",
    "ca/ca-key.pem",
    "node/validator-key.json",
    "node/tls/node-key.pem",
)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*provledger_command(), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )


def cli_json(*args: str) -> dict:
    result = run_cli(*args, "--json")
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr}"
    return json.loads(result.stdout)


def courier(source: Path, destination: Path) -> Path:
    """Carry a public file from one folder to another, as e-mail would."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return destination


def private_secrets(folder: Path, names: Iterable[str] = PRIVATE_FILES) -> dict[str, bytes]:
    """What must never be found outside `folder`: each private file's secret (a key file's
    seed; a PEM key's base64 lines)."""
    secrets = {}
    for name in names:
        data = (folder / name).read_bytes()
        if name.endswith(".json"):
            secrets[name] = json.loads(data)["seed"].encode()
        else:
            secrets[name] = b"\n".join(data.splitlines()[1:-1])
        assert len(secrets[name]) >= 60 and secrets[name] in data, name
    return secrets


def assert_no_private_file_outside(
    root: Path, organisations: Mapping[str, Path], extra: Mapping[str, Iterable[str]] = {}
) -> None:
    """No private file of any organisation (PRIVATE_FILES, and `extra[org]`: more private
    files in its folder, such as a rotated-in key), nor its secret, is in any file under
    `root` outside that organisation's folder."""
    every_file = [path for path in root.rglob("*") if path.is_file()]
    for org, folder in organisations.items():
        names = (*PRIVATE_FILES, *extra.get(org, ()))
        for name, secret in private_secrets(folder, names).items():
            holders = [
                path
                for path in every_file
                if not path.is_relative_to(folder) and secret in path.read_bytes()
            ]
            assert holders == [], f"{org}'s {name} is found outside its folder: {holders}"


@dataclass(frozen=True)
class Founded:
    """A consortium after the ceremony: each organisation's folder, the coordinator's (the
    draft, the approvals, the sealed genesis, peers.json), each node's config and ports."""

    organisations: dict[str, Path]
    coordinator: Path
    genesis: Path
    configs: dict[str, Path]
    grpc_ports: dict[str, int]
    peer_ports: dict[str, int]
    rest_ports: dict[str, int]

    def grpc_address(self, org: str) -> str:
        return f"127.0.0.1:{self.grpc_ports[org]}"


def init_organisation(
    folder: Path, org: str, role: str, node_id: str, chain_id: str, peer_port: int
) -> dict:
    """`provledger org init` for an organisation running node `node_id`."""
    return cli_json(
        "org", "init", "--org", org, "--name", org.replace("-", " ").title(),
        "--role", role, "--chain-id", chain_id, "--dir", str(folder),
        "--node", node_id, "--host", f"{node_id}.example.org",
        "--peer-address", f"127.0.0.1:{peer_port}",
    )  # fmt: skip


def found_consortium(
    root: Path,
    chain_id: str,
    organisations_roles_nodes: Iterable[tuple[str, str, str]],
    rest: Iterable[str] = (),
) -> Founded:
    """Each organisation runs `org init` in `root/organisations/ORG`; the coordinator
    (`root/coordinator`) drafts the genesis from their public.json; each signs the draft it
    was sent; the coordinator seals it; each runs `org node-config` with the sealed genesis and
    peers.json (and a REST API for the organisations in `rest`)."""
    entries = list(organisations_roles_nodes)
    organisations = {org: root / "organisations" / org for org, _, _ in entries}
    coordinator = root / "coordinator"
    rest = set(rest)
    ports = free_ports(2 * len(entries) + len(rest))
    grpc_ports = dict(zip(organisations, ports[: len(entries)], strict=True))
    peer_ports = dict(zip(organisations, ports[len(entries) : 2 * len(entries)], strict=True))
    rest_ports = dict(zip(sorted(rest), ports[2 * len(entries) :], strict=True))

    # 1. Each organisation makes its keys, its TLS CA and its node's certificate at home.
    for org, role, node_id in entries:
        init_organisation(organisations[org], org, role, node_id, chain_id, peer_ports[org])
        courier(organisations[org] / "public.json", coordinator / f"{org}.public.json")

    # 2. The coordinator drafts the genesis from the public parts alone.
    draft = coordinator / "draft.json"
    drafted = cli_json(
        "genesis", "draft", "--chain-id", chain_id,
        *[a for org in organisations for a in ("--org", str(coordinator / f"{org}.public.json"))],
        "--out", str(draft), "--peers-out", str(coordinator / "peers.json"),
    )  # fmt: skip

    # 3. Each organisation signs the draft it was sent.
    approvals = []
    for org, folder in organisations.items():
        approval = cli_json(
            "genesis", "sign", "--draft", str(courier(draft, folder / "draft.json")),
            "--identity", str(folder / "identity.json"), "--out", str(folder / "approval.json"),
        )  # fmt: skip
        assert approval["draft_hash"] == drafted["draft_hash"]
        approvals += [
            "--approval",
            str(courier(folder / "approval.json", coordinator / f"{org}.approval.json")),
        ]

    # 4. The coordinator seals it.
    genesis = coordinator / "genesis.json"
    cli_json("genesis", "seal", "--draft", str(draft), *approvals, "--out", str(genesis))

    # 5. Each organisation configures its node from the sealed genesis and the peers' list.
    configs = {}
    for org, folder in organisations.items():
        received = folder / "received"
        rest_listen = ("--rest-listen", f"127.0.0.1:{rest_ports[org]}") if org in rest else ()
        configs[org] = Path(
            cli_json(
                "org", "node-config", "--dir", str(folder),
                "--genesis", str(courier(genesis, received / "genesis.json")),
                "--peers", str(courier(coordinator / "peers.json", received / "peers.json")),
                "--listen", f"127.0.0.1:{grpc_ports[org]}",
                "--peer-listen", f"127.0.0.1:{peer_ports[org]}", *rest_listen,
            )["config"]
        )  # fmt: skip
    return Founded(organisations, coordinator, genesis, configs, grpc_ports, peer_ports, rest_ports)


def add_peer_to_config(config: Path, peer_id: str, peer_address: str) -> None:
    """Name `peer_id` at `peer_address` in the [peers] table of a node's config, as its
    operator would (peer addresses are configuration, not on the ledger)."""
    text = config.read_text()
    assert text.count("[peers]\n") == 1, text
    config.write_text(text.replace("[peers]\n", f'[peers]\n{peer_id} = "{peer_address}"\n'))
