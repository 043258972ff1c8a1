"""Evidence bundles over a real LevelDB store: built by node/bundles.py, checked by
protocol/evidence.py against the genesis alone.

The chain is a deterministic consortium's story: registrations, derivations up to depth four
with fan-in (fusion of two parents) and a diamond (a report that uses an asset twice over),
a derive grant, a trade that is delivered, settled, disputed and resolved, and a second trade
that stops at ordered; then the membership changes: agency-c is added by governance and
registers, its key is rotated and it derives with the new one, agency-b becomes an exchange,
agency-c is removed. Bundles carry the governance events their authors need, which the
verifier replays from the genesis. Then every kind of bundle is built, verified and tampered
with:
- byte by byte, on a small event bundle: every byte flipped, case-flipped, deleted, and a
  space inserted before it;
- field by field, on the larger lineage and trade bundles (re-encoded canonically, so that
  the deeper checks are reached): every leaf changed, nulled and retyped, every key deleted,
  a key added to every object, every array shortened, lengthened and reordered.
Each must fail with a reason. The changes that still verify are documented below: a
certificate with one of its four signatures removed is still a quorum, and a governance event
that nothing in the bundle rests on can be left out (presence, not absence). Governance events
missing, forged, extra or misplaced are refused with their codes, and version 1 bundles still
verify.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, Member, digest, signing_key
from support.validator_changes import Chain as ValidatorChanges
from support.validator_changes import add, remove

from provledger.cli.evidence import summary_lines
from provledger.node import bundles, walks
from provledger.node.store import Store
from provledger.protocol import (
    blocks,
    evidence,
    evidence_format,
    evidence_governance,
    rules_governance,
)
from provledger.protocol.events import decode, sign_event
from provledger.protocol.evidence import BundleError, encode_canonical, verify_bundle
from provledger.v1 import ledger_pb2

BLOCK_INTERVAL_MS = 1_000
AGENCY_C = Member("agency-c", "agency", signing_key("agency-c"))
AGENCY_C_ROTATED = Member("agency-c", "agency", signing_key("agency-c rotated"))
EXPIRY_MS = GENESIS_TIME_MS + 10**9
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL


@dataclass
class Chain:
    consortium: Consortium
    store: Store
    ids: dict[str, bytes]  # story label -> event id

    @property
    def genesis(self):
        return self.consortium.genesis


def _commit(consortium: Consortium, store: Store, signed, last_commit, time_ms: int):
    executed = blocks.execute_block(
        state=store,
        log=store.log,
        tip=store.tip,
        chain_id=consortium.chain_id,
        candidates=[consortium.decode(s) for s in signed],
        time_ms=time_ms,
        proposer_id="validator-0",
        genesis_validators=consortium.genesis.validator_set,
        last_commit=last_commit,
        strict=True,
    )
    certificate = consortium.certificate(executed)
    store.commit_block(executed, certificate)
    return certificate


def _story(consortium: Consortium) -> list[list[tuple[str, ledger_pb2.SignedEvent]]]:
    """The story's blocks: each a list of (label, signed event). After the trades, the
    membership changes: agency-c is added, registers, has its key rotated (the old one retired),
    derives with the new key; agency-b becomes an exchange; agency-c is removed."""
    c = consortium
    agency_c = signing_key("agency-c")
    c_before, c_after = AGENCY_C, AGENCY_C_ROTATED
    rotated = ledger_pb2.GovernanceChange(
        proposal_nonce=2,
        key_rotated=ledger_pb2.KeyRotated(
            member_id="agency-c",
            new_public_key=c_after.key.public_key,
            retired_key_id=c_before.key.key_id,
        ),
    )
    role_changed = ledger_pb2.GovernanceChange(
        proposal_nonce=3,
        role_changed=ledger_pb2.RoleChanged(member_id="agency-b", role=ledger_pb2.ROLE_EXCHANGE),
    )
    removed = ledger_pb2.GovernanceChange(
        proposal_nonce=4, member_removed=ledger_pb2.MemberRemoved(member_id="agency-c")
    )
    added = ledger_pb2.GovernanceChange(
        proposal_nonce=1,
        member_added=ledger_pb2.MemberAdded(
            member_id="agency-c", role=ledger_pb2.ROLE_AGENCY, public_key=agency_c.public_key
        ),
    )
    by_agency_c = ledger_pb2.Event(
        chain_id=c.chain_id,
        author=ledger_pb2.Author(member_id="agency-c", key_id=agency_c.key_id),
        nonce=1,
        timestamp_ms=GENESIS_TIME_MS,
        asset_registered=ledger_pb2.AssetRegistered(
            asset_id="c/raw", content_digest=digest("c raw"), classification=GENERAL
        ),
    )
    register = "asset_registered"
    derive = "asset_derived"
    return [
        [
            ("raw-a", c.sign("agency-a", register, asset_id="raw-a", content_digest=digest("raw a"),
                             classification=IMPORTANT, name="Raw A")),
            ("raw-b", c.sign("agency-b", register, asset_id="raw-b", content_digest=digest("raw b"),
                             classification=GENERAL)),
            ("raw-c", c.sign("agency-a", register, asset_id="raw-c", content_digest=digest("raw c"),
                             classification=GENERAL, metadata={"source": "survey"})),
        ],
        [
            ("clean-a", c.sign("agency-a", derive, asset_id="clean-a", parent_ids=["raw-a"],
                               activity="cleaning", content_digest=digest("clean a"),
                               classification=IMPORTANT)),
            ("grant", c.sign("agency-b", "grant_issued", grant_id="g-b1", asset_id="raw-b",
                             grantee_id="agency-a", purposes=["fusion"],
                             operations=[ledger_pb2.OPERATION_DERIVE], expires_at_ms=EXPIRY_MS)),
        ],
        [
            ("fused", c.sign("agency-a", derive, asset_id="fused", parent_ids=["clean-a", "raw-b"],
                             grant_ids=["g-b1"], activity="fusion", content_digest=digest("fused"),
                             classification=IMPORTANT)),
            ("used", c.sign("agency-a", "asset_used", asset_id="raw-c", purpose="audit",
                            operation=ledger_pb2.OPERATION_READ)),
        ],
        [
            ("model", c.sign("agency-a", derive, asset_id="model", parent_ids=["fused", "raw-c"],
                             activity="modelling", content_digest=digest("model"),
                             classification=IMPORTANT)),
        ],
        [
            ("report", c.sign("agency-a", derive, asset_id="report",
                              parent_ids=["model", "clean-a"], activity="reporting",
                              content_digest=digest("report"), classification=IMPORTANT)),
            ("offer", c.sign("exchange", "offer_listed", offer_id="offer-1", asset_id="model",
                             seller_id="agency-a", price=1_000, currency="CNY", terms="one copy")),
        ],
        [
            ("order-1", c.sign("agency-b", "order_placed", order_id="order-1", offer_id="offer-1")),
            ("order-2", c.sign("regulator", "order_placed", order_id="order-2",
                               offer_id="offer-1")),
        ],
        [("delivered", c.sign("agency-a", "order_delivered", order_id="order-1",
                              delivery_digest=digest("delivery")))],
        [("settled", c.sign("exchange", "order_settled", order_id="order-1",
                            settlement_reference="bank-42"))],
        [("disputed", c.sign("agency-b", "dispute_opened", dispute_id="d-1", order_id="order-1",
                             reason="the model is not the one listed"))],
        [
            ("resolved", c.sign("regulator", "dispute_resolved", dispute_id="d-1",
                                outcome=ledger_pb2.DISPUTE_OUTCOME_FOR_BUYER,
                                resolution="refund the buyer")),
            ("governance", c.govern("agency-a", added,
                                    ["agency-a", "agency-b", "exchange", "regulator"])),
        ],
        [("by-agency-c", sign_event(by_agency_c, agency_c))],
        [("raw-z", c.sign("agency-b", register, asset_id="raw-z", content_digest=digest("raw z"),
                          classification=GENERAL))],
        # Six active members: five approvals make a quorum.
        [("rotated", c.govern("agency-a", rotated,
                              ["agency-a", "agency-b", "exchange", "regulator", c_before]))],
        [("by-agency-c-2", c.sign(c_after, derive, 2, asset_id="c/clean", parent_ids=["c/raw"],
                                  activity="cleaning", content_digest=digest("c clean"),
                                  classification=GENERAL))],
        [("role-changed", c.govern("agency-a", role_changed,
                                   ["agency-a", "agency-b", "exchange", "regulator", c_after]))],
        [("removed", c.govern("agency-a", removed,
                              ["agency-a", "agency-b", "exchange", "regulator", "auditor"]))],
    ]  # fmt: skip


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    consortium = Consortium()
    store = Store(tmp_path_factory.mktemp("evidence") / "db", consortium.genesis)
    ids: dict[str, bytes] = {}
    last_commit = None
    for number, block in enumerate(_story(consortium), start=1):
        time_ms = GENESIS_TIME_MS + number * BLOCK_INTERVAL_MS
        last_commit = _commit(consortium, store, [s for _, s in block], last_commit, time_ms)
        ids.update((label, consortium.decode(s).event_id) for label, s in block)
    try:
        yield Chain(consortium, store, ids)
    finally:
        store.close()


@pytest.fixture(scope="module")
def event_bytes(chain: Chain) -> bytes:
    return bundles.event_bundle(chain.store, chain.genesis, chain.ids["raw-a"])


@pytest.fixture(scope="module")
def lineage_bytes(chain: Chain) -> bytes:
    return bundles.lineage_bundle(chain.store, chain.genesis, "report")


@pytest.fixture(scope="module")
def trade_bytes(chain: Chain) -> bytes:
    return bundles.trade_bundle(chain.store, chain.genesis, "order-1")


def rejection(data: bytes, genesis) -> BundleError:
    with pytest.raises(BundleError) as caught:
        verify_bundle(data, genesis)
    assert caught.value.reason
    return caught.value


# --- building and verifying --------------------------------------------------------------


def test_event_bundle_verifies_and_says_what_it_proves(chain: Chain, event_bytes: bytes) -> None:
    assert event_bytes == encode_canonical(json.loads(event_bytes))
    verified = verify_bundle(event_bytes, chain.genesis)
    head = chain.store.header(chain.store.head_height)
    assert verified.header == head
    assert verified.signers == ("validator-0", "validator-1", "validator-2", "validator-3")
    assert verified.claims == {
        "event_id": chain.ids["raw-a"].hex(),
        "kind": "asset_registered",
        "author": "agency-a",
        "key_id": chain.consortium["agency-a"].key.key_id.hex(),
        "log_index": 0,
    }
    summary = "\n".join(summary_lines(verified))
    assert summary.startswith(f"VERIFIED event evidence for event_id {chain.ids['raw-a'].hex()}")
    assert f"block {head.height} " in summary and f"log size {head.log_size}" in summary
    assert "signed by 4 of 4 validators (quorum 3)" in summary
    assert "asset_id=raw-a" in summary and "classification=CLASSIFICATION_IMPORTANT" in summary
    document = verified.to_json()
    assert document["verified"] is True and document["checkpoint"]["height"] == head.height
    bundle = json.loads(event_bytes)
    assert bundle["format"] == "provledger-evidence/3" and verified.format == bundle["format"]
    # agency-a, a genesis member, never changed: the bundle needs no governance event.
    assert bundle["governance"] == [] and verified.governance == ()
    assert "membership: the genesis members (no governance event needed)" in summary
    assert bundle["genesis_hash"] == chain.genesis.genesis_hash.hex()


def test_every_committed_event_has_a_bundle(chain: Chain) -> None:
    """Whoever signed it: genesis members, a member added later, a rotated key, a member
    removed since, the governance events themselves."""
    for label, event_id in chain.ids.items():
        data = bundles.event_bundle(chain.store, chain.genesis, event_id)
        verified = verify_bundle(data, chain.genesis)
        assert verified.claims["event_id"] == event_id.hex(), label
        assert summary_lines(verified)


def test_lineage_bundle_holds_the_whole_upstream_graph(chain: Chain, lineage_bytes: bytes) -> None:
    verified = verify_bundle(lineage_bytes, chain.genesis)
    claims = verified.claims
    assets = {a["asset_id"]: a for a in claims["assets"]}
    assert sorted(assets) == ["clean-a", "fused", "model", "raw-a", "raw-b", "raw-c", "report"]
    edges = {(e["parent"], e["child"]) for e in claims["edges"]}
    assert edges == {
        ("raw-a", "clean-a"),
        ("clean-a", "fused"),
        ("raw-b", "fused"),
        ("fused", "model"),
        ("raw-c", "model"),
        ("model", "report"),
        ("clean-a", "report"),
    }
    assert assets["raw-b"]["creator"] == "agency-b"
    assert assets["fused"]["activity"] == "fusion" and assets["raw-a"]["activity"] == ""
    assert assets["fused"]["classification"] == "important"
    assert assets["raw-c"]["classification"] == "general"
    assert assets["model"]["content_digest"] == digest("model").hex()
    assert assets["clean-a"]["event_id"] == chain.ids["clean-a"].hex()
    # Exactly the registering and deriving events, in log order; the grant is not among them.
    kinds = [e.kind for _, e in verified.events]
    assert kinds.count("asset_registered") == 3 and kinds.count("asset_derived") == 4
    summary = "\n".join(summary_lines(verified))
    assert "7 assets, 7 derivation edges" in summary
    assert "fused: derived by fusion from clean-a, raw-b; by agency-a; important" in summary


def test_lineage_of_a_registered_asset_is_one_event(chain: Chain) -> None:
    data = bundles.lineage_bundle(chain.store, chain.genesis, "raw-b")
    claims = verify_bundle(data, chain.genesis).claims
    assert [a["asset_id"] for a in claims["assets"]] == ["raw-b"] and claims["edges"] == []


def test_trade_bundle_replays_the_life_cycle_and_dispute(chain: Chain, trade_bytes: bytes) -> None:
    verified = verify_bundle(trade_bytes, chain.genesis)
    assert verified.claims == {
        "order_id": "order-1",
        "offer_id": "offer-1",
        "asset_id": "model",
        "price": 1_000,
        "currency": "CNY",
        "seller": "agency-a",
        "buyer": "agency-b",
        "exchange": "exchange",
        "statuses": ["listed", "ordered", "delivered", "settled", "disputed", "resolved"],
        "delivery_digest": digest("delivery").hex(),
        "dispute": {
            "dispute_id": "d-1",
            "opened_by": "agency-b",
            "outcome": "for_buyer",
            "resolved_by": "regulator",
        },
    }
    labels = ["offer", "order-1", "delivered", "settled", "disputed", "resolved"]
    assert [e.event_id for _, e in verified.events] == [chain.ids[label] for label in labels]
    summary = "\n".join(summary_lines(verified))
    assert (
        "life cycle: listed -> ordered -> delivered -> settled -> disputed -> resolved" in summary
    )
    assert "reason=the model is not the one listed" in summary
    assert "outcome=DISPUTE_OUTCOME_FOR_BUYER" in summary


def test_trade_without_dispute(chain: Chain) -> None:
    data = bundles.trade_bundle(chain.store, chain.genesis, "order-2")
    claims = verify_bundle(data, chain.genesis).claims
    assert claims["statuses"] == ["listed", "ordered"]
    assert claims["buyer"] == "regulator" and claims["dispute"] is None


def test_unknown_ids_raise_not_found(chain: Chain) -> None:
    with pytest.raises(bundles.BundleNotFound, match="no committed event"):
        bundles.event_bundle(chain.store, chain.genesis, bytes(32))
    with pytest.raises(bundles.BundleNotFound, match="no asset"):
        bundles.lineage_bundle(chain.store, chain.genesis, "no-such-asset")
    with pytest.raises(bundles.BundleNotFound, match="no order"):
        bundles.trade_bundle(chain.store, chain.genesis, "no-such-order")
    assert bundles.BundleNotFound.code == "not_found"


def test_lineage_beyond_the_event_cap_fails(chain: Chain, monkeypatch) -> None:
    monkeypatch.setattr(bundles, "BUNDLE_EVENTS_MAX", 6)
    with pytest.raises(bundles.BundleTooLarge, match="more than 6 assets"):
        bundles.lineage_bundle(chain.store, chain.genesis, "report")
    assert bundles.lineage_bundle(chain.store, chain.genesis, "model")  # 5 assets


# --- tampering: every byte ---------------------------------------------------------------


def byte_mutations(data: bytes) -> Iterator[tuple[str, bytes]]:
    for position, value in enumerate(data):
        before, after = data[:position], data[position + 1 :]
        yield f"byte {position} ^ 0x01", before + bytes([value ^ 0x01]) + after
        if chr(value).isalpha():
            yield f"byte {position} case-flipped", before + bytes([value ^ 0x20]) + after
        yield f"byte {position} deleted", before + after
        yield f"space before byte {position}", before + b" " + data[position:]
    yield "a byte appended", data + b"\n"


def test_every_byte_of_a_small_bundle_is_bound(chain: Chain, event_bytes: bytes) -> None:
    assert len(event_bytes) < 4_000
    codes: dict[str, int] = {}
    count = 0
    for description, mutated in byte_mutations(event_bytes):
        error = rejection(mutated, chain.genesis)
        codes[error.code] = codes.get(error.code, 0) + 1
        count += 1
        assert error.code in {
            "malformed",
            "not_canonical",
            "bad_checkpoint",
            "bad_event",
            "bad_signature",
            "bad_proof",
            "wrong_genesis",
            "wrong_members",
            "claims_mismatch",
            "unsupported_format",
            "bundle_version",
            "bad_validator_chain",
            "unknown_author",
            "unknown_key",
            "wrong_events",
            "wrong_blocks",
        }, description
    assert count > 3 * len(event_bytes)
    # Each layer of the check is reached by some single-byte change.
    for code in ("malformed", "not_canonical", "bad_checkpoint", "bad_event", "bad_proof"):
        assert codes.get(code), (code, codes)


# --- tampering: every field --------------------------------------------------------------

Path_ = tuple[Any, ...]


def _nodes(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, (*path, index))


def _replaced(document: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    result = copy.deepcopy(document)
    target = result
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return result


def _changed_text(text: str, position: int) -> str:
    if not text:
        return "x"
    characters = list(text)
    characters[position] = "1" if characters[position] == "0" else "0"
    return "".join(characters)


def field_mutations(document: Any) -> Iterator[tuple[str, Path_, Any]]:
    """(description, path, mutated document) for every field-level change."""
    for path, node in _nodes(document):
        place = "/".join(map(str, path)) or "(root)"
        if isinstance(node, dict):
            for key in node:
                yield (
                    f"delete {place}/{key}",
                    path,
                    _replaced(document, path, {k: v for k, v in node.items() if k != key}),
                )
            yield f"add a key to {place}", path, _replaced(document, path, {**node, "note": ""})
        elif isinstance(node, list):
            for index in range(len(node)):
                yield (
                    f"drop {place}[{index}]",
                    path,
                    _replaced(document, path, node[:index] + node[index + 1 :]),
                )
            if node:
                yield f"repeat {place}[0]", path, _replaced(document, path, [node[0], *node])
            if node[::-1] != node:
                yield f"reverse {place}", path, _replaced(document, path, node[::-1])
            yield f"append to {place}", path, _replaced(document, path, [*node, "x"])
        else:
            if isinstance(node, str):
                yield (
                    f"first character of {place}",
                    path,
                    _replaced(document, path, _changed_text(node, 0)),
                )
                if len(node) > 1:
                    yield (
                        f"last character of {place}",
                        path,
                        _replaced(document, path, _changed_text(node, -1)),
                    )
                yield f"{place} as a number", path, _replaced(document, path, 0)
            elif isinstance(node, int):
                yield f"{place} + 1", path, _replaced(document, path, node + 1)
                yield f"{place} as a string", path, _replaced(document, path, str(node))
                yield f"{place} as true", path, _replaced(document, path, True)
            if node is not None:
                yield f"{place} as null", path, _replaced(document, path, None)
            else:
                yield f"{place} as an object", path, _replaced(document, path, {})


def _is_one_signature_fewer(path: Path_, document: Any, mutated: Any) -> bool:
    """Dropping one precommit of four leaves three: still a quorum of four validators (of
    the checkpoint, or of a block in `blocks`)."""
    if path[-2:] != ("certificate", "signatures") or path[0] not in ("checkpoint", "blocks"):
        return False
    before, after = document, mutated
    for step in path:
        before, after = before[step], after[step]
    return len(after) == len(before) - 1 and all(s in before for s in after)


@pytest.fixture(scope="module")
def removed_member_lineage_bytes(chain: Chain) -> bytes:
    """agency-c's two assets: its events before and after its key's rotation, and its removal."""
    return bundles.lineage_bundle(chain.store, chain.genesis, "c/clean")


@pytest.mark.parametrize("which", ["event", "lineage", "trade", "removed-member"])
def test_every_field_is_bound(
    chain: Chain,
    which: str,
    event_bytes: bytes,
    lineage_bytes: bytes,
    trade_bytes: bytes,
    removed_member_lineage_bytes: bytes,
) -> None:
    data = {
        "event": event_bytes,
        "lineage": lineage_bytes,
        "trade": trade_bytes,
        "removed-member": removed_member_lineage_bytes,
    }[which]
    document = json.loads(data)
    count = 0
    still_a_quorum = 0
    # Presence, not absence: leaving out agency-c's removal, its last change and one nothing
    # in the bundle rests on, leaves a bundle that is true as far as it goes.
    # (With its block: alone, the block left holds none of the bundle's events.)
    presence_only: set[str] = set()
    if which == "removed-member":
        without = copy.deepcopy(document)
        del without["governance"][2]
        shown = verify_bundle(_reblocked(chain, without), chain.genesis)
        assert shown.authors["agency-c"].removed is False
    for description, path, mutated in field_mutations(document):
        count += 1
        encoded = encode_canonical(mutated)
        if _is_one_signature_fewer(path, document, mutated):
            verified = verify_bundle(encoded, chain.genesis)
            assert path[0] == "blocks" or len(verified.signers) == 3, description
            still_a_quorum += 1
            continue
        if description in presence_only:
            assert verify_bundle(encoded, chain.genesis).authors["agency-c"].removed is False
            presence_only.remove(description)
            continue
        with pytest.raises(BundleError) as caught:
            verify_bundle(encoded, chain.genesis)
        assert caught.value.reason, description
    assert still_a_quorum == 4 * (1 + len(document["blocks"])) and not presence_only
    assert count > 100


def test_whitespace_and_key_order_are_refused(chain: Chain, trade_bytes: bytes) -> None:
    document = json.loads(trade_bytes)
    pretty = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
    assert rejection(pretty, chain.genesis).code == "not_canonical"
    reordered = {key: document[key] for key in reversed(list(document))}
    unsorted = json.dumps(reordered, separators=(",", ":")).encode() + b"\n"
    assert rejection(unsorted, chain.genesis).code == "not_canonical"
    assert rejection(trade_bytes[:-1], chain.genesis).code == "not_canonical"
    assert rejection(trade_bytes + b"\n", chain.genesis).code == "not_canonical"
    escaped = trade_bytes.replace(b'"CNY"', b'"\\u0043NY"')
    assert rejection(escaped, chain.genesis).code == "not_canonical"
    repeated = trade_bytes.replace(b'{"blocks":', b'{"blocks":"x","blocks":', 1)
    assert "repeats a key" in rejection(repeated, chain.genesis).reason
    floating = trade_bytes.replace(b'"price":1000', b'"price":1000.0')
    assert "only integers" in rejection(floating, chain.genesis).reason
    assert rejection("é".encode() + trade_bytes, chain.genesis).code == "not_canonical"
    assert rejection(b"[" * 100_000 + b"]" * 100_000 + b"\n", chain.genesis).code == "malformed"


# --- tampering: semantics (canonical bundles that lie) -----------------------------------


def test_a_checkpoint_with_too_few_signatures_fails(chain: Chain, event_bytes: bytes) -> None:
    document = json.loads(event_bytes)
    signatures = document["checkpoint"]["certificate"]["signatures"]
    document["checkpoint"]["certificate"]["signatures"] = signatures[:2]
    error = rejection(encode_canonical(document), chain.genesis)
    assert error.code == "bad_checkpoint"
    assert "2 validators signed; a quorum is 3" in error.reason


def test_another_genesis_is_refused(chain: Chain, event_bytes: bytes) -> None:
    other_chain = Consortium(chain_id="provledger-other").genesis
    assert "not for chain 'provledger-other'" in rejection(event_bytes, other_chain).reason
    other_validators = Consortium(validator_ids=("v-a", "v-b", "v-c", "v-d")).genesis
    assert rejection(event_bytes, other_validators).code == "wrong_genesis"
    # The same chain id and validators, other members: another genesis hash.
    roles = {"agency-a": "agency", "auditor": "auditor"}
    other_members = Consortium(member_roles=roles).genesis
    assert "another genesis document" in rejection(event_bytes, other_members).reason
    # Claiming the other genesis' identity does not help: its validators did not sign.
    document = json.loads(event_bytes)
    document["validators"] = [
        {"validator_id": v.validator_id, "public_key": v.public_key.hex()}
        for v in other_validators.validator_set.validators
    ]
    forged = encode_canonical(document)
    assert rejection(forged, other_validators).code in ("wrong_genesis", "bad_checkpoint")


def _entry(chain: Chain, label: str, tree_size: int) -> dict[str, Any]:
    """The bundle entry of the story's event `label`, proven at `tree_size`."""
    location = chain.store.event(chain.ids[label])
    proof = chain.store.inclusion_proof(location.log_index, tree_size)
    return {
        "event_id": chain.ids[label].hex(),
        "body": evidence_format.b64(location.event.body),
        "signature": evidence_format.b64(location.event.signature),
        "log_index": location.log_index,
        "proof": [evidence_format.b64(h) for h in proof],
    }


