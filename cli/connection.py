"""How a command reaches a node's client API: `--node`, the CA to trust, and a read credential.

Every command that talks to a node takes
    --node HOST:PORT    the node's gRPC address
    --ca-cert FILE      the consortium CA's certificate (`ca/ca.pem` of `consortium init`;
                        env PROVLEDGER_CA_CERT); without it, the system's roots
    --plaintext         a development node serving plaintext on loopback
and, to read, a member's bearer token: `--token` (env PROVLEDGER_TOKEN), or `--identity FILE`,
with which a short-lived token is signed for this command (a submit signs its event with it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from provledger.cli.client import LedgerClient, read_token
from provledger.cli.output import CommandError, load_identity

DEFAULT_NODE = "127.0.0.1:7050"


def add_node_arguments(parser: argparse.ArgumentParser, reads: bool, many: bool = False) -> None:
    """The arguments above; `--identity` only for a command that `reads` (a submit has its own,
    required); with `many`, `--node` is repeated (required, a list) for a command that asks
    several nodes, each reached with the same CA and credential."""
    if many:
        parser.add_argument(
            "--node",
            action="append",
            required=True,
            metavar="HOST:PORT",
            help="a node's gRPC API; repeat for each node",
        )
    else:
        parser.add_argument("--node", default=DEFAULT_NODE, help="host:port of a node's gRPC API")
    parser.add_argument(
        "--ca-cert",
        default=os.environ.get("PROVLEDGER_CA_CERT"),
        metavar="FILE",
        help="the consortium CA certificate to trust (default: $PROVLEDGER_CA_CERT, else the "
        "system's roots)",
    )
    parser.add_argument(
        "--plaintext",
        action="store_true",
        help="no TLS: only a development node on a loopback address serves this",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("PROVLEDGER_TOKEN"),
        help="a member's bearer token for reads (default: $PROVLEDGER_TOKEN)",
    )
    if reads:
        parser.add_argument(
            "--identity",
            metavar="FILE",
            help="sign a short-lived read token with this identity (instead of --token)",
        )


def client_for(args: argparse.Namespace, address: str | None = None) -> LedgerClient:
    """A client for the node the arguments name (or at `address`), with their CA and read
    credential."""
    ca_certificate_pem = None
    if args.ca_cert and not args.plaintext:
        try:
            ca_certificate_pem = Path(args.ca_cert).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read --ca-cert {args.ca_cert}: {error.strerror}") from None
    token = args.token
    if token is None and getattr(args, "identity", None):
        token = read_token(load_identity(args.identity))
    return LedgerClient(
        args.node if address is None else address,
        ca_certificate_pem=ca_certificate_pem,
        token=token,
        plaintext=args.plaintext,
    )
