"""`provledger consortium init`: a genesis document, one folder per node, and identities.

DIR/genesis.json               the chain: members, roles, keys, validators
DIR/node-K/config.toml         node K's settings (ports on 127.0.0.1: gRPC base+K, peers
                               base+100+K, REST base+200+K, operations (/metrics,
                               /live, /ready) base+300+K)
DIR/node-K/validator-key.json  node K's validator key (owner-readable only)
DIR/node-K/tls/                node K's certificate under the consortium CA, with its key:
                               its client API (TLS) and its peers (mutual TLS) use it
DIR/identities/<member>.json   a key file a member's client signs with
DIR/ca/ca.pem                  the consortium CA's certificate: what clients trust
DIR/ca/ca-key.pem              the consortium CA's key

Node certificates name localhost and 127.0.0.1, and the names given with `--host`: `--host
NAME` for every node, `--host node-K=NAME` for node K only (repeatable), so that clients and
peers dialling a node by that name can check they reached it.

With `--listen-all` (containers: docker/compose.yaml) every listener binds 0.0.0.0 and each
node's peers dial it at its own `--host node-K=NAME`, which its certificate names; clients on
the host still dial 127.0.0.1 through the published ports.

Every key file is written 0600 and every folder made here 0700 (node/private_files.py).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provledger.cli.output import CommandError, emit
from provledger.node import config as node_config
from provledger.node import tls
from provledger.node.keyfile import new_signing_key, save_key
from provledger.node.private_files import make_private_directory, write_private_file
from provledger.protocol.privacy import DEFAULT_PATTERNS

PEER_PORT_OFFSET = 100
REST_PORT_OFFSET = 200
OPERATIONS_PORT_OFFSET = 300
ALL_INTERFACES = "0.0.0.0"  # what `--listen-all` binds (in a container: its own network)

DEFAULT_MEMBERS = (
    ("agency-a", "Provincial Health Commission", "agency"),
    ("agency-b", "Provincial Transport Department", "agency"),
    ("exchange", "Data Exchange", "exchange"),
    ("regulator", "Data Administration Bureau", "regulator"),
    ("auditor", "Audit Office", "auditor"),
)
# `consortium init --market`: a second regulator (an appeal is decided by a regulator who did
# not rule) and a broker, for the market's supervision (ADR 017, 018).
MARKET_MEMBERS = (
    ("market-regulator", "Market Supervision Administration", "regulator"),
    ("broker", "Licensed Data Broker", "broker"),
)


def cmd_consortium_init(args: argparse.Namespace) -> None:
    try:
        layout = init_consortium(
            Path(args.dir),
            args.nodes,
            chain_id=args.chain_id,
            base_port=args.base_port,
            with_identities=not args.no_identities,
            hosts=parse_hosts(args.host or (), args.nodes),
            members=DEFAULT_MEMBERS + (MARKET_MEMBERS if args.market else ()),
            listen_all=args.listen_all,
        )
    except (FileExistsError, ValueError) as error:
        raise CommandError(str(error)) from None
    nodes = list(
        zip(layout.node_configs, layout.grpc_addresses, layout.rest_addresses, strict=True)
    )
    document = {
        "genesis": str(layout.genesis_path),
        "ca_certificate": str(layout.ca_certificate),
        "nodes": [{"config": str(c), "grpc": a, "rest": r} for c, a, r in nodes],
        "identities": {m: str(p) for m, p in layout.identities.items()},
    }
    lines = [f"genesis    {layout.genesis_path}"]
    lines.append(f"CA         {layout.ca_certificate}  (clients trust it: --ca-cert)")
    lines += [f"node       {c}  (gRPC {a}, REST http://{r})" for c, a, r in nodes]
    lines += [f"identity   {p}" for p in layout.identities.values()]
    lines.append(f"start a node: provledger node run --config {layout.node_configs[0]}")
    emit(args, document, "\n".join(lines))


def default_personal_data_patterns() -> list[dict[str, str]]:
    """A new genesis's `personal_data_patterns`: free text matching one of these is refused
    (protocol/privacy.py, docs/security.md). `consortium init` and `genesis draft` write it."""
    return [{"name": name, "pattern": pattern} for name, pattern in DEFAULT_PATTERNS]


def parse_hosts(values: Iterable[str], nodes: int) -> dict[str, list[str]]:
    """{node id: extra host names} from `--host` values: NAME for every node, node-K=NAME for
    node K. A name is a DNS name or an IP address; ValueError otherwise."""
    node_ids = [f"node-{index}" for index in range(nodes)]
    hosts: dict[str, list[str]] = {node_id: [] for node_id in node_ids}
    for value in values:
        node_id, separator, name = value.rpartition("=")
        if separator and node_id not in hosts:
            raise ValueError(f"--host {value}: no node {node_id!r} (the nodes are {node_ids})")
        tls.validate_host(name)
        for target in [node_id] if separator else node_ids:
            if name not in hosts[target]:
                hosts[target].append(name)
    return hosts


def peer_hosts(hosts: Mapping[str, Sequence[str]], node_ids: Sequence[str]) -> dict[str, str]:
    """{node id: the name its peers dial} for `consortium init --listen-all`: the first of a
    node's `--host` names that no other node has (so given as node-K=NAME; it is in the
    node's certificate, which its peers check). ValueError if a node has none."""
    names = {}
    for node_id in node_ids:
        own = [
            name
            for name in hosts.get(node_id, ())
            if not any(name in hosts.get(other, ()) for other in node_ids if other != node_id)
        ]
        if not own:
            raise ValueError(
                f"--listen-all: give --host {node_id}=NAME, the name its peers dial it at"
            )
        names[node_id] = own[0]
    return names