def _reblocked(chain: Chain, document: dict[str, Any]) -> bytes:
    """`document` with `blocks` made again for the events it now holds (the checkpoint of
    each block that committed one of them, from the store): the canonical bytes."""
    document = copy.deepcopy(document)
    top = blocks.decode_header(base64.b64decode(document["checkpoint"]["header"])).height
    indexes = {e["log_index"] for e in [*document["events"], *document["governance"]]}
    heights = []
    for height in range(1, top + 1):
        header = chain.store.header(height)
        if any(header.log_size - header.event_count <= i < header.log_size for i in indexes):
            heights.append(height)
    document["blocks"] = [evidence.checkpoint_json(chain.store.checkpoint(h)) for h in heights]
    return encode_canonical(document)


def _with_event(chain: Chain, document: dict[str, Any], entry: dict[str, Any]) -> bytes:
    document = copy.deepcopy(document)
    document["events"] = sorted([*document["events"], entry], key=lambda e: e["log_index"])
    return _reblocked(chain, document)


def test_a_bundle_at_an_older_checkpoint_verifies(chain: Chain) -> None:
    old = chain.store.checkpoint(2)
    size = blocks.decode_header(old.header).log_size
    location = chain.store.event(chain.ids["clean-a"])
    entry = evidence.EventEntry(
        location.event, location.log_index, chain.store.inclusion_proof(location.log_index, size)
    )
    data = evidence.encode_bundle(
        "event", chain.ids["clean-a"].hex(), chain.genesis, old, [entry], blocks=[old]
    )
    assert verify_bundle(data, chain.genesis).header.height == 2


