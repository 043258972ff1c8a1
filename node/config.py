"""Node configuration: a TOML file, paths in it relative to the file's folder.

[node]
id = "node-0"                 # the validator id in the genesis document
data_dir = "data"             # the LevelDB folder
genesis = "../genesis.json"
validator_key = "validator-key.json"

[grpc]
listen = "127.0.0.1:7050"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class NodeConfig:
    node_id: str
    data_dir: Path
    genesis_path: Path
    validator_key_path: Path
    grpc_listen: str

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
            return cls(
                node_id=str(node["id"]),
                data_dir=base / node.get("data_dir", "data"),
                genesis_path=base / node["genesis"],
                validator_key_path=base / node["validator_key"],
                grpc_listen=str(document.get("grpc", {}).get("listen", "127.0.0.1:7050")),
            )
        except KeyError as error:
            raise ConfigError(f"{path}: missing setting {error}") from None


def render(node_id: str, genesis: str, validator_key: str, grpc_listen: str) -> str:
    """A config file's text (TOML), as `consortium init` writes it."""
    return (
        "[node]\n"
        f'id = "{node_id}"\n'
        'data_dir = "data"\n'
        f'genesis = "{genesis}"\n'
        f'validator_key = "{validator_key}"\n'
        "\n[grpc]\n"
        f'listen = "{grpc_listen}"\n'
    )
