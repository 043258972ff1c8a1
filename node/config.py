"""Node configuration: a TOML file, paths in it relative to the file's folder.

[node]
id = "node-0"                 # the validator id in the genesis document
data_dir = "data"             # the LevelDB folder (made 0700 by the node: see private_files)
genesis = "../genesis.json"
validator_key = "validator-key.json"

[grpc]
listen = "127.0.0.1:7050"     # the client API, over TLS
tls_dir = "tls"               # ca.pem, node.pem, node-key.pem: the node's certificate
# insecure_plaintext = true   # instead of tls_dir: development only, loopback addresses only
# connection_calls_per_s_max = 2000.0    # per client connection (node/grpc_connections.py)
# connection_call_burst_max = 4000
# connection_in_flight_bytes_max = 33554432

[peer]                        # only with other validators
listen = "127.0.0.1:7150"     # PeerService, mutual TLS
tls_dir = "tls"               # ca.pem, node.pem, node-key.pem

[peers]                       # the other validators' PeerService addresses
node-1 = "127.0.0.1:7151"

[consensus]                   # optional; defaults in protocol.consensus.Params
propose_timeout_ms = 3000

[rest]                        # optional; without it the auditor REST API is not served
listen = "127.0.0.1:7250"

[operations]                  # optional; without listen, /metrics, /live, /ready are not served
listen = "127.0.0.1:7350"     # plain HTTP, no token: loopback or a monitoring network only
ready_lag_blocks_max = 10     # not ready when more blocks behind the highest peer than this
ready_quorum_silence_s_max = 30.0  # not ready after this long with no commit and no quorum
                              # connected (node/readiness.py; docs/operations.md, Monitoring)

[admin]                       # optional
socket = "admin.sock"         # the admin Unix socket `node backup` asks (node/admin.py), 0600
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from provledger.node.grpc_connections import ConnectionLimits
from provledger.node.readiness import ReadinessSettings
from provledger.protocol.consensus import Params

# [grpc] settings that bound each client connection, and the ConnectionLimits field each sets.
_CONNECTION_SETTINGS = {
    "connection_calls_per_s_max": "calls_per_s_max",
    "connection_call_burst_max": "call_burst_max",
    "connection_in_flight_bytes_max": "in_flight_bytes_max",
}
_GRPC_SETTINGS = {"listen", "tls_dir", "insecure_plaintext", *_CONNECTION_SETTINGS}


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
    grpc_tls_dir: Path | None = None  # the client API's certificate; None: plaintext
    grpc_plaintext: bool = False  # development only, on a loopback address (checked at load)
    grpc_limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    operations_listen: str | None = None  # host:port of /metrics, /live, /ready; None: none
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    admin_socket: Path | None = None  # the admin Unix socket; None: not served

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
            grpc_settings = document.get("grpc", {})
            operations_listen, readiness = _operations(path, document.get("operations", {}))
            grpc_listen, grpc_tls_dir, grpc_plaintext, grpc_limits = _grpc(
                path, base, grpc_settings
            )
            return cls(
                node_id=str(node["id"]),
                data_dir=base / node.get("data_dir", "data"),
                genesis_path=base / node["genesis"],
                validator_key_path=base / node["validator_key"],
                grpc_listen=grpc_listen,
                peer_listen=str(peer["listen"]) if "listen" in peer else None,
                tls_dir=base / peer["tls_dir"] if "tls_dir" in peer else None,
                peers=peers,
                consensus=Params(**{k: int(v) for k, v in settings.items()}),
                rest_listen=_rest_listen(path, document.get("rest", {})),
                grpc_tls_dir=grpc_tls_dir,
                grpc_plaintext=grpc_plaintext,
                grpc_limits=grpc_limits,
                operations_listen=operations_listen,
                readiness=readiness,
                admin_socket=base / str(document.get("admin", {}).get("socket", "admin.sock")),
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


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, as in host:port) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _grpc(path: Path, base: Path, grpc: object) -> tuple[str, Path | None, bool, ConnectionLimits]:
    """The client API's [grpc] settings: (listen, tls_dir, plaintext, connection limits).

    The client API is served over TLS (`tls_dir`); plaintext only if `insecure_plaintext =
    true` says so, and only on a loopback address, where no one else can listen in."""
    if not isinstance(grpc, dict):
        raise ConfigError(f"{path}: [grpc] must be a table")
    unknown = sorted(set(grpc) - _GRPC_SETTINGS)
    if unknown:
        raise ConfigError(f"{path}: unknown [grpc] settings {unknown}")
    listen = str(grpc.get("listen", "127.0.0.1:7050"))
    try:
        host, _ = split_host_port(listen)
    except ValueError as error:
        raise ConfigError(f"{path}: [grpc] listen: {error}") from None
    plaintext = grpc.get("insecure_plaintext", False)
    if not isinstance(plaintext, bool):
        raise ConfigError(f"{path}: [grpc] insecure_plaintext must be true or false")
    tls_dir = base / str(grpc["tls_dir"]) if "tls_dir" in grpc else None
    if tls_dir is not None and plaintext:
        raise ConfigError(f"{path}: [grpc] has both tls_dir and insecure_plaintext; choose one")
    if tls_dir is None and not plaintext:
        raise ConfigError(
            f"{path}: [grpc] needs tls_dir: the client API is served over TLS (set "
            "insecure_plaintext = true instead only for development, on a loopback address)"
        )
    if plaintext and not is_loopback(host):
        raise ConfigError(
            f"{path}: [grpc] insecure_plaintext is refused on {listen}: plaintext is for "
            "development on a loopback address (127.0.0.1, ::1, localhost) only; serve TLS "
            "with tls_dir"
        )
    try:
        limits = ConnectionLimits(
            **{
                field_name: float(grpc[setting])
                if field_name == "calls_per_s_max"
                else int(grpc[setting])
                for setting, field_name in _CONNECTION_SETTINGS.items()
                if setting in grpc
            }
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: [grpc] connection limits: {error}") from None
    return listen, tls_dir, plaintext, limits


def _rest_listen(path: Path, rest: object, table: str = "rest") -> str | None:
    if not isinstance(rest, dict):
        raise ConfigError(f"{path}: [{table}] must be a table")
    if "listen" not in rest:
        return None
    address = str(rest["listen"])
    try:
        split_host_port(address)
    except ValueError as error:
        raise ConfigError(f"{path}: [{table}] listen: {error}") from None
    return address


_OPERATIONS_SETTINGS = {"listen", "ready_lag_blocks_max", "ready_quorum_silence_s_max"}


def _operations(path: Path, operations: object) -> tuple[str | None, ReadinessSettings]:
    """The [operations] settings, as NodeConfig fields."""
    if not isinstance(operations, dict):
        raise ConfigError(f"{path}: [operations] must be a table")
    unknown = sorted(set(operations) - _OPERATIONS_SETTINGS)
    if unknown:
        raise ConfigError(f"{path}: unknown [operations] settings {unknown}")
    listen = _rest_listen(path, operations, "operations")
    lag = operations.get("ready_lag_blocks_max", ReadinessSettings.lag_blocks_max)
    silence = operations.get("ready_quorum_silence_s_max", ReadinessSettings.quorum_silence_s_max)
    if not isinstance(lag, int) or isinstance(lag, bool):
        raise ConfigError(f"{path}: [operations] ready_lag_blocks_max must be an integer")
    if not isinstance(silence, int | float) or isinstance(silence, bool):
        raise ConfigError(f"{path}: [operations] ready_quorum_silence_s_max must be a number")
    try:
        readiness = ReadinessSettings(lag, float(silence))
    except ValueError as error:
        raise ConfigError(f"{path}: [operations] {error}") from None
    return listen, readiness


def render(
    node_id: str,
    genesis: str,
    validator_key: str,
    grpc_listen: str,
    peer_listen: str | None = None,
    peers: dict[str, str] | None = None,
    rest_listen: str | None = None,
    tls_dir: str = "tls",
    operations_listen: str | None = None,
) -> str:
    """A config file's text (TOML), as `consortium init` writes it: the client API over TLS
    with the node's certificate in `tls_dir`, which also serves its peers."""
    text = (
        "[node]\n"
        f'id = "{node_id}"\n'
        'data_dir = "data"\n'
        f'genesis = "{genesis}"\n'
        f'validator_key = "{validator_key}"\n'
        "\n[grpc]\n"
        f'listen = "{grpc_listen}"\n'
        f'tls_dir = "{tls_dir}"\n'
    )
    if peers:
        text += f'\n[peer]\nlisten = "{peer_listen}"\ntls_dir = "{tls_dir}"\n\n[peers]\n'
        text += "".join(f'{peer_id} = "{address}"\n' for peer_id, address in peers.items())
    if rest_listen is not None:
        text += f'\n[rest]\nlisten = "{rest_listen}"\n'
    if operations_listen is not None:
        text += f'\n[operations]\nlisten = "{operations_listen}"\n'
    return text