def test_an_older_checkpoint_does_not_prove_later_events(chain: Chain, trade_bytes) -> None:
    old = chain.store.checkpoint(2)
    size = blocks.decode_header(old.header).log_size
    location = chain.store.event(chain.ids["raw-a"])
    entry = evidence.EventEntry(location.event, 0, chain.store.inclusion_proof(0, size))
    older = evidence.encode_bundle("event", chain.ids["raw-a"].hex(), chain.genesis, old, [entry])
    document = json.loads(trade_bytes)
    document["checkpoint"] = json.loads(older)["checkpoint"]
    # The blocks of the later events are not under it; without them, their heights are not
    # proven; and with the blocks of the events under it, the later ones have no proof.
    error = rejection(encode_canonical(document), chain.genesis)
    assert error.code == "wrong_blocks" and "is not a block under the checkpoint" in error.reason
    document["blocks"] = [b for b in document["blocks"] if b["certificate"]["height"] <= 2]
    error = rejection(encode_canonical(document), chain.genesis)
    assert error.code == "wrong_blocks" and "its height is not proven" in error.reason
    offer = chain.store.event(chain.ids["offer"])
    document["blocks"].append(evidence.checkpoint_json(chain.store.checkpoint(offer.height)))
    document["blocks"] = [b for b in document["blocks"] if b["certificate"]["height"] != 1]
    document["events"] = [e for e in document["events"] if e["log_index"] == offer.log_index]
    document["governance"] = []
    error = rejection(encode_canonical(document), chain.genesis)
    assert error.code == "wrong_blocks" and "is not a block under the checkpoint" in error.reason


