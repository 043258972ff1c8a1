"""The rules of supervision in force: how long a party may appeal a ruling, and how many
regulators must decide an appeal alike. The genesis document sets them (`supervision`); a
genesis without them has the defaults of protocol/limits.py (ADR 017).
"""

from __future__ import annotations

from provledger.protocol.limits import APPEAL_PANEL_SIZE_DEFAULT, APPEAL_WINDOW_MS_DEFAULT
from provledger.protocol.state import StateReader
from provledger.v1 import state_pb2

SUPERVISION_RECORD_ID = "current"


def supervision_policy(state: StateReader) -> state_pb2.SupervisionPolicy:
    """The policy in force: the genesis's, or the defaults."""
    record = state.load("supervision", SUPERVISION_RECORD_ID)
    if record is not None:
        return record  # type: ignore[return-value]
    return state_pb2.SupervisionPolicy(
        appeal_window_ms=APPEAL_WINDOW_MS_DEFAULT, appeal_panel_size=APPEAL_PANEL_SIZE_DEFAULT
    )
