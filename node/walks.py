"""Proofs read from the store that more than one answer carries: an event's inclusion proof
as a message, and the walk of the validator sets from the genesis to a height
(protocol/validator_chain.py). Proof answers (node/queries.py) and evidence bundles
(node/bundles.py) both carry walks, so both ask here.
"""

from __future__ import annotations

from provledger.node.store import Store
from provledger.protocol import merkle, validators
from provledger.protocol.errors import check
from provledger.protocol.events import event_id, log_leaf
from provledger.protocol.limits import VALIDATOR_CHANGE_DELAY_BLOCKS
from provledger.v1 import ledger_pb2, state_pb2


def inclusion_proof(
    store: Store, location: state_pb2.EventLocation, tree_size: int
) -> ledger_pb2.InclusionProof:
    """The inclusion proof of the event at `location` in the log of `tree_size` leaves."""
    leaf = log_leaf(event_id(location.event.body), location.event.signature)
    return ledger_pb2.InclusionProof(
        leaf_index=location.log_index,
        tree_size=tree_size,
        leaf_hash=merkle.hash_leaf(leaf),
        hashes=store.inclusion_proof(location.log_index, tree_size),
    )


def validator_chain(store: Store, height: int) -> ledger_pb2.ValidatorChain:
    """The walk from the genesis set to the set that signs `height` (a committed height),
    for a verifier that trusts only the genesis (protocol/validator_chain.py): every block
    whose validator-set changes made a set signing at `height` or before, with its
    checkpoint and each change's inclusion proof in it. Empty while the genesis set signs."""
    chain = ledger_pb2.ValidatorChain()
    for record in validators.set_records(store, height):
        block_height = record.from_height - VALIDATOR_CHANGE_DELAY_BLOCKS
        step = chain.steps.add()
        checkpoint = store.checkpoint(block_height)
        check(checkpoint is not None, f"no checkpoint at height {block_height}")
        step.checkpoint.CopyFrom(checkpoint)
        tree_size = store.header(block_height).log_size  # type: ignore[union-attr]
        for identifier in record.event_ids:
            location = store.event(identifier)
            check(location is not None, "a validator-set change is not stored")
            step.changes.add(
                event=location.event,  # type: ignore[union-attr]
                proof=inclusion_proof(store, location, tree_size),  # type: ignore[arg-type]
            )
    return chain