def test_a_lineage_missing_a_parent_or_with_an_extra_asset_fails(
    chain: Chain, lineage_bytes: bytes
) -> None:
    document = json.loads(lineage_bytes)
    size = chain.store.header(chain.store.head_height).log_size
    without_raw_b = copy.deepcopy(document)
    without_raw_b["events"] = [
        e for e in document["events"] if e["event_id"] != chain.ids["raw-b"].hex()
    ]
    # agency-b authored only raw-b's registration, so its role change (and what that needs)
    # is not needed any more.
    without_raw_b["governance"] = []
    error = rejection(_reblocked(chain, without_raw_b), chain.genesis)
    assert error.code == "incomplete" and "'raw-b'" in error.reason
    error = rejection(_with_event(chain, document, _entry(chain, "raw-z", size)), chain.genesis)
    assert error.code == "wrong_events"
    assert "asset 'raw-z' is not upstream of 'report'" in error.reason
    error = rejection(_with_event(chain, document, _entry(chain, "grant", size)), chain.genesis)
    assert error.code == "wrong_events" and "(grant_issued) is not in a lineage" in error.reason


def test_a_trade_with_another_orders_event_fails(chain: Chain, trade_bytes: bytes) -> None:
    document = json.loads(trade_bytes)
    size = chain.store.header(chain.store.head_height).log_size
    assert "regulator" in [
        e["author"] for e in verify_bundle(trade_bytes, chain.genesis).to_json()["events"]
    ]  # resolved d-1
    error = rejection(_with_event(chain, document, _entry(chain, "order-2", size)), chain.genesis)
    assert error.code == "wrong_events" and "is not part of order 'order-1'" in error.reason
    without_order = copy.deepcopy(json.loads(trade_bytes))
    del without_order["events"][1]
    error = rejection(_reblocked(chain, without_order), chain.genesis)
    assert error.code == "bad_trade" and "order_delivered cannot follow status listed" in (
        error.reason
    )


def test_an_event_bundle_for_another_subject_fails(chain: Chain, event_bytes: bytes) -> None:
    document = json.loads(event_bytes)
    document["subject"]["event_id"] = chain.ids["raw-c"].hex()
    error = rejection(encode_canonical(document), chain.genesis)
    assert error.code == "wrong_events"


