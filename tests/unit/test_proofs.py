"""protocol/proofs.py: a node's inclusion and consistency answers checked against the genesis.

The answers are built from a deterministic in-memory chain (four validators, a first block
with no events, then blocks of registrations): the honest answers verify, and each tampered
answer fails with its own code, whatever else in it is right.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, MemoryChain, digest

from provledger.protocol import blocks, events, merkle
from provledger.protocol.proofs import (
    ProofAnswerError,
    VerifiedConsistency,
    VerifiedInclusion,
    verify_consistency_answer,
    verify_inclusion_answer,
)
from provledger.v1 import ledger_pb2

BLOCK_INTERVAL_MS = 1_000
EVENTS_PER_BLOCK = (0, 3, 2, 4)  # the first block is empty: its log has size 0


@dataclass
class Ledger:
    consortium: Consortium
    events: list[ledger_pb2.SignedEvent]  # in log order
    checkpoints: list[ledger_pb2.Checkpoint]  # checkpoints[h - 1] commits height h
    headers: list[ledger_pb2.BlockHeader]
    nodes: dict[tuple[int, int], bytes]  # every perfect Merkle subtree: (level, index) -> hash

    def get_node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def inclusion(self, log_index: int, height: int) -> ledger_pb2.InclusionProof:
        size = self.headers[height - 1].log_size
        signed = self.events[log_index]
        leaf = events.log_leaf(self.consortium.decode(signed).event_id, signed.signature)
        return ledger_pb2.InclusionProof(
            leaf_index=log_index,
            tree_size=size,
            leaf_hash=merkle.hash_leaf(leaf),
            hashes=merkle.inclusion_proof(log_index, size, self.get_node),
        )

    def consistency(self, first_height: int, second_height: int) -> ledger_pb2.ConsistencyProof:
        first_size = self.headers[first_height - 1].log_size
        second_size = self.headers[second_height - 1].log_size
        hashes = (
            merkle.consistency_proof(first_size, second_size, self.get_node)
            if first_size > 0
            else []
        )
        return ledger_pb2.ConsistencyProof(
            first_size=first_size, second_size=second_size, hashes=hashes
        )

    def event_id(self, log_index: int) -> bytes:
        return self.consortium.decode(self.events[log_index]).event_id


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    consortium = Consortium()
    chain = MemoryChain(consortium)
    ledger = Ledger(consortium, [], [], [], {})
    for number, count in enumerate(EVENTS_PER_BLOCK, start=1):
        signed = [
            consortium.sign(
                "agency-a",
                "asset_registered",
                asset_id=f"block-{number}/asset-{index}",
                content_digest=digest(f"{number}/{index}"),
                classification=ledger_pb2.CLASSIFICATION_GENERAL,
            )
            for index in range(count)
        ]
        executed = chain.execute(signed, GENESIS_TIME_MS + number * BLOCK_INTERVAL_MS)
        certificate = consortium.certificate(executed)
        chain.commit(executed, certificate)
        ledger.events += signed
        ledger.headers.append(executed.header)
        ledger.checkpoints.append(
            ledger_pb2.Checkpoint(header=executed.header_bytes, certificate=certificate)
        )
        ledger.nodes.update(((level, index), node) for level, index, node in executed.merkle_nodes)
    assert [h.log_size for h in ledger.headers] == [0, 3, 5, 9]
    return ledger


def refused(code: str, check: Callable[[], object]) -> ProofAnswerError:
    with pytest.raises(ProofAnswerError) as caught:
        check()
    assert caught.value.code == code, caught.value
    assert caught.value.reason and str(caught.value) == f"{code}: {caught.value.reason}"
    return caught.value


def resigned(ledger: Ledger, header: ledger_pb2.BlockHeader) -> ledger_pb2.Checkpoint:
    """A checkpoint of `header` that every validator signed: what a node could only serve if
    the validators had committed this header."""
    header_bytes = blocks.encode_header(header)
    identifier = blocks.block_id(header_bytes)
    consortium = ledger.consortium
    return ledger_pb2.Checkpoint(
        header=header_bytes,
        certificate=ledger_pb2.CommitCertificate(
            height=header.height,
            block_id=identifier,
            signatures=[
                ledger_pb2.CommitSignature(
                    validator_id=validator_id,
                    signature=blocks.sign_precommit(
                        key, consortium.chain_id, header.height, 0, identifier
                    ),
                )
                for validator_id, key in consortium.validator_keys.items()
            ],
        ),
    )


def flipped(value: bytes, index: int = 0) -> bytes:
    return value[:index] + bytes([value[index] ^ 0x01]) + value[index + 1 :]


# --- inclusion ------------------------------------------------------------------------------


def test_an_honest_inclusion_answer_verifies(ledger: Ledger) -> None:
    genesis = ledger.consortium.genesis
    for height in (2, 3, 4):
        size = ledger.headers[height - 1].log_size
        for log_index in range(size):
            verified = verify_inclusion_answer(
                ledger.events[log_index],
                ledger.inclusion(log_index, height),
                ledger.checkpoints[height - 1],
                genesis,
                ledger.event_id(log_index),
            )
            assert verified == VerifiedInclusion(
                event_id=ledger.event_id(log_index),
                leaf_index=log_index,
                tree_size=size,
                height=height,
                log_root=ledger.headers[height - 1].log_root,
                signers=("validator-0", "validator-1", "validator-2", "validator-3"),
                validators=4,
                proof_hashes=len(ledger.inclusion(log_index, height).hashes),
            )
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.leaf_index = 0  # type: ignore[misc]


def test_a_quorum_of_signatures_is_enough(ledger: Ledger) -> None:
    checkpoint = ledger_pb2.Checkpoint()
    checkpoint.CopyFrom(ledger.checkpoints[3])
    del checkpoint.certificate.signatures[0]
    verified = verify_inclusion_answer(
        ledger.events[4], ledger.inclusion(4, 4), checkpoint, ledger.consortium.genesis,
        ledger.event_id(4),
    )  # fmt: skip
    assert verified.signers == ("validator-1", "validator-2", "validator-3")


def tampered_inclusion(
    ledger: Ledger,
    log_index: int = 4,
    height: int = 4,
    proof_fields: Mapping[str, object] | None = None,
    **changes: object,
) -> Callable[[], VerifiedInclusion]:
    """An honest inclusion answer for `log_index` at `height`, with `proof_fields` set on its
    proof and the parts named in `changes` replaced; call it to verify."""
    proof = ledger.inclusion(log_index, height)
    for name, value in (proof_fields or {}).items():
        if name == "hashes":
            del proof.hashes[:]
            proof.hashes.extend(value)  # type: ignore[call-overload]
        else:
            setattr(proof, name, value)
    parts: dict[str, object] = {
        "signed": ledger.events[log_index],
        "proof": proof,
        "checkpoint": ledger.checkpoints[height - 1],
        "genesis": ledger.consortium.genesis,
        "expected_event_id": ledger.event_id(log_index),
    }
    parts.update(changes)
    return lambda: verify_inclusion_answer(**parts)  # type: ignore[arg-type]


def test_a_different_event_is_refused(ledger: Ledger) -> None:
    refused("wrong_event", tampered_inclusion(ledger, signed=ledger.events[5]))
    # The node's event and proof are for the event it returned, but not the one asked for.
    refused(
        "wrong_event",
        tampered_inclusion(ledger, signed=ledger.events[5], proof=ledger.inclusion(5, 4)),
    )


def test_a_wrong_leaf_hash_is_refused(ledger: Ledger) -> None:
    honest = ledger.inclusion(4, 4)
    refused(
        "wrong_leaf_hash",
        tampered_inclusion(ledger, proof_fields={"leaf_hash": flipped(honest.leaf_hash)}),
    )
    # A signature that is not the one the log holds gives another leaf.
    event = ledger_pb2.SignedEvent()
    event.CopyFrom(ledger.events[4])
    event.signature = flipped(event.signature, 10)
    refused("wrong_leaf_hash", tampered_inclusion(ledger, signed=event))


def test_a_wrong_tree_size_is_refused(ledger: Ledger) -> None:
    refused("wrong_tree_size", tampered_inclusion(ledger, proof_fields={"tree_size": 8}))
    # An honest proof against an older checkpoint's tree, sent with the latest checkpoint.
    refused("wrong_tree_size", tampered_inclusion(ledger, proof=ledger.inclusion(4, 3)))


def test_a_bad_checkpoint_signature_is_refused(ledger: Ledger) -> None:
    checkpoint = ledger_pb2.Checkpoint()
    checkpoint.CopyFrom(ledger.checkpoints[3])
    entry = checkpoint.certificate.signatures[1]
    entry.signature = flipped(entry.signature, 5)
    error = refused("bad_checkpoint", tampered_inclusion(ledger, checkpoint=checkpoint))
    assert "validator-1" in error.reason and "does not verify" in error.reason


def test_checkpoints_without_a_quorum_or_for_another_chain_are_refused(ledger: Ledger) -> None:
    short = ledger_pb2.Checkpoint()
    short.CopyFrom(ledger.checkpoints[3])
    del short.certificate.signatures[2:]
    refused("bad_checkpoint", tampered_inclusion(ledger, checkpoint=short))

    other_chain = Consortium(chain_id="provledger-other").genesis
    refused("bad_checkpoint", tampered_inclusion(ledger, genesis=other_chain))

    malformed = ledger_pb2.Checkpoint(header=b"\xff\xff", certificate=short.certificate)
    refused("bad_checkpoint", tampered_inclusion(ledger, checkpoint=malformed))

    # A header changed after signing: the certificate is for another block.
    header = ledger_pb2.BlockHeader()
    header.CopyFrom(ledger.headers[3])
    header.log_root = flipped(header.log_root)
    changed = ledger_pb2.Checkpoint(
        header=blocks.encode_header(header), certificate=ledger.checkpoints[3].certificate
    )
    refused("bad_checkpoint", tampered_inclusion(ledger, checkpoint=changed))


def test_a_flipped_proof_hash_is_refused(ledger: Ledger) -> None:
    honest = list(ledger.inclusion(4, 4).hashes)
    assert len(honest) > 1
    for position in range(len(honest)):
        hashes = [*honest]
        hashes[position] = flipped(hashes[position], 31)
        error = refused("bad_proof", tampered_inclusion(ledger, proof_fields={"hashes": hashes}))
        assert "differs from the expected root" in error.reason


def test_malformed_proofs_are_refused(ledger: Ledger) -> None:
    honest = list(ledger.inclusion(4, 4).hashes)
    for proof_fields in (
        {"leaf_index": 5},  # a leaf off by one: the leaf hash then sits elsewhere
        {"leaf_index": 9},  # outside the tree
        {"hashes": honest[:-1]},  # one hash short
        {"hashes": [*honest, honest[0]]},  # one hash too many
        {"hashes": [honest[0][:31], *honest[1:]]},  # a hash cut short
    ):
        refused("bad_proof", tampered_inclusion(ledger, proof_fields=proof_fields))


# --- consistency ----------------------------------------------------------------------------


def test_an_honest_consistency_answer_verifies(ledger: Ledger) -> None:
    genesis = ledger.consortium.genesis
    for first in range(1, 5):
        for second in range(first, 5):
            proof = ledger.consistency(first, second)
            verified = verify_consistency_answer(
                proof, ledger.checkpoints[first - 1], ledger.checkpoints[second - 1], genesis
            )
            assert verified == VerifiedConsistency(
                first_height=first,
                first_size=ledger.headers[first - 1].log_size,
                second_height=second,
                second_size=ledger.headers[second - 1].log_size,
                proof_hashes=len(proof.hashes),
            )


def tampered_consistency(
    ledger: Ledger, first_height: int = 2, second_height: int = 4, **changes: object
) -> Callable[[], VerifiedConsistency]:
    """An honest consistency answer from `first_height` to `second_height`, with the parts
    named in `changes` replaced; call it to verify."""
    parts: dict[str, object] = {
        "proof": ledger.consistency(first_height, second_height),
        "first": ledger.checkpoints[first_height - 1],
        "second": ledger.checkpoints[second_height - 1],
        "genesis": ledger.consortium.genesis,
    }
    parts.update(changes)
    return lambda: verify_consistency_answer(**parts)  # type: ignore[arg-type]


def test_consistency_sizes_other_than_the_checkpoints_are_refused(ledger: Ledger) -> None:
    proof = ledger.consistency(2, 4)
    for first_size, second_size in ((proof.first_size + 1, proof.second_size),
                                    (proof.first_size, proof.second_size - 1)):  # fmt: skip
        wrong = ledger_pb2.ConsistencyProof(
            first_size=first_size, second_size=second_size, hashes=proof.hashes
        )
        refused("wrong_sizes", tampered_consistency(ledger, proof=wrong))
    # An honest proof between two other heights.
    refused("wrong_sizes", tampered_consistency(ledger, proof=ledger.consistency(3, 4)))


def test_a_flipped_consistency_hash_is_refused(ledger: Ledger) -> None:
    honest = ledger.consistency(2, 4)
    assert len(honest.hashes) > 1
    for position in range(len(honest.hashes)):
        hashes = list(honest.hashes)
        hashes[position] = flipped(hashes[position], 0)
        proof = ledger_pb2.ConsistencyProof(
            first_size=honest.first_size, second_size=honest.second_size, hashes=hashes
        )
        refused("bad_proof", tampered_consistency(ledger, proof=proof))
    short = ledger_pb2.ConsistencyProof(
        first_size=honest.first_size, second_size=honest.second_size, hashes=honest.hashes[1:]
    )
    refused("bad_proof", tampered_consistency(ledger, proof=short))


def test_checkpoints_in_the_wrong_order_are_refused(ledger: Ledger) -> None:
    backwards = ledger_pb2.ConsistencyProof(first_size=9, second_size=3)
    refused(
        "bad_proof",
        tampered_consistency(
            ledger, proof=backwards, first=ledger.checkpoints[3], second=ledger.checkpoints[1]
        ),
    )


def test_a_bad_signature_on_either_checkpoint_is_refused(ledger: Ledger) -> None:
    for which in ("first", "second"):
        height = 2 if which == "first" else 4
        checkpoint = ledger_pb2.Checkpoint()
        checkpoint.CopyFrom(ledger.checkpoints[height - 1])
        entry = checkpoint.certificate.signatures[0]
        entry.signature = flipped(entry.signature, 63)
        refused("bad_checkpoint", tampered_consistency(ledger, **{which: checkpoint}))


def test_an_empty_first_log_must_have_the_empty_root(ledger: Ledger) -> None:
    assert ledger.headers[0].log_size == 0
    verified = tampered_consistency(ledger, first_height=1)()
    assert (verified.first_size, verified.proof_hashes) == (0, 0)
    # Even a header the validators signed cannot claim an empty log with another root.
    header = ledger_pb2.BlockHeader()
    header.CopyFrom(ledger.headers[0])
    header.log_root = bytes(32)
    refused(
        "wrong_empty_root",
        tampered_consistency(ledger, first_height=1, first=resigned(ledger, header)),
    )
