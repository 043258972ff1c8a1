"""The approval thresholds of governance: "more than numerator/denominator of the active
members", one per kind of change and a default; which thresholds are acceptable; and how many
approvals one asks of a number of members. The rules (protocol/rules_governance.py) judge
changes with them; the genesis (protocol/genesis.py) checks the ones it states with them.

A threshold must let at least a majority decide (numerator/denominator >= 1/2) and be
reachable (< 1), with a denominator of 1..THRESHOLD_DENOMINATOR_MAX.
"""

from __future__ import annotations

from provledger.protocol.limits import THRESHOLD_DENOMINATOR_MAX
from provledger.protocol.state import StateReader
from provledger.v1 import ledger_pb2

# The change kinds: GovernanceChange's oneof, read from the schema.
CHANGE_KINDS = tuple(
    field.name for field in ledger_pb2.GovernanceChange.DESCRIPTOR.oneofs_by_name["change"].fields
)
# More than two thirds of the active members, as ADR 005 decided.
DEFAULT_THRESHOLD = ledger_pb2.Threshold(numerator=2, denominator=3)
THRESHOLDS_RECORD_ID = "current"


def threshold_problem(numerator: int, denominator: int) -> str | None:
    """Why "more than numerator/denominator of the active members" is not an acceptable
    threshold, or None."""
    if not 1 <= denominator <= THRESHOLD_DENOMINATOR_MAX:
        return f"the denominator must be 1..{THRESHOLD_DENOMINATOR_MAX}, got {denominator}"
    if 2 * numerator < denominator:
        return (
            f"more than {numerator}/{denominator} of the members would let less than a "
            "majority decide"
        )
    if numerator >= denominator:
        return f"more than {numerator}/{denominator} of the members can never be reached"
    return None


def thresholds(state: StateReader) -> ledger_pb2.Thresholds:
    """The thresholds in force: the state's (from the genesis or a change), or the default."""
    record = state.load("thresholds", THRESHOLDS_RECORD_ID)
    if record is not None:
        return record  # type: ignore[return-value]
    return ledger_pb2.Thresholds(default_threshold=DEFAULT_THRESHOLD)


def threshold_for(table: ledger_pb2.Thresholds, kind: str) -> ledger_pb2.Threshold:
    return table.by_kind.get(kind, table.default_threshold)


def approvals_needed(threshold: ledger_pb2.Threshold, active: int) -> int:
    """The fewest approvals that are more than the threshold's fraction of `active` members."""
    return active * threshold.numerator // threshold.denominator + 1
