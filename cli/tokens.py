"""`provledger token issue`: a bearer token for reads over REST and gRPC, signed with a member's
identity key (protocol/tokens.py defines the token; nodes check it against the ledger)."""

from __future__ import annotations

import argparse
import sys
import time

from provledger.cli.output import CommandError, emit, load_identity
from provledger.protocol.genesis import role_name
from provledger.protocol.limits import TOKEN_TTL_MS_MAX
from provledger.protocol.tokens import AUDITOR_LEDGER_ROLES, issue_token


def cmd_token_issue(args: argparse.Namespace) -> None:
    identity = load_identity(args.identity)
    ttl_ms = args.ttl_s * 1000
    if not 0 < ttl_ms <= TOKEN_TTL_MS_MAX:
        raise CommandError(f"--ttl-s must be 1..{TOKEN_TTL_MS_MAX // 1000} seconds")
    auditor_roles = {role_name(role) for role in AUDITOR_LEDGER_ROLES}
    if args.role == "auditor" and identity.role and identity.role not in auditor_roles:
        print(
            f"provledger: warning: {identity.member_id!r} was created as {identity.role}; "
            "nodes accept auditor tokens only from auditors and regulators",
            file=sys.stderr,
        )
    issued_at_ms = time.time_ns() // 1_000_000
    token = issue_token(
        identity.key, identity.member_id, args.role, identity.chain_id, issued_at_ms, ttl_ms
    )
    emit(
        args,
        {
            "token": token,
            "member_id": identity.member_id,
            "role": args.role,
            "chain_id": identity.chain_id,
            "issued_at_ms": issued_at_ms,
            "expires_at_ms": issued_at_ms + ttl_ms,
        },
        token,
    )