def test_a_forged_signature_fails_even_with_a_valid_proof_shape(
    chain: Chain, event_bytes: bytes
) -> None:
    document = json.loads(event_bytes)
    other = chain.store.event(chain.ids["raw-c"]).event.signature
    document["events"][0]["signature"] = evidence_format.b64(other)
    error = rejection(encode_canonical(document), chain.genesis)
    assert error.code == "bad_signature"


# --- across changes of the membership ------------------------------------------------------


def _changes(verified: evidence.VerifiedBundle) -> list[tuple[str, str]]:
    return [(g["change"], g["member_id"]) for g in verified.governance_json()]


def _without(data: bytes, chain: Chain, label: str) -> bytes:
    """The bundle `data` with the story's governance event `label` left out."""
    document = json.loads(data)
    event_id = chain.ids[label].hex()
    assert any(g["event_id"] == event_id for g in document["governance"]), label
    document["governance"] = [g for g in document["governance"] if g["event_id"] != event_id]
    return _reblocked(chain, document)


def test_a_member_added_after_the_genesis_is_proven_by_its_governance_event(chain: Chain) -> None:
    data = bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c"])
    verified = verify_bundle(data, chain.genesis)
    assert verified.claims["author"] == "agency-c"
    assert verified.claims["key_id"] == AGENCY_C.key.key_id.hex()
    # agency-c's history under the checkpoint, each change judged against the members in force
    # before it; agency-b's role change is not there: nothing about agency-c rests on it.
    assert _changes(verified) == [
        ("member_added", "agency-c"),
        ("key_rotated", "agency-c"),
        ("member_removed", "agency-c"),
    ]
    labels = ("governance", "rotated", "removed")
    assert [e.event_id for _, e in verified.governance] == [chain.ids[x] for x in labels]
    summary = "\n".join(summary_lines(verified))
    assert "membership: replayed from the genesis through 3 governance events" in summary
    assert (
        "member_added agency-c (by agency-a; approved by agency-a, agency-b, exchange, "
        "regulator)" in summary
    )
    rotated_key = AGENCY_C_ROTATED.key.key_id.hex()
    assert f"agency-c at the checkpoint: removed, keys {rotated_key}" in summary
    document = verified.to_json()
    assert document["authors"] == [
        {
            "member_id": "agency-c",
            "role": "agency",
            "removed": True,
            "key_ids": [rotated_key],
            "revoked_after_height": [None],
        }
    ]


def test_a_rotated_key_is_proven_from_its_rotation_and_the_retired_key_before_it(
    chain: Chain,
) -> None:
    after = verify_bundle(
        bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c-2"]),
        chain.genesis,
    )
    assert after.claims["key_id"] == AGENCY_C_ROTATED.key.key_id.hex()
    assert _changes(after)[:2] == [("member_added", "agency-c"), ("key_rotated", "agency-c")]
    # The retired key signed agency-c's first event, before the rotation: it verifies with it.
    before = verify_bundle(
        bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c"]),
        chain.genesis,
    )
    assert before.claims["key_id"] == AGENCY_C.key.key_id.hex()


def test_a_removed_members_events_still_verify(
    chain: Chain, removed_member_lineage_bytes: bytes
) -> None:
    verified = verify_bundle(removed_member_lineage_bytes, chain.genesis)
    assets = {a["asset_id"]: a for a in verified.claims["assets"]}
    assert assets["c/clean"]["creator"] == assets["c/raw"]["creator"] == "agency-c"
    keys = {e.event_id: e.event.author.key_id for _, e in verified.events}
    assert keys[chain.ids["by-agency-c"]] == AGENCY_C.key.key_id
    assert keys[chain.ids["by-agency-c-2"]] == AGENCY_C_ROTATED.key.key_id
    assert verified.authors["agency-c"].removed


def test_a_role_change_is_replayed_with_what_its_approvals_need(
    chain: Chain, trade_bytes: bytes
) -> None:
    verified = verify_bundle(trade_bytes, chain.genesis)
    # agency-b (the buyer) became an exchange; agency-c approved that with its rotated key, so
    # judging the approvals needs agency-c's admission and rotation.
    assert _changes(verified) == [
        ("member_added", "agency-c"),
        ("key_rotated", "agency-c"),
        ("role_changed", "agency-b"),
    ]
    assert verified.authors["agency-b"].role == ledger_pb2.ROLE_EXCHANGE
    assert verified.claims["buyer"] == "agency-b"
    # Bundles whose authors never changed carry nothing.
    order_2 = bundles.trade_bundle(chain.store, chain.genesis, "order-2")
    assert verify_bundle(order_2, chain.genesis).governance == ()


def test_a_missing_governance_event_is_refused(chain: Chain, trade_bytes: bytes) -> None:
    by_c = bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c"])
    error = rejection(_without(by_c, chain, "governance"), chain.genesis)
    assert error.code == "unknown_author" and "'agency-c' is not a consortium member" in (
        error.reason
    )
    assert "is a governance event missing?" in error.reason
    by_c_2 = bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c-2"])
    error = rejection(_without(by_c_2, chain, "rotated"), chain.genesis)
    assert error.code == "unknown_key"
    # A change that does not apply to the membership before it: agency-c, unknown, approving
    # its rotation; agency-c approving the role change with a key it does not hold yet.
    error = rejection(_without(trade_bytes, chain, "governance"), chain.genesis)
    assert error.code == "bad_governance" and "unknown_approver" in error.reason
    error = rejection(_without(trade_bytes, chain, "rotated"), chain.genesis)
    assert error.code == "bad_governance" and "bad_approval" in error.reason
    # Without the role change, the changes its approvals needed are needed by nothing.
    error = rejection(_without(trade_bytes, chain, "role-changed"), chain.genesis)
    assert error.code == "wrong_events" and "is not one the bundle's events need" in error.reason


def test_a_governance_event_outside_the_ledger_is_refused(chain: Chain) -> None:
    """A forged admission of agency-c, approved by agency-a alone, in place of the real one:
    its author's signature holds, but the log does not hold it."""
    c = chain.consortium
    forged_change = ledger_pb2.GovernanceChange(
        proposal_nonce=1,
        member_added=ledger_pb2.MemberAdded(
            member_id="agency-c", role=ledger_pb2.ROLE_AGENCY, public_key=AGENCY_C.key.public_key
        ),
    )
    forged = c.govern("agency-a", forged_change, ["agency-a"], nonce=999)
    document = json.loads(
        bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c"])
    )
    entry = document["governance"][0]
    assert entry["event_id"] == chain.ids["governance"].hex()
    entry.update(
        event_id=c.decode(forged).event_id.hex(),
        body=evidence_format.b64(forged.body),
        signature=evidence_format.b64(forged.signature),
    )
    error = rejection(encode_canonical(document), chain.genesis)
    assert error.code == "bad_proof"


def test_a_governance_events_approvals_are_judged_by_the_ledgers_rules(chain: Chain) -> None:
    """The replay a verifier runs judges approvals against the members in force before the
    change, with rules_governance's own judgement: a change approved by too few members, or
    with a signature that is not the approver's, does not apply."""
    c = chain.consortium
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=77, member_removed=ledger_pb2.MemberRemoved(member_id="agency-b")
    )
    few = c.decode(c.govern("agency-a", change, ["agency-a", "agency-b", "exchange"], nonce=901))
    replay = evidence_governance.MembershipReplay(chain.genesis)
    replay.authenticate(0, few)
    with pytest.raises(BundleError) as caught:
        replay.apply(0, few)
    assert caught.value.code == "bad_governance" and "no_quorum" in caught.value.reason
    assert "3 of 5 members approved; 4 are needed" in caught.value.reason

    change_bytes = change.SerializeToString(deterministic=True)
    approvals = c.approvals(change_bytes, ["agency-a", "agency-b", "exchange", "regulator"])
    approvals[3].signature = approvals[2].signature  # the exchange's, claimed by the regulator
    forged = c.decode(
        c.sign("agency-a", "governance", 902, change=change_bytes, approvals=approvals)
    )
    replay.authenticate(1, forged)
    with pytest.raises(BundleError) as caught:
        replay.apply(1, forged)
    assert caught.value.code == "bad_governance" and "bad_approval" in caught.value.reason

    enough = c.decode(c.govern("agency-a", change, ["agency-a", "agency-b", "exchange",
                                                    "regulator"], nonce=903))  # fmt: skip
    replay.authenticate(2, enough)
    replay.apply(2, enough)
    assert replay.member("agency-b").removed
    with pytest.raises(BundleError) as caught:  # agency-b cannot sign once removed
        replay.authenticate(3, c.decode(c.sign("agency-b", "asset_registered", 904,
                                               asset_id="late", content_digest=digest("late"),
                                               classification=GENERAL)))  # fmt: skip
    assert caught.value.code == "member_removed"


