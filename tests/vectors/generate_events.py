"""Generate the golden event and block vectors in tests/vectors/events/, for other clients.

Run from the repository root: python tests/vectors/generate_events.py

Everything is fixed: the chain id, the genesis time, the member and validator names, and every
key, whose 32-byte Ed25519 seed is SHA-256 of its name (Ed25519 signing is deterministic, so
the same seeds give the same signatures). It writes

- `event-<name>.json`: a signed event with every intermediate value (body, sign bytes,
  signature, event id, log leaf and leaf hash), and `event-<name>-<mutation>.json`: the same
  event with one thing broken, which every verifier must reject;
- `genesis.json`: the genesis document, its hash and the state root it starts from;
- `block-<height>.json`: three blocks executed with protocol.blocks.execute_block over an
  in-memory state, with their header bytes, ids, roots, precommit sign bytes, validator
  signatures and commit certificate;
- `certificate-<mutation>.json`: block 2's certificate with one thing broken.

See README.md beside this file. tests/unit/test_event_vectors.py fails when the committed files
differ from what this generator produces, so they cannot go stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

# The generator runs as a script too; the shared test helpers live in tests/support/.
_TESTS_DIR = Path(__file__).resolve().parents[1]
if str(_TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(_TESTS_DIR))

from support.memory_state import Consortium, MemoryChain, digest, signing_key  # noqa: E402

from provledger.protocol import blocks, crypto, events, merkle, rules  # noqa: E402
from provledger.protocol.errors import Rejected  # noqa: E402
from provledger.protocol.genesis import canonical_json  # noqa: E402
from provledger.protocol.state import encode_write  # noqa: E402
from provledger.v1 import ledger_pb2  # noqa: E402

OUTPUT_DIR = Path(__file__).resolve().parent / "events"

CHAIN_ID = "provledger-vectors"
GENESIS_TIME_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MEMBER_ROLES = {
    "agency-a": "agency",
    "agency-b": "agency",
    "exchange": "exchange",
    "regulator": "regulator",
    "auditor": "auditor",
}
VALIDATOR_IDS = ("validator-0", "validator-1", "validator-2", "validator-3")
BLOCK_INTERVAL_MS = 1_000
IMPOSTOR = "impostor"  # the name of the key that signs the wrong-key mutation
GENERAL = ledger_pb2.CLASSIFICATION_GENERAL
IMPORTANT = ledger_pb2.CLASSIFICATION_IMPORTANT


def vector_consortium() -> Consortium:
    return Consortium(
        chain_id=CHAIN_ID,
        member_roles=MEMBER_ROLES,
        validator_ids=VALIDATOR_IDS,
        genesis_time_ms=GENESIS_TIME_MS,
    )


def to_json(message: Message) -> dict[str, Any]:
    """Proto3 canonical JSON (lowerCamelCase names, bytes in base64, 64-bit ints as strings),
    with keys sorted: protobuf does not promise an order for map entries."""
    return json.loads(json_format.MessageToJson(message, sort_keys=True))  # type: ignore[no-any-return]


def flip_lowest_bit(value: bytes, position: int) -> bytes:
    changed = bytearray(value)
    changed[position] ^= 0x01
    return bytes(changed)


def pipeline_error(consortium: Consortium, signed: ledger_pb2.SignedEvent) -> str | None:
    """The rejection code our node gives an event signed for this chain's genesis (decode,
    then authenticate against the genesis members); None when it is accepted. Codes, not
    messages: the messages are for people and may be reworded."""
    try:
        decoded = events.decode(signed, consortium.chain_id)
        rules.authenticate(consortium.state(), decoded, height=1)
    except Rejected as rejection:
        return rejection.code
    return None


# --- event signatures ----------------------------------------------------------------------


def event_case(
    consortium: Consortium, description: str, member_id: str, signed: ledger_pb2.SignedEvent
) -> dict[str, Any]:
    member = consortium[member_id]
    event = ledger_pb2.Event()
    event.ParseFromString(signed.body)
    event_id = events.event_id(signed.body)
    leaf = events.log_leaf(event_id, signed.signature)
    return {
        "description": description,
        "kind": "event_signature",
        "chain_id": consortium.chain_id,
        "seed": member.key.seed.hex(),
        "public_key": member.key.public_key.hex(),
        "key_id": member.key.key_id.hex(),
        "event": to_json(event),
        "body": signed.body.hex(),
        "domain": crypto.DOMAIN_EVENT.hex(),
        "sign_bytes": (crypto.DOMAIN_EVENT + signed.body).hex(),
        "signature": signed.signature.hex(),
        "event_id": event_id.hex(),
        "log_leaf": leaf.hex(),
        "log_leaf_hash": merkle.hash_leaf(leaf).hex(),
        "want_error": False,
        "error": None,
    }


def event_mutations(
    consortium: Consortium, member_id: str, signed: ledger_pb2.SignedEvent
) -> dict[str, tuple[str, bytes, bytes]]:
    """name -> (description, body, signature) of each way to break the event."""
    key = consortium[member_id].key
    body, signature = signed.body, signed.signature
    impostor = signing_key(IMPOSTOR)
    return {
        "flipped-body-bit": (
            "the lowest bit of the body's last byte flipped; the signature is unchanged",
            flip_lowest_bit(body, len(body) - 1),
            signature,
        ),
        "flipped-signature-bit": (
            "the lowest bit of the signature's first byte flipped",
            body,
            flip_lowest_bit(signature, 0),
        ),
        "wrong-domain": (
            "signed over the precommit domain || body instead of the event domain",
            body,
            key.sign(crypto.DOMAIN_PRECOMMIT, body),
        ),
        "wrong-key": (
            f"signed by the key of seed SHA-256({IMPOSTOR!r}); the author's key must verify",
            body,
            impostor.sign(crypto.DOMAIN_EVENT, body),
        ),
    }


def signed_events(consortium: Consortium) -> list[tuple[str, str, str, ledger_pb2.SignedEvent]]:
    """(name, description, author, signed event) of each event signature vector."""
    change = ledger_pb2.GovernanceChange(
        proposal_nonce=1,
        member_added=ledger_pb2.MemberAdded(
            member_id="agency-c",
            name="Agency C",
            role=ledger_pb2.ROLE_AGENCY,
            public_key=crypto.SigningKey.from_seed(bytes(32)).public_key,
        ),
    )
    return [
        (
            "asset-registered",
            "an asset registration with metadata (map entries are serialized sorted by key)",
            "agency-a",
            consortium.sign(
                "agency-a",
                "asset_registered",
                asset_id="census-2024",
                content_digest=digest("census-2024"),
                classification=IMPORTANT,
                name="Census 2024",
                schema_uri="https://example.org/schemas/census",
                metadata={"source": "survey", "format": "parquet"},
            ),
        ),
        (
            "grant-issued",
            "a grant with repeated purposes and operations, an expiry and no cross-border",
            "agency-a",
            consortium.sign(
                "agency-a",
                "grant_issued",
                grant_id="grant-1",
                asset_id="census-2024",
                grantee_id="agency-b",
                purposes=["research", "statistics"],
                operations=[ledger_pb2.OPERATION_READ, ledger_pb2.OPERATION_DERIVE],
                expires_at_ms=GENESIS_TIME_MS + 86_400_000,
                no_cross_border=True,
            ),
        ),
        (
            "order-delivered",
            "a delivery with a 32-byte digest, by the seller",
            "agency-a",
            consortium.sign(
                "agency-a",
                "order_delivered",
                order_id="order-1",
                delivery_digest=digest("delivery-1"),
            ),
        ),
        (
            "governance",
            "a governance action adding a member, approved by four of five members",
            "regulator",
            consortium.govern(
                "regulator", change, ("agency-a", "agency-b", "exchange", "regulator")
            ),
        ),
    ]


def governance_details(consortium: Consortium, signed: ledger_pb2.SignedEvent) -> dict[str, Any]:
    """How each approval of a governance event is signed."""
    event = ledger_pb2.Event()
    event.ParseFromString(signed.body)
    change = event.governance.change
    message = rules.governance_sign_bytes(consortium.chain_id, change)
    return {
        "change": change.hex(),
        "approval_domain": crypto.DOMAIN_GOVERNANCE.hex(),
        "approval_sign_bytes": (crypto.DOMAIN_GOVERNANCE + message).hex(),
        "approvals": [
            {
                "member_id": approval.approver.member_id,
                "public_key": consortium[approval.approver.member_id].key.public_key.hex(),
                "signature": approval.signature.hex(),
            }
            for approval in event.governance.approvals
        ],
    }


def event_cases(consortium: Consortium) -> dict[str, dict[str, Any]]:
    cases: dict[str, dict[str, Any]] = {}
    for name, description, author, signed in signed_events(consortium):
        case = event_case(consortium, description, author, signed)
        if name == "governance":
            case["governance"] = governance_details(consortium, signed)
        cases[f"event-{name}"] = case
        for mutation, (change, body, signature) in event_mutations(
            consortium, author, signed
        ).items():
            broken = ledger_pb2.SignedEvent(body=body, signature=signature)
            error = pipeline_error(consortium, broken)
            if error is None:
                raise AssertionError(f"mutation {mutation} of {name} was accepted")
            cases[f"event-{name}-{mutation}"] = {
                "description": f"{description}: {change}",
                "kind": "event_signature",
                "chain_id": consortium.chain_id,
                "public_key": consortium[author].key.public_key.hex(),
                "body": body.hex(),
                "domain": crypto.DOMAIN_EVENT.hex(),
                "sign_bytes": (crypto.DOMAIN_EVENT + body).hex(),
                "signature": signature.hex(),
                "want_error": True,
                "error": error,
            }
    return cases


# --- blocks --------------------------------------------------------------------------------


def block_events(consortium: Consortium) -> list[list[ledger_pb2.SignedEvent]]:
    """The events of each block: an asset and its grant, a trade opened, a trade delivered."""
    sign = consortium.sign
    return [
        [
            sign(
                "agency-a",
                "asset_registered",
                asset_id="roads-2024",
                content_digest=digest("roads-2024"),
                classification=GENERAL,
                name="Road network 2024",
            ),
            sign(
                "agency-a",
                "grant_issued",
                grant_id="grant-roads",
                asset_id="roads-2024",
                grantee_id="agency-b",
                purposes=["planning"],
                operations=[ledger_pb2.OPERATION_READ],
                expires_at_ms=GENESIS_TIME_MS + 86_400_000,
            ),
        ],
        [
            sign(
                "exchange",
                "offer_listed",
                offer_id="offer-roads",
                asset_id="roads-2024",
                seller_id="agency-a",
                price=12_500,
                currency="CNY",
            ),
            sign("agency-b", "order_placed", order_id="order-roads", offer_id="offer-roads"),
            sign(
                "agency-b",
                "asset_used",
                asset_id="roads-2024",
                grant_id="grant-roads",
                purpose="planning",
                operation=ledger_pb2.OPERATION_READ,
            ),
        ],
        [
            sign(
                "agency-a",
                "order_delivered",
                order_id="order-roads",
                delivery_digest=digest("roads-2024-delivery"),
            ),
        ],
    ]


def certificate_json(certificate: ledger_pb2.CommitCertificate) -> dict[str, Any]:
    return {
        "message": to_json(certificate),
        "bytes": certificate.SerializeToString(deterministic=True).hex(),
    }


def genesis_case(consortium: Consortium) -> dict[str, Any]:
    genesis = consortium.genesis
    return {
        "description": "the genesis document the block vectors build on",
        "kind": "genesis",
        "document": consortium.genesis_document(),
        "canonical_json": canonical_json(consortium.genesis_document()).decode(),
        "genesis_hash": genesis.genesis_hash.hex(),
        "validators_hash": genesis.validator_set.hash().hex(),
        "quorum_size": genesis.validator_set.quorum_size,
        "key_seeds": {
            name: key.seed.hex()
            for name, key in [
                *((m.member_id, m.key) for m in consortium.members.values()),
                *consortium.validator_keys.items(),
            ]
        },
        "state_writes": [encode_write(w).hex() for w in blocks.genesis_writes(genesis)],
        "state_root": blocks.genesis_state_root(genesis).hex(),
        "want_error": False,
        "error": None,
    }


def block_cases(
    consortium: Consortium,
) -> tuple[dict[str, dict[str, Any]], dict[int, tuple[blocks.ExecutedBlock, Any]]]:
    chain = MemoryChain(consortium)
    cases: dict[str, dict[str, Any]] = {}
    executed_blocks = {}
    for height, batch in enumerate(block_events(consortium), start=1):
        time_ms = GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS
        previous_state_root = chain.tip.state_root
        last_commit = chain.last_commit
        proposer_id = VALIDATOR_IDS[height % len(VALIDATOR_IDS)]
        executed = chain.execute(batch, time_ms, proposer_id=proposer_id)
        certificate = consortium.certificate(executed)
        block = ledger_pb2.Block(header=executed.header_bytes, events=batch)
        if last_commit is not None:
            block.last_commit.CopyFrom(last_commit)
        checkpoint = ledger_pb2.Checkpoint(header=executed.header_bytes, certificate=certificate)
        precommit = blocks.precommit_sign_bytes(
            consortium.chain_id, height, certificate.round, executed.block_id
        )
        cases[f"block-{height}"] = {
            "description": f"block {height}: {len(batch)} events, committed by every validator",
            "kind": "block",
            "height": height,
            "header": to_json(executed.header),
            "header_bytes": executed.header_bytes.hex(),
            "block_id": executed.block_id.hex(),
            "previous_block_id": executed.header.previous_block_id.hex(),
            "events": [
                {
                    "body": signed.body.hex(),
                    "signature": signed.signature.hex(),
                    "event_id": decoded.event_id.hex(),
                    "log_leaf_hash": merkle.hash_leaf(decoded.leaf).hex(),
                }
                for signed, decoded in zip(batch, executed.events, strict=True)
            ],
            "events_root": executed.header.events_root.hex(),
            "log_size": executed.header.log_size,
            "log_root": executed.header.log_root.hex(),
            "previous_state_root": previous_state_root.hex(),
            "state_writes": [encode_write(w).hex() for w in executed.writes],
            "state_root": executed.header.state_root.hex(),
            "last_commit_hash": executed.header.last_commit_hash.hex(),
            "precommit": {
                "round": certificate.round,
                "domain": crypto.DOMAIN_PRECOMMIT.hex(),
                "sign_bytes": (crypto.DOMAIN_PRECOMMIT + precommit).hex(),
                "signatures": [
                    {
                        "validator_id": entry.validator_id,
                        "public_key": consortium.validator_keys[
                            entry.validator_id
                        ].public_key.hex(),
                        "signature": entry.signature.hex(),
                    }
                    for entry in certificate.signatures
                ],
            },
            "certificate": certificate_json(certificate),
            "block": block.SerializeToString(deterministic=True).hex(),
            "checkpoint": checkpoint.SerializeToString(deterministic=True).hex(),
            "want_error": False,
            "error": None,
        }
        executed_blocks[height] = (executed, certificate)
        chain.commit(executed, certificate)
    return cases, executed_blocks


CertificateChange = Callable[[Consortium, ledger_pb2.CommitCertificate], str]


def _below_quorum(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    del certificate.signatures[2:]
    return "only two of the four validators signed; a quorum is three"


def _duplicate_signer(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    del certificate.signatures[2:]
    certificate.signatures.append(certificate.signatures[0])
    return "validator-0's signature twice, to make up a quorum of two signers"


def _non_validator(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    del certificate.signatures[2:]
    outsider = signing_key("validator-9")
    certificate.signatures.append(
        ledger_pb2.CommitSignature(
            validator_id="validator-9",
            signature=blocks.sign_precommit(
                outsider,
                consortium.chain_id,
                certificate.height,
                certificate.round,
                certificate.block_id,
            ),
        )
    )
    return "a third signature by validator-9, which is not in the validator set"


def _wrong_block(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    certificate.block_id = flip_lowest_bit(certificate.block_id, 0)
    return "the certificate names another block id"


def _wrong_height(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    certificate.height += 1
    return "the certificate names the next height"


def _wrong_round(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    certificate.round = 1
    return "the certificate claims round 1; the signatures are for round 0"


def _flipped_signature(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    entry = certificate.signatures[1]
    entry.signature = flip_lowest_bit(entry.signature, 0)
    return "the lowest bit of validator-1's signature flipped"


def _event_domain(consortium: Consortium, certificate: ledger_pb2.CommitCertificate) -> str:
    message = blocks.precommit_sign_bytes(
        consortium.chain_id, certificate.height, certificate.round, certificate.block_id
    )
    entry = certificate.signatures[0]
    entry.signature = consortium.validator_keys["validator-0"].sign(crypto.DOMAIN_EVENT, message)
    return "validator-0 signed the precommit bytes under the event domain"


CERTIFICATE_MUTATIONS: dict[str, CertificateChange] = {
    "below-quorum": _below_quorum,
    "duplicate-signer": _duplicate_signer,
    "non-validator": _non_validator,
    "wrong-block-id": _wrong_block,
    "wrong-height": _wrong_height,
    "wrong-round": _wrong_round,
    "flipped-signature-bit": _flipped_signature,
    "wrong-domain": _event_domain,
}


def certificate_cases(
    consortium: Consortium, executed: blocks.ExecutedBlock, certificate: Any
) -> dict[str, dict[str, Any]]:
    cases = {}
    for name, mutate in CERTIFICATE_MUTATIONS.items():
        broken = ledger_pb2.CommitCertificate()
        broken.CopyFrom(certificate)
        change = mutate(consortium, broken)
        try:
            blocks.verify_certificate(
                broken, executed.header, executed.header_bytes, consortium.genesis.validator_set
            )
        except Rejected as rejection:
            error = rejection.code
        else:
            raise AssertionError(f"certificate mutation {name} was accepted")
        cases[f"certificate-{name}"] = {
            "description": f"block {executed.header.height}'s certificate: {change}",
            "kind": "certificate",
            "header_bytes": executed.header_bytes.hex(),
            "certificate": certificate_json(broken),
            "want_error": True,
            "error": error,
        }
    return cases


# --- output --------------------------------------------------------------------------------


def build_cases() -> dict[str, dict[str, Any]]:
    """Every vector, keyed by its file name without ".json"."""
    cases = event_cases(vector_consortium())
    consortium = vector_consortium()
    cases["genesis"] = genesis_case(consortium)
    chain_cases, executed = block_cases(consortium)
    cases |= chain_cases
    cases |= certificate_cases(consortium, *executed[2])
    return cases


def encode_case(case: dict[str, Any]) -> str:
    """The exact text of a vector file."""
    return json.dumps(case, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Write every vector to OUTPUT_DIR and delete files no longer generated."""
    cases = build_cases()
    OUTPUT_DIR.mkdir(exist_ok=True)
    for stale in OUTPUT_DIR.glob("*.json"):
        if stale.stem not in cases:
            stale.unlink()
    for name, case in cases.items():
        (OUTPUT_DIR / f"{name}.json").write_text(encode_case(case), encoding="utf-8")
    print(f"wrote {len(cases)} event and block vectors to {OUTPUT_DIR}")


if __name__ == "__main__":
    main()
