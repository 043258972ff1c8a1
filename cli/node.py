"""`provledger node run`: one node process, from its config file, until Ctrl-C."""

from __future__ import annotations

import argparse

from provledger.cli.output import CommandError


def cmd_node_run(args: argparse.Namespace) -> None:
    # Imported here: the node's server and its dependencies (fastapi, uvicorn, LevelDB) are
    # needed by this command only.
    from provledger.node.config import ConfigError, NodeConfig
    from provledger.node.server import run

    try:
        config = NodeConfig.load(args.config)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    run(config)