def test_governance_listed_wrongly_is_refused(chain: Chain, event_bytes: bytes) -> None:
    size = chain.store.header(chain.store.head_height).log_size
    # A change the event does not need (one that applies to the genesis members).
    error = rejection(
        _with_governance(chain, event_bytes, _entry(chain, "governance", size)), chain.genesis
    )
    assert error.code == "wrong_events" and "is not one the bundle's events need" in error.reason
    # An event that is no governance action.
    error = rejection(
        _with_governance(chain, event_bytes, _entry(chain, "raw-z", size)), chain.genesis
    )
    assert error.code == "wrong_events" and "is no governance action, proposal" in error.reason
    # The bundle's own event again, as governance.
    document = json.loads(
        bundles.event_bundle(chain.store, chain.genesis, chain.ids["role-changed"])
    )
    document["governance"].append(document["events"][0])
    document["governance"].sort(key=lambda g: g["log_index"])
    error = rejection(_reblocked(chain, document), chain.genesis)
    assert error.code == "malformed" and "in both events and governance" in error.reason


def _with_governance(chain: Chain, data: bytes, entry: dict[str, Any]) -> bytes:
    document = json.loads(data)
    document["governance"] = sorted([*document["governance"], entry], key=lambda e: e["log_index"])
    return _reblocked(chain, document)


def _as_version_1(data: bytes, genesis) -> bytes:
    """A provledger-evidence/1 bundle of the same events: `members` (the authors' genesis
    records, by id) instead of `governance`, as the builder made them before."""
    document = json.loads(data)
    del document["governance"]
    del document["validator_chain"]
    del document["blocks"]
    document["format"] = "provledger-evidence/1"
    authors = sorted(
        {
            decode(
                ledger_pb2.SignedEvent(
                    body=base64.b64decode(e["body"]), signature=base64.b64decode(e["signature"])
                ),
                genesis.chain_id,
            ).author_id
            for e in document["events"]
        }
    )
    document["members"] = [
        evidence_format.member_json(genesis.member(a)) for a in authors if genesis.member(a)
    ]
    return encode_canonical(document)


def _as_version_2(data: bytes) -> bytes:
    """A provledger-evidence/2 bundle of the same events: no `blocks`, as the builder made
    them before (its events' heights unproven)."""
    document = json.loads(data)
    del document["blocks"]
    document["format"] = "provledger-evidence/2"
    return encode_canonical(document)


def test_version_1_and_2_bundles_still_verify_and_other_versions_are_refused(
    chain: Chain, event_bytes: bytes, trade_bytes: bytes
) -> None:
    by_c = bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c"])
    for data in (event_bytes, trade_bytes, by_c):
        old = _as_version_2(data)
        verified = verify_bundle(old, chain.genesis)
        assert verified.format == "provledger-evidence/2" and verified.heights == {}
        assert verified.claims == verify_bundle(data, chain.genesis).claims
        assert verified.governance == verify_bundle(data, chain.genesis).governance
        with_blocks = json.loads(old)
        with_blocks["blocks"] = []
        error = rejection(encode_canonical(with_blocks), chain.genesis)
        assert "unknown field 'blocks'" in error.reason
    without_blocks = json.loads(event_bytes)
    del without_blocks["blocks"]
    error = rejection(encode_canonical(without_blocks), chain.genesis)
    assert "lacks the field 'blocks'" in error.reason
    for data in (event_bytes, trade_bytes):
        old = _as_version_1(data, chain.genesis)
        verified = verify_bundle(old, chain.genesis)
        assert verified.format == "provledger-evidence/1"
        assert verified.claims == verify_bundle(data, chain.genesis).claims
        assert verified.to_json()["format"] == "provledger-evidence/1"
    # Version 1 proves genesis keys only, and its members are the authors' genesis records.
    error = rejection(_as_version_1(by_c, chain.genesis), chain.genesis)
    assert error.code == "unsupported_author"
    old = json.loads(_as_version_1(event_bytes, chain.genesis))
    old["members"][0]["role"] = "exchange"
    assert rejection(encode_canonical(old), chain.genesis).code == "wrong_members"
    # Each version has its own fields.
    old = json.loads(_as_version_1(event_bytes, chain.genesis))
    old["governance"] = []
    assert "unknown field 'governance'" in rejection(encode_canonical(old), chain.genesis).reason
    old = json.loads(_as_version_1(event_bytes, chain.genesis))
    old["validator_chain"] = {"steps": []}
    assert "unknown field 'validator_chain'" in (
        rejection(encode_canonical(old), chain.genesis).reason
    )
    new = json.loads(event_bytes)
    new["members"] = []
    assert "unknown field 'members'" in rejection(encode_canonical(new), chain.genesis).reason
    # Another version of the format, and another format.
    for stated, code in (
        ("provledger-evidence/4", "bundle_version"),
        ("provledger-evidence/0", "bundle_version"),
        ("other-evidence/2", "unsupported_format"),
    ):
        document = json.loads(event_bytes)
        document["format"] = stated
        assert rejection(encode_canonical(document), chain.genesis).code == code, stated


def test_the_governance_a_bundle_carries_is_bounded(chain: Chain, monkeypatch) -> None:
    monkeypatch.setattr(bundles, "BUNDLE_GOVERNANCE_EVENTS_MAX", 2)
    with pytest.raises(bundles.BundleTooLarge, match="would need 3 governance events"):
        bundles.event_bundle(chain.store, chain.genesis, chain.ids["by-agency-c"])
    assert bundles.event_bundle(chain.store, chain.genesis, chain.ids["raw-a"])


def test_the_governance_needed_stops_at_the_checkpoint(chain: Chain) -> None:
    """Under a checkpoint before agency-c's rotation, its event needs its admission alone."""
    facts, own = [], []
    for label in ("governance", "rotated", "role-changed", "removed"):
        location = chain.store.event(chain.ids[label])
        facts.append(
            evidence_governance.governance_fact(
                location.log_index, chain.consortium.decode(location.event)
            )
        )
    location = chain.store.event(chain.ids["by-agency-c"])
    own = [(location.log_index, chain.consortium.decode(location.event))]
    rotated_at = facts[1].log_index
    assert evidence_governance.needed_governance(facts, own, rotated_at) == [facts[0].log_index]
    assert evidence_governance.needed_governance(facts, own, rotated_at + 1) == [
        facts[0].log_index,
        rotated_at,
    ]


# --- across changes of the validator set ---------------------------------------------------


@pytest.fixture(scope="module")
def changed_validators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """Blocks 1-7 on real stores: validator-4 added at 1 (signs from 3), validator-0 removed at
    4 (signs from 6), an asset registered at 7, signed by validator-1..4."""
    consortium = Consortium()
    directory = tmp_path_factory.mktemp("validator-changes")
    leader = Store(directory / "leader", consortium.genesis)
    follower = Store(directory / "follower", consortium.genesis)
    chain = ValidatorChanges(consortium, leader, follower)
    added, removed = add(consortium, "validator-4", 1), remove(consortium, "validator-0", 2)
    asset = consortium.sign(
        "agency-b", "asset_registered", asset_id="late", content_digest=digest("late"),
        classification=GENERAL,
    )  # fmt: skip
    for events in ([added], [], [], [removed], [], [], [asset]):
        chain.block(events)
    try:
        yield consortium, follower, {"added": added, "removed": removed, "asset": asset}
    finally:
        leader.close()
        follower.close()


