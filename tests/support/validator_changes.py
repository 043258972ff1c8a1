"""Validator-set changes for tests: governance events that add and remove validators, and a
`Chain` of two `LedgerApplication`s, a proposer and a follower that commits every block as a
synced one (certificate checked, block re-executed), over any two `ChainStore`s (in-memory or
the node's LevelDB store). Validator keys are `signing_key(validator_id)`, as the
`Consortium`'s are, so a validator added here signs like a genesis one.

`changed_chain` builds blocks 1-7 with one validator added and one removed, and
`Chain.forged` a second block at a height signed by a quorum of any set: a fork after the
changes, for fork proofs, `audit watch` and the node's fork log.
"""

from __future__ import annotations

from collections.abc import Sequence

from support.memory_state import GENESIS_TIME_MS, Consortium, digest, signing_key

from provledger.protocol import blocks
from provledger.protocol.application import ChainStore, LedgerApplication, Origin, commit_now
from provledger.protocol.events import DecodedEvent
from provledger.v1 import ledger_pb2

QUORUM = ("agency-a", "agency-b", "exchange", "regulator")  # 4 of 5 active members


def change(kind: str, nonce: int, **fields) -> ledger_pb2.GovernanceChange:
    return ledger_pb2.GovernanceChange(proposal_nonce=nonce, **{kind: fields})


def add(
    consortium: Consortium, validator_id: str, nonce: int, key=None, tls_ca: bytes = b""
) -> ledger_pb2.SignedEvent:
    public_key = (key or signing_key(validator_id)).public_key
    return consortium.govern(
        "agency-a",
        change(
            "validator_added",
            nonce,
            validator_id=validator_id,
            public_key=public_key,
            tls_ca=tls_ca,
        ),
        QUORUM,
    )


def replace_tls_ca(
    consortium: Consortium, validator_id: str, nonce: int, tls_ca: bytes
) -> ledger_pb2.SignedEvent:
    return consortium.govern(
        "agency-a",
        change("tls_ca_replaced", nonce, validator_id=validator_id, tls_ca=tls_ca),
        QUORUM,
    )


def remove(consortium: Consortium, validator_id: str, nonce: int) -> ledger_pb2.SignedEvent:
    return consortium.govern(
        "agency-a", change("validator_removed", nonce, validator_id=validator_id), QUORUM
    )


class Chain:
    """A proposer and a follower over in-memory stores, committing one block per `block`."""

    def __init__(self, consortium: Consortium, leader: ChainStore, follower: ChainStore) -> None:
        self.consortium = consortium
        self.genesis = consortium.genesis
        self.leader = LedgerApplication(self.genesis, leader, "leader")
        self.follower = LedgerApplication(self.genesis, follower, "follower")
        self.now_ms = GENESIS_TIME_MS
        self.headers: list[ledger_pb2.BlockHeader] = []

    @property
    def height(self) -> int:
        return self.leader.store.head_height

    def signers(self, height: int) -> list[str]:
        return [v.validator_id for v in self.leader.validator_set(height).validators]

    def certificate(
        self, block: ledger_pb2.Block, signers: Sequence[str], round_number: int = 0
    ) -> ledger_pb2.CommitCertificate:
        header = blocks.decode_header(block.header)
        identifier = blocks.block_id(block.header)
        return ledger_pb2.CommitCertificate(
            height=header.height,
            round=round_number,
            block_id=identifier,
            signatures=[
                ledger_pb2.CommitSignature(
                    validator_id=name,
                    signature=blocks.sign_precommit(
                        signing_key(name),
                        self.consortium.chain_id,
                        header.height,
                        round_number,
                        identifier,
                    ),
                )
                for name in sorted(signers)
            ],
        )

    def checkpoint(self, height: int) -> ledger_pb2.Checkpoint:
        found = self.leader.store.checkpoint(height)
        assert found is not None
        return found

    def forged(
        self,
        height: int,
        signers: Sequence[str] | None = None,
        round_number: int = 0,
        validators_hash: bytes | None = None,
    ) -> ledger_pb2.Checkpoint:
        """Another block at committed `height` (the committed one, its time a millisecond
        later, or naming `validators_hash`), signed by `signers` (default: the whole set of
        that height) in `round_number`: what a Byzantine quorum of that set would hand out."""
        header = blocks.decode_header(self.checkpoint(height).header)
        header.time_ms += 1
        if validators_hash is not None:
            header.validators_hash = validators_hash
        block = ledger_pb2.Block(header=blocks.encode_header(header))
        chosen = self.signers(height) if signers is None else signers
        return ledger_pb2.Checkpoint(
            header=block.header, certificate=self.certificate(block, chosen, round_number)
        )

    def admit(self, events: Sequence[ledger_pb2.SignedEvent]) -> list:
        app = self.leader
        return app.admit(app.decode_all(events), self.now_ms, Origin.CLIENT)

    def block(
        self,
        events: Sequence[ledger_pb2.SignedEvent] = (),
        *,
        proposer: str | None = None,
        evidence: Sequence[ledger_pb2.Evidence] = (),
    ) -> ledger_pb2.Block:
        """Admit `events`, propose the next block by the height's first validator (or
        `proposer`), commit it on both with a certificate by the whole set of its height."""
        outcomes = self.admit(events)
        assert all(isinstance(o, DecodedEvent) for o in outcomes), outcomes
        for item in evidence:
            assert self.leader.add_evidence(item)
        height = self.height + 1
        self.leader.node_id = proposer or self.signers(height)[0]
        self.now_ms += 1_000
        block = self.leader.propose(height, 0, self.now_ms)
        assert not [r for r in self.leader.take_reports()], "every event made it"
        certificate = self.certificate(block, self.signers(height))
        for app in (self.leader, self.follower):
            store = app.store
            executed = commit_now(
                app.commit(block, certificate, writer(store), synced=app is self.follower)
            )
            assert executed is not None
        self.headers.append(blocks.decode_header(block.header))
        return block


def writer(store: ChainStore):
    """A `BlockWriter` that commits to `store` at once (for `commit_now`)."""

    async def write(executed, certificate) -> None:
        store.commit_block(executed, certificate)

    return write


def changed_chain(consortium: Consortium, leader: ChainStore, follower: ChainStore) -> Chain:
    """Blocks 1-7: validator-4 added at 1 (signs from 3), validator-0 removed at 4 (signs from
    6: validator-1 to validator-4 sign 6 and 7), an asset registered at 7."""
    chain = Chain(consortium, leader, follower)
    chain.block([add(consortium, "validator-4", 1)])
    chain.block()
    chain.block()
    chain.block([remove(consortium, "validator-0", 2)])
    chain.block()
    chain.block()
    asset = consortium.sign(
        "agency-b",
        "asset_registered",
        asset_id="after-the-changes",
        content_digest=digest("after the changes"),
        classification=ledger_pb2.CLASSIFICATION_GENERAL,
    )
    chain.block([asset])
    assert chain.signers(7) == ["validator-1", "validator-2", "validator-3", "validator-4"]
    return chain
