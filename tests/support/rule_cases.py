"""A refusal case of the rule tables (tests/unit/test_rules.py, test_rules_market.py,
test_rules_customs.py): an event, the setup that makes it wrong, and the code, kind and reason
fragment it must be refused with, at a block time and height. One shape for every table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, MemoryState

from provledger.protocol.errors import RejectionKind
from provledger.v1 import ledger_pb2

BLOCK_TIME_MS = GENESIS_TIME_MS + 10_000  # block time of the event under test
BLOCK_HEIGHT = 2  # the block height of the event under test

SignedMaker = Callable[[Consortium], ledger_pb2.SignedEvent]
Setup = Callable[[Consortium, MemoryState], Any]


@dataclass(frozen=True)
class Case:
    make: SignedMaker
    kind: RejectionKind
    code: str
    fragment: str
    setup: Setup | None = None
    time_ms: int = BLOCK_TIME_MS
    height: int = BLOCK_HEIGHT


def reject(
    case_id: str,
    make: SignedMaker,
    kind: RejectionKind,
    code: str,
    fragment: str,
    setup: Setup | None = None,
    time_ms: int = BLOCK_TIME_MS,
    marks: Any = (),
    height: int = BLOCK_HEIGHT,
) -> Any:
    return pytest.param(
        Case(make, kind, code, fragment, setup, time_ms, height), id=case_id, marks=marks
    )