def test_bundles_verify_across_validator_set_changes(changed_validators) -> None:
    consortium, store, signed = changed_validators
    genesis = consortium.genesis
    data = bundles.event_bundle(store, genesis, consortium.decode(signed["asset"]).event_id)
    verified = verify_bundle(data, genesis)
    assert verified.header.height == 7
    assert verified.signers == ("validator-1", "validator-2", "validator-3", "validator-4")
    assert [v.validator_id for v in verified.validators.validators] == list(verified.signers)
    assert "signed by 4 of 4 validators (quorum 3): validator-1" in "\n".join(
        summary_lines(verified)
    )
    document = json.loads(data)
    assert len(document["validator_chain"]["steps"]) == 2  # the blocks at heights 1 and 4
    # Without the walk, or with its last step left out, the checkpoint's signers are not the
    # set the verifier knows.
    for steps in ([], document["validator_chain"]["steps"][:1]):
        shorter = copy.deepcopy(document)
        shorter["validator_chain"]["steps"] = steps
        error = rejection(encode_canonical(shorter), genesis)
        assert error.code == "bad_checkpoint", steps
    # A walk that does not verify.
    swapped = copy.deepcopy(document)
    swapped["validator_chain"]["steps"].reverse()
    assert rejection(encode_canonical(swapped), genesis).code == "bad_validator_chain"
    # The validator-set changes themselves have bundles: their approvals are judged as every
    # governance event's, their effect is the walk's.
    for label in ("added", "removed"):
        event = consortium.decode(signed[label])
        verified = verify_bundle(bundles.event_bundle(store, genesis, event.event_id), genesis)
        assert verified.claims["kind"] == "governance" and verified.governance == ()


def test_a_walk_past_the_checkpoint_is_refused(changed_validators) -> None:
    """A bundle under the checkpoint of height 3 with the walk to height 7: the set that signs
    from 6 is not the bundle's to prove."""
    consortium, store, signed = changed_validators
    genesis = consortium.genesis
    early = consortium.decode(signed["added"])
    location = store.event(early.event_id)
    checkpoint = store.checkpoint(3)
    size = blocks.decode_header(checkpoint.header).log_size
    entry = evidence.EventEntry(
        location.event, location.log_index, store.inclusion_proof(location.log_index, size)
    )
    args = ("event", early.event_id.hex(), genesis, checkpoint, [entry], ())
    at = [store.checkpoint(location.height)]
    walk = walks.validator_chain(store, 3)
    assert verify_bundle(evidence.encode_bundle(*args, walk, at), genesis).header.height == 3
    # validator-4 signs from 3: without the walk, the header names a set the verifier lacks.
    error = rejection(evidence.encode_bundle(*args, None, at), genesis)
    assert error.code == "bad_checkpoint" and "names a different validator set" in error.reason
    late_walk = walks.validator_chain(store, 7)
    error = rejection(evidence.encode_bundle(*args, late_walk, at), genesis)
    assert error.code == "bad_validator_chain" and "goes past the checkpoint" in error.reason


# --- changes decided on the ledger: proposals, thresholds, revocations (ADR 016) -------------

AGENCY_D = Member("agency-d", "agency", signing_key("agency-d"))


def _proposal_story(consortium: Consortium) -> list[list[tuple[str, ledger_pb2.SignedEvent]]]:
    """agency-d is admitted by proposal (four of five approve: the regulator's approval
    applies it) and registers; the thresholds are lowered to more than one half by a one-event
    action; agency-d registers again; then its key is revoked as compromised from height 6 by
    a proposal that four of the six members approve (the auditor's approval applies it, as
    the new threshold allows and the old one would not)."""
    c = consortium

    def proposal(change: ledger_pb2.GovernanceChange) -> tuple[bytes, bytes]:
        change_bytes = change.SerializeToString(deterministic=True)
        return change_bytes, rules_governance.proposal_id(change_bytes)

    admit, admit_id = proposal(
        ledger_pb2.GovernanceChange(
            proposal_nonce=11,
            member_added=ledger_pb2.MemberAdded(
                member_id="agency-d",
                role=ledger_pb2.ROLE_AGENCY,
                public_key=AGENCY_D.key.public_key,
            ),
        )
    )
    half = ledger_pb2.GovernanceChange(proposal_nonce=12)
    half.thresholds_changed.thresholds.default_threshold.numerator = 1
    half.thresholds_changed.thresholds.default_threshold.denominator = 2
    revoke, revoke_id = proposal(
        ledger_pb2.GovernanceChange(
            proposal_nonce=13,
            key_revoked=ledger_pb2.KeyRevoked(
                member_id="agency-d",
                key_id=AGENCY_D.key.key_id,
                from_height=6,
                reason="laptop stolen",
            ),
        )
    )
    register = "asset_registered"
    approve = "governance_approved"
    return [
        [("propose-d", c.sign("agency-a", "governance_proposed", change=admit))],      # 1
        [("approve-d-b", c.sign("agency-b", approve, proposal_id=admit_id))],          # 2
        [("approve-d-x", c.sign("exchange", approve, proposal_id=admit_id))],          # 3
        [("approve-d-r", c.sign("regulator", approve, proposal_id=admit_id))],         # 4
        [("d-raw", c.sign(AGENCY_D, register, asset_id="d/raw",                        # 5
                          content_digest=digest("d raw"), classification=GENERAL))],
        [("half", c.govern("agency-a", half, ["agency-a", "agency-b", "exchange",     # 6
                                               "regulator", "auditor"]))],
        [("d-late", c.sign(AGENCY_D, register, asset_id="d/late",                      # 7
                           content_digest=digest("d late"), classification=GENERAL))],
        [("propose-revoke", c.sign("agency-b", "governance_proposed", change=revoke))],  # 8
        [("approve-revoke-x", c.sign("exchange", approve, proposal_id=revoke_id)),     # 9
         ("approve-revoke-r", c.sign("regulator", approve, proposal_id=revoke_id))],
        [("approve-revoke-u", c.sign("auditor", approve, proposal_id=revoke_id))],     # 10
        [("raw-after", c.sign("agency-a", register, asset_id="a/after",               # 11
                              content_digest=digest("a after"), classification=GENERAL))],
    ]  # fmt: skip


@pytest.fixture(scope="module")
def proposals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    consortium = Consortium()
    store = Store(tmp_path_factory.mktemp("proposals") / "db", consortium.genesis)
    ids: dict[str, bytes] = {}
    last_commit = None
    for number, block in enumerate(_proposal_story(consortium), start=1):
        time_ms = GENESIS_TIME_MS + number * BLOCK_INTERVAL_MS
        last_commit = _commit(consortium, store, [s for _, s in block], last_commit, time_ms)
        ids.update((label, consortium.decode(s).event_id) for label, s in block)
    try:
        yield Chain(consortium, store, ids)
    finally:
        store.close()