def consortium_ports(base_port: int, nodes: int) -> list[int]:
    """Every 127.0.0.1 port `init_consortium(..., nodes, base_port=base_port)` writes into
    the node configs: client API, REST API and, with more than one node, PeerService."""
    offsets = [0, REST_PORT_OFFSET, OPERATIONS_PORT_OFFSET]
    offsets += [PEER_PORT_OFFSET] if nodes > 1 else []
    return [base_port + offset + index for offset in offsets for index in range(nodes)]


@dataclass(frozen=True)
class ConsortiumLayout:
    directory: Path
    genesis_path: Path
    node_configs: list[Path]
    identities: dict[str, Path]
    grpc_addresses: list[str]
    rest_addresses: list[str] = field(default_factory=list)
    ca_certificate: Path = Path()  # the consortium CA's certificate, which clients trust
    operations_addresses: list[str] = field(default_factory=list)  # /metrics, /live, /ready


def init_consortium(
    directory: Path,
    nodes: int,
    chain_id: str = "provledger-local",
    base_port: int = 7050,
    with_identities: bool = True,
    hosts: Mapping[str, Sequence[str]] | None = None,
    members: Sequence[tuple[str, str, str]] = DEFAULT_MEMBERS,
    supervision: Mapping[str, int] | None = None,
    listen_all: bool = False,
) -> ConsortiumLayout:
    """Write a consortium of `nodes` validators into `directory` (see the module's notes).
    `hosts` are further names per node id for its certificate (`parse_hosts`); `members` are
    (member id, name, role); `supervision` is the genesis's rules of supervision
    ({"appeal_window_ms": N, "appeal_panel_size": k}; None: the defaults). `listen_all`:
    every listener binds all interfaces and peers dial each other by name (`peer_hosts`), as
    in containers on one network (docker/compose.yaml); the addresses returned stay the
    127.0.0.1 ones a client on the same host dials (through published ports)."""
    if nodes < 1:
        raise ValueError("a consortium needs at least one node")
    make_private_directory(directory)
    if (directory / "genesis.json").exists():
        raise FileExistsError(f"{directory / 'genesis.json'} exists; choose an empty folder")
    validators = []
    configs = []
    addresses = []
    rest_addresses = []
    operations_addresses = []
    node_ids = [f"node-{index}" for index in range(nodes)]
    peer_addresses = {
        node_id: f"127.0.0.1:{base_port + PEER_PORT_OFFSET + index}"
        for index, node_id in enumerate(node_ids)
    }
    listen_host = "127.0.0.1"
    if listen_all:
        listen_host = ALL_INTERFACES
        names = peer_hosts(hosts or {}, node_ids)
        peer_addresses = {
            node_id: f"{names[node_id]}:{base_port + PEER_PORT_OFFSET + index}"
            for index, node_id in enumerate(node_ids)
        }
    ca_certificate, ca_key = tls.create_ca(chain_id)
    make_private_directory(directory / "ca")
    ca_path = directory / "ca" / "ca.pem"
    ca_path.write_bytes(ca_certificate)
    write_private_file(directory / "ca" / "ca-key.pem", ca_key)
    if with_identities:
        make_private_directory(directory / "identities")
    for index, node_id in enumerate(node_ids):
        node_dir = directory / node_id
        make_private_directory(node_dir)
        key = new_signing_key()
        save_key(node_dir / "validator-key.json", key, validator_id=node_id)
        validators.append({"validator_id": node_id, "public_key": key.public_key.hex()})
        address = f"127.0.0.1:{base_port + index}"
        addresses.append(address)
        rest_addresses.append(f"127.0.0.1:{base_port + REST_PORT_OFFSET + index}")
        operations_addresses.append(f"127.0.0.1:{base_port + OPERATIONS_PORT_OFFSET + index}")
        certificate, certificate_key = tls.issue_node_certificate(
            ca_certificate, ca_key, node_id, extra_hosts=(hosts or {}).get(node_id, ())
        )
        tls.save_tls_material(node_dir / "tls", ca_certificate, certificate, certificate_key)
        peers = {p: a for p, a in peer_addresses.items() if p != node_id}
        config_path = node_dir / "config.toml"
        config_path.write_text(
            node_config.render(
                node_id,
                "../genesis.json",
                "validator-key.json",
                f"{listen_host}:{base_port + index}",
                peer_listen=f"{listen_host}:{base_port + PEER_PORT_OFFSET + index}",
                peers=peers,
                rest_listen=f"{listen_host}:{base_port + REST_PORT_OFFSET + index}",
                operations_listen=f"{listen_host}:{base_port + OPERATIONS_PORT_OFFSET + index}",
            )
        )
        configs.append(config_path)

    member_entries = []
    identities: dict[str, Path] = {}
    for member_id, name, role in members if with_identities else ():
        key = new_signing_key()
        path = directory / "identities" / f"{member_id}.json"
        save_key(path, key, member_id=member_id, role=role, chain_id=chain_id)
        identities[member_id] = path
        member_entries.append(
            {
                "member_id": member_id,
                "name": name,
                "role": role,
                "public_keys": [key.public_key.hex()],
            }
        )
    genesis = {
        "chain_id": chain_id,
        "genesis_time_ms": time.time_ns() // 1_000_000,
        "members": member_entries,
        "validators": validators,
        "personal_data_patterns": default_personal_data_patterns(),
    }
    if supervision is not None:
        genesis["supervision"] = dict(supervision)
    genesis_path = directory / "genesis.json"
    genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")
    return ConsortiumLayout(
        directory,
        genesis_path,
        configs,
        identities,
        addresses,
        rest_addresses,
        ca_path,
        operations_addresses,
    )
