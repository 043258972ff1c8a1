"""Two chains of one deterministic consortium that share their first blocks and then fork:
what a Byzantine quorum signing two histories would leave behind, for unit tests of fork
proofs and of `audit watch`.

    chains = forked_chains()
    chains.honest.checkpoint(3), chains.forked.checkpoint(3)      # two blocks at height 3
    chains.forked.consistency(3, 4)                               # proofs over its own log

Both chains hold blocks of (0, 3, 2, 4) registrations, so their logs have 0, 3, 5 and 9
leaves after heights 1-4. Heights 1 and 2 are the same blocks in both; from height 3 on the
forked chain registers other assets, so its blocks, log roots and state roots differ. Every
block is signed by every validator in round 0 unless a test re-signs it (`resign`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from support.memory_state import GENESIS_TIME_MS, Consortium, MemoryChain, digest

from provledger.protocol import blocks, merkle
from provledger.v1 import ledger_pb2

BLOCK_INTERVAL_MS = 1_000
EVENTS_PER_BLOCK = (0, 3, 2, 4)
FORK_HEIGHT = 3  # the first height whose blocks differ


@dataclass
class Chain:
    """One chain's checkpoints and the perfect Merkle subtrees of its log."""

    consortium: Consortium
    checkpoints: list[ledger_pb2.Checkpoint] = field(default_factory=list)  # [h - 1]: height h
    headers: list[ledger_pb2.BlockHeader] = field(default_factory=list)
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return len(self.checkpoints)

    def checkpoint(self, height: int) -> ledger_pb2.Checkpoint:
        return self.checkpoints[height - 1]

    def header(self, height: int) -> ledger_pb2.BlockHeader:
        return self.headers[height - 1]

    def consistency(self, first_height: int, second_height: int) -> ledger_pb2.ConsistencyProof:
        """What a node of this chain answers: the proof between its own logs at both heights."""
        first_size = self.header(first_height).log_size
        second_size = self.header(second_height).log_size
        hashes = (
            merkle.consistency_proof(first_size, second_size, lambda lv, i: self.nodes[(lv, i)])
            if 0 < first_size < second_size
            else []
        )
        return ledger_pb2.ConsistencyProof(
            first_size=first_size, second_size=second_size, hashes=hashes
        )


@dataclass
class ForkedChains:
    consortium: Consortium
    honest: Chain
    forked: Chain

    def resign(
        self,
        checkpoint: ledger_pb2.Checkpoint,
        signers: Iterable[str] | None = None,
        round_number: int = 0,
        header: ledger_pb2.BlockHeader | None = None,
    ) -> ledger_pb2.Checkpoint:
        """`checkpoint` (or `header`, re-encoded) signed anew by `signers` (default: every
        validator) in `round_number`: what validators who signed it would hand out."""
        header_bytes = blocks.encode_header(header) if header is not None else checkpoint.header
        identifier = blocks.block_id(header_bytes)
        height = blocks.decode_header(header_bytes).height
        consortium = self.consortium
        chosen = consortium.validator_keys if signers is None else signers
        return ledger_pb2.Checkpoint(
            header=header_bytes,
            certificate=ledger_pb2.CommitCertificate(
                height=height,
                round=round_number,
                block_id=identifier,
                signatures=[
                    ledger_pb2.CommitSignature(
                        validator_id=validator_id,
                        signature=blocks.sign_precommit(
                            consortium.validator_keys[validator_id],
                            consortium.chain_id,
                            height,
                            round_number,
                            identifier,
                        ),
                    )
                    for validator_id in chosen
                ],
            ),
        )


def _build(consortium: Consortium, prefix: str) -> Chain:
    chain = MemoryChain(consortium)
    built = Chain(consortium)
    for number, count in enumerate(EVENTS_PER_BLOCK, start=1):
        label = "shared" if number < FORK_HEIGHT else prefix
        signed = [
            consortium.sign(
                "agency-a",
                "asset_registered",
                nonce=number * 100 + index,
                asset_id=f"{label}-{number}/asset-{index}",
                content_digest=digest(f"{label}-{number}/{index}"),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
            )
            for index in range(count)
        ]
        executed = chain.execute(signed, GENESIS_TIME_MS + number * BLOCK_INTERVAL_MS)
        certificate = consortium.certificate(executed)
        chain.commit(executed, certificate)
        built.headers.append(executed.header)
        built.checkpoints.append(
            ledger_pb2.Checkpoint(header=executed.header_bytes, certificate=certificate)
        )
        built.nodes.update(((level, index), node) for level, index, node in executed.merkle_nodes)
    return built


def forked_chains() -> ForkedChains:
    consortium = Consortium()
    honest = _build(consortium, "honest")
    forked = _build(consortium, "forked")
    assert [h.log_size for h in honest.headers] == [0, 3, 5, 9]
    assert honest.checkpoints[: FORK_HEIGHT - 1] == forked.checkpoints[: FORK_HEIGHT - 1]
    assert honest.checkpoint(FORK_HEIGHT).header != forked.checkpoint(FORK_HEIGHT).header
    return ForkedChains(consortium, honest, forked)