def test_a_member_admitted_by_proposal_is_proven_by_the_proposal_and_its_approvals(
    proposals: Chain,
) -> None:
    """agency-d, admitted by a proposal and three approvals (the last applies it), registers:
    its bundle carries the proposal and every approval, judged by the ledger's rules in their
    blocks; and the revocation of its key, decided by proposal under the lowered threshold."""
    data = bundles.event_bundle(proposals.store, proposals.genesis, proposals.ids["d-raw"])
    verified = verify_bundle(data, proposals.genesis)
    assert verified.claims["author"] == "agency-d"
    assert verified.claims["key_id"] == AGENCY_D.key.key_id.hex()
    labels = (
        "propose-d", "approve-d-b", "approve-d-x", "approve-d-r", "half", "propose-revoke",
        "approve-revoke-x", "approve-revoke-r", "approve-revoke-u",
    )  # fmt: skip
    assert [e.event_id for _, e in verified.governance] == [proposals.ids[x] for x in labels]
    replayed = verified.governance_json()
    assert [(g["event"], g["change"], g["applies"]) for g in replayed] == [
        ("governance_proposed", "member_added", False),
        ("governance_approved", "member_added", False),
        ("governance_approved", "member_added", False),
        ("governance_approved", "member_added", True),
        ("governance", "thresholds_changed", True),
        ("governance_proposed", "key_revoked", False),
        ("governance_approved", "key_revoked", False),
        ("governance_approved", "key_revoked", False),
        ("governance_approved", "key_revoked", True),
    ]
    admission = rules_governance.proposal_id(_change_of(proposals, "propose-d"))
    assert {g["proposal_id"] for g in replayed[:4]} == {admission.hex()}
    # Each event's height is its block's, proven by the block's checkpoint.
    assert [g["height"] for g in replayed] == [1, 2, 3, 4, 6, 8, 9, 9, 10]
    assert verified.heights[proposals.store.event(proposals.ids["d-raw"]).log_index] == 5
    assert len(json.loads(data)["blocks"]) == 9
    key = verified.authors["agency-d"].keys[0]
    assert key.revoked and key.revoked_after_height == 6
    summary = "\n".join(summary_lines(verified))
    assert "log index 0, height 1: member_added agency-d proposed by agency-a" in summary
    assert "height 4: member_added agency-d approved by regulator (applies)" in summary
    assert "height 6: thresholds_changed (by agency-a; approved by agency-a," in summary
    assert f"keys {AGENCY_D.key.key_id.hex()} (revoked after height 6)" in summary
    # The bundle of an approval itself: the proposal and the approvals before it come along.
    own = verify_bundle(
        bundles.event_bundle(proposals.store, proposals.genesis, proposals.ids["approve-revoke-u"]),
        proposals.genesis,
    )
    assert [e.event_id for _, e in own.governance][:6] == [proposals.ids[x] for x in labels[:6]]
    assert own.facts[own.events[0][0]].applies


def _change_of(chain: Chain, label: str) -> bytes:
    event = decode(chain.store.event(chain.ids[label]).event, chain.genesis.chain_id)
    return event.event.governance_proposed.change


def _without_labels(chain: Chain, data: bytes, *labels: str) -> bytes:
    document = json.loads(data)
    gone = {chain.ids[label].hex() for label in labels}
    assert gone <= {g["event_id"] for g in document["governance"]}, labels
    document["governance"] = [g for g in document["governance"] if g["event_id"] not in gone]
    return _reblocked(chain, document)


def test_a_change_approved_under_changed_thresholds_needs_the_threshold_change(
    proposals: Chain,
) -> None:
    """The revocation applied with four approvals of six members: enough under the lowered
    threshold (more than one half), not under the genesis default (more than two thirds). A
    bundle without the threshold change does not apply it, and nothing then needs its
    proposal and approvals."""
    data = bundles.event_bundle(proposals.store, proposals.genesis, proposals.ids["d-raw"])
    error = rejection(_without_labels(proposals, data, "half"), proposals.genesis)
    assert error.code == "wrong_events" and "is not one the bundle's events need" in error.reason
    # The replay's own count: with the threshold change, the auditor's approval applies it.
    verified = verify_bundle(data, proposals.genesis)
    applying = proposals.store.event(proposals.ids["approve-revoke-u"]).log_index
    assert verified.facts[applying].applies and verified.facts[applying].kind == "key_revoked"
    # The genesis default would have needed five of the six members.
    assert rules_governance.approvals_needed(rules_governance.DEFAULT_THRESHOLD, 6) == 5


def test_a_revoked_keys_events_after_the_revocation_height_are_refused(proposals: Chain) -> None:
    """agency-d's key is revoked from height 6, by a change committed at height 10: its event
    at height 7 proves nothing of agency-d (`key_revoked`, from the verifier as from the
    node), its event at height 5 still verifies."""
    genesis = proposals.genesis
    with pytest.raises(bundles.BundleRefused) as refused:
        bundles.event_bundle(proposals.store, genesis, proposals.ids["d-late"])
    assert refused.value.code == "key_revoked" and "after height 6" in refused.value.reason
    data = bundles.encode_from_store(
        proposals.store, genesis, "event", proposals.ids["d-late"].hex(), [proposals.ids["d-late"]]
    )
    error = rejection(data, genesis)
    assert error.code == "key_revoked"
    assert "(height 7)" in error.reason and "revoked as compromised after height 6" in error.reason
    assert (
        verify_bundle(
            bundles.event_bundle(proposals.store, genesis, proposals.ids["d-raw"]), genesis
        )
        .authors["agency-d"]
        .keys[0]
        .revoked
    )
    # Without the revocation's proposal and approvals, the bundle is silent about it (presence,
    # not absence): it verifies, and shows the key not revoked.
    silent = _without_labels(
        proposals, data, "half", "propose-revoke", "approve-revoke-x", "approve-revoke-r",
        "approve-revoke-u",
    )  # fmt: skip
    assert not verify_bundle(silent, genesis).authors["agency-d"].keys[0].revoked
    # As format 2 (no blocks, no heights), the bundle cannot carry the proposals at all.
    document = json.loads(data)
    del document["blocks"]
    document["format"] = "provledger-evidence/2"
    assert rejection(encode_canonical(document), genesis).code == "unknown_author"


def test_missing_or_forged_proposal_events_are_refused(proposals: Chain) -> None:
    c, genesis = proposals.consortium, proposals.genesis
    data = bundles.event_bundle(proposals.store, genesis, proposals.ids["d-raw"])
    # The approvals of a proposal the bundle lacks.
    error = rejection(_without_labels(proposals, data, "propose-d"), genesis)
    assert error.code == "missing_proposal" and "unknown_proposal" in error.reason
    # An approval left out: the change does not reach its threshold, agency-d is no member.
    error = rejection(_without_labels(proposals, data, "approve-d-x"), genesis)
    assert error.code == "unknown_author" and "'agency-d'" in error.reason
    # An approval that is not in the log, in place of the exchange's.
    admission = rules_governance.proposal_id(_change_of(proposals, "propose-d"))
    forged = c.sign("auditor", "governance_approved", 77, proposal_id=admission)
    document = json.loads(data)
    entry = next(
        g for g in document["governance"] if g["event_id"] == proposals.ids["approve-d-x"].hex()
    )
    entry.update(
        event_id=c.decode(forged).event_id.hex(),
        body=evidence_format.b64(forged.body),
        signature=evidence_format.b64(forged.signature),
    )
    assert rejection(encode_canonical(document), genesis).code == "bad_proof"
    # A proposal and an approval that applied nothing, which nothing in the bundle needs.
    plain = bundles.event_bundle(proposals.store, genesis, proposals.ids["raw-after"])
    assert verify_bundle(plain, genesis).governance == ()
    size = proposals.store.header(proposals.store.head_height).log_size
    extra = json.loads(plain)
    extra["governance"] = [_entry(proposals, x, size) for x in ("propose-d", "approve-d-b")]
    error = rejection(_reblocked(proposals, extra), genesis)
    assert error.code == "wrong_events" and "is not one the bundle's events need" in error.reason
    # Blocks: an event whose block is left out, and a block that holds none of the events.
    document = json.loads(data)
    del document["blocks"][0]
    error = rejection(encode_canonical(document), genesis)
    assert error.code == "wrong_blocks" and "its height is not proven" in error.reason
    document = json.loads(plain)
    document["blocks"].insert(0, evidence.checkpoint_json(proposals.store.checkpoint(1)))
    error = rejection(encode_canonical(document), genesis)
    assert error.code == "wrong_blocks" and "committed none of the bundle's events" in error.reason
