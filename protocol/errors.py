"""Typed errors of the protocol layer.

`Rejected` is for bad input: an event, block or proof that breaks a rule. It carries a stable
machine-readable `code` (clients switch on it) and a `reason` for people, and its `kind` says
which gRPC status the node maps it to. Rejections are expected and never crash the node.

`InvariantViolation` is for bugs: a state that must be impossible. `check` raises it; unlike
`assert` it survives `python -O`.
"""

from __future__ import annotations

import enum


class RejectionKind(enum.Enum):
    INVALID = "invalid"  # malformed or self-contradictory input
    FORBIDDEN = "forbidden"  # the author may not do this (role, ownership, grant)
    PRECONDITION = "precondition"  # the ledger's state does not allow it now
    DUPLICATE = "duplicate"  # already recorded (same id, replayed nonce)


class CodedError(Exception):
    """An answer other than yes: a stable `code` for programs and a `reason` for people. Every
    error a caller may branch on (rejections, tokens, proof answers, queries) is one."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class Rejected(CodedError):
    """Input that breaks a rule; changes nothing."""

    def __init__(self, kind: RejectionKind, code: str, reason: str) -> None:
        super().__init__(code, reason)
        self.kind = kind


def invalid(code: str, reason: str) -> Rejected:
    return Rejected(RejectionKind.INVALID, code, reason)


def forbidden(code: str, reason: str) -> Rejected:
    return Rejected(RejectionKind.FORBIDDEN, code, reason)


def precondition(code: str, reason: str) -> Rejected:
    return Rejected(RejectionKind.PRECONDITION, code, reason)


def duplicate(code: str, reason: str) -> Rejected:
    return Rejected(RejectionKind.DUPLICATE, code, reason)


class InvariantViolation(Exception):
    """A state the code must never reach: a bug, not bad input."""


def check(condition: bool, message: str) -> None:
    """An always-on assertion (Python's `assert` vanishes under -O)."""
    if not condition:
        raise InvariantViolation(message)
