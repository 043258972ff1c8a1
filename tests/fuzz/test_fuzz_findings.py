"""What the fuzzers found, one regression test each, marked strict xfail: each fails today and
will pass (so the xfail must then be removed) once the product code is fixed. Each finding is
also listed in `_harness.RECORDED_FINDINGS`, so that the fuzz targets tally it when they meet
it again instead of stopping there.

The known defects being fixed elsewhere while this suite was written (`KNOWN_DEFECTS` in
tests/fuzz/_harness.py) have no test here.
"""

from __future__ import annotations

import base64

import pytest
from fuzz._story import SEED_TIME_MS, memory_world
from sim.memory_store import MemoryChainStore

from provledger.protocol import blocks
from provledger.protocol.application import LedgerApplication
from provledger.protocol.tokens import TokenError, issue_token, verify_token
from provledger.v1 import ledger_pb2

INT64_MAX = 2**63 - 1


def _story_chain() -> MemoryChainStore:
    """A fresh in-memory store holding the story's blocks (one this test may write to)."""
    world = memory_world()
    chain = MemoryChainStore(world.consortium.genesis)
    for block, certificate in world.chain.blocks:
        executed = blocks.validate_block(
            block=block,
            state=chain,
            log=chain.log,
            tip=chain.tip,
            genesis=world.consortium.genesis,
            signatures_checked=lambda _: True,
        )
        chain.commit_block(executed, certificate)
    return chain


def _empty_block_at(chain: MemoryChainStore, time_ms: int) -> blocks.ExecutedBlock:
    """An honestly executed empty block on `chain`'s tip, with the header time `time_ms`."""
    world = memory_world()
    return blocks.execute_block(
        state=chain,
        log=chain.log,
        tip=chain.tip,
        chain_id=world.consortium.chain_id,
        candidates=[],
        time_ms=time_ms,
        proposer_id="validator-0",
        validators=world.consortium.genesis.validator_set,
        last_commit=chain.checkpoint(chain.head_height).certificate,  # type: ignore[union-attr]
        strict=True,
    )


@pytest.mark.xfail(
    strict=True,
    reason="finding: LedgerApplication.validate accepts a proposal whose block time is "
    "2^63-1 ms, however far ahead of the validator's clock (validate_block's "
    "time_drift_ms_max is never passed); once such a block commits, propose raises "
    "ValueError (BlockHeader time_ms out of range) and the chain stops",
)
def test_a_proposal_far_ahead_of_the_validators_clock_is_invalid() -> None:
    world = memory_world()
    chain = _story_chain()
    block = _empty_block_at(chain, INT64_MAX).to_block()
    app = LedgerApplication(world.consortium.genesis, chain, "validator-1")

    assert app.validate(block, SEED_TIME_MS) is False


@pytest.mark.xfail(
    strict=True,
    reason="finding: verify_token accepts a token whose base64url parts spell the same "
    "bytes with other unused trailing bits (protocol/tokens.py _decode does not check that "
    "the text is the canonical encoding), so each token has up to 256 spellings",
)
def test_a_token_spelled_with_other_trailing_bits_is_refused() -> None:
    world = memory_world()
    auditor = world.consortium["auditor"]
    token = issue_token(
        auditor.key, "auditor", "auditor", world.consortium.chain_id, SEED_TIME_MS, 3_600_000
    )
    payload, signature = token.split(".")
    assert len(payload) % 4 == 2  # the last character carries 4 unused bits
    last = payload[-1]
    respelled = payload[:-1] + ("B" if last == "A" else "A") + "." + signature
    assert _decode_parts(respelled) == _decode_parts(token)

    with pytest.raises(TokenError):
        verify_token(
            respelled,
            lambda member_id: world.state.load("member", member_id),
            world.consortium.chain_id,
            SEED_TIME_MS + 1_000,
        )


def _decode_parts(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "==") for part in token.split(".")]


def test_the_story_chain_is_the_memory_worlds() -> None:
    assert _story_chain().tip == memory_world().chain.tip
    assert isinstance(memory_world().chain.blocks[0][0], ledger_pb2.Block)
