"""Node configuration: a TOML file, paths in it relative to the file's folder.

[node]
id = "node-0"                 # the validator id in the genesis document
data_dir = "data"             # the LevelDB folder (made 0700 by the node: see private_files)
genesis = "../genesis.json"
validator_key = "validator-key.json"

[grpc]
listen = "127.0.0.1:7050"     # the client API

[peer]                        # only with other validators
listen = "127.0.0.1:7150"     # PeerService, mutual TLS
tls_dir = "tls"               # ca.pem, node.pem, node-key.pem

[peers]                       # the other validators' PeerService addresses
node-1 = "127.0.0.1:7151"

[consensus]                   # optional; defaults in protocol.consensus.Params
propose_timeout_ms = 3000

[rest]                        # optional; without it the auditor REST API is not served
listen = "127.0.0.1:7250"
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from provledger.protocol.consensus import Params


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    data_dir: Path
    genesis_path: Path
    validator_key_path: Path
    grpc_listen: str
    peer_listen: str | None = None
    tls_dir: Path | None = None
    peers: dict[str, str] = field(default_factory=dict)
    consensus: Params = field(default_factory=Params)
    rest_listen: str | None = None  # host:port of the auditor REST API; None: not served

    @classmethod
    def load(cls, path: Path | str) -> NodeConfig:
        path = Path(path)
        try:
            document = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"no config file at {path}") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from None
        base = path.resolve().parent
        try:
            node = document["node"]
            peer = document.get("peer", {})
            peers = {str(k): str(v) for k, v in document.get("peers", {}).items()}
            if peers and ("listen" not in peer or "tls_dir" not in peer):
                raise ConfigError(f"{path}: [peers] needs [peer] listen and tls_dir")
            known = {f.name for f in dataclasses.fields(Params)}
            settings = document.get("consensus", {})
            unknown = sorted(set(settings) - known)
            if unknown:
                raise ConfigError(f"{path}: unknown [consensus] settings {unknown}")
            return cls(
                node_id=str(node["id"]),
                data_dir=base / node.get("data_dir", "data"),
                genesis_path=base / node["genesis"],
                validator_key_path=base / node["validator_key"],
                grpc_listen=str(document.get("grpc", {}).get("listen", "127.0.0.1:7050")),
                peer_listen=str(peer["listen"]) if "listen" in peer else None,
                tls_dir=base / peer["tls_dir"] if "tls_dir" in peer else None,
                peers=peers,
                consensus=Params(**{k: int(v) for k, v in settings.items()}),
                rest_listen=_rest_listen(path, document.get("rest", {})),
            )
        except KeyError as error:
            raise ConfigError(f"{path}: missing setting {error}") from None


def split_host_port(address: str) -> tuple[str, int]:
    """("127.0.0.1", 7250) from "127.0.0.1:7250" ("[::1]:7250" gives "::1"); ValueError if
    the address is not host:port."""
    host, separator, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    return host, int(port)


def _rest_listen(path: Path, rest: object) -> str | None:
    if not isinstance(rest, dict):
        raise ConfigError(f"{path}: [rest] must be a table")
    if "listen" not in rest:
        return None
    address = str(rest["listen"])
    try:
        split_host_port(address)
    except ValueError as error:
        raise ConfigError(f"{path}: [rest] listen: {error}") from None
    return address


def render(
    node_id: str,
    genesis: str,
    validator_key: str,
    grpc_listen: str,
    peer_listen: str | None = None,
    peers: dict[str, str] | None = None,
    rest_listen: str | None = None,
) -> str:
    """A config file's text (TOML), as `consortium init` writes it."""
    text = (
        "[node]\n"
        f'id = "{node_id}"\n'
        'data_dir = "data"\n'
        f'genesis = "{genesis}"\n'
        f'validator_key = "{validator_key}"\n'
        "\n[grpc]\n"
        f'listen = "{grpc_listen}"\n'
    )
    if peers:
        text += f'\n[peer]\nlisten = "{peer_listen}"\ntls_dir = "tls"\n\n[peers]\n'
        text += "".join(f'{peer_id} = "{address}"\n' for peer_id, address in peers.items())
    if rest_listen is not None:
        text += f'\n[rest]\nlisten = "{rest_listen}"\n'
    return text
