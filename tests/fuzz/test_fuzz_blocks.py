"""Fuzzing block and proposal validation: `LedgerApplication.validate` (a validator judging a
proposal: `blocks.validate_block`, re-execution, the header compared byte for byte) and
`LedgerApplication.commit` of a synced block (its commit certificate checked first), over the
story of tests/fuzz/_story.py in the simulator's in-memory store (tests/sim/memory_store.py).

Seeds are proposals made by a real `LedgerApplication.propose` on top of the story: a block of
nine events that are valid together, an empty block, a block recording a validator's
equivocation, a block with one governance change. Inputs change them:
- the Block's wire bytes;
- its fields (events dropped, repeated, swapped or replaced by another seed's, a seed's event
  changed and signed again, the previous certificate's signatures, the evidence's votes,
  unknown fields);
- the header's fields (height, previous block, time, proposer, roots...);
- events chosen and ordered at random, then the header made honestly by executing them: these
  blocks are valid whenever execution succeeds, and must be accepted;
- for a synced commit, the certificate's fields and bytes.

The property: `validate` answers True or False and raises nothing (an exception would stop the
validator's consensus); a block it accepts holds exactly a seed's content (or was made
honestly); `commit` either raises `Rejected` or writes a block whose content and certificate
are a seed's; the store never changes (validation writes nothing; these commits' writes go
nowhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from fuzz._harness import Finding, count, fuzz_settings, hang_checked, show, unexpected
from fuzz._mutate import (
    Choices,
    DrawChoices,
    ProviderChoices,
    mutate_bytes,
    mutate_message,
    pick,
)
from fuzz._story import SEED_TIME_MS, VOCABULARY, memory_world, resign
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from provledger.protocol import blocks
from provledger.protocol.application import LedgerApplication, Origin, commit_now
from provledger.protocol.errors import Rejected
from provledger.protocol.limits import BLOCK_TIME_DRIFT_MS_MAX
from provledger.protocol.votes import make_evidence, sign_vote
from provledger.v1 import ledger_pb2

TARGET = "blocks"
NODE_ID = "validator-1"
# A block time this far ahead of the validator's clock is a finding (a proposer may set any
# time after the previous block's; one near 2^63-1 ms stops the chain, see
# test_fuzz_findings.py).
FUTURE_TIME_MS = BLOCK_TIME_DRIFT_MS_MAX  # how far ahead of the validator a proposal may be


@dataclass(frozen=True)
class Seed:
    label: str
    block: ledger_pb2.Block
    certificate: ledger_pb2.CommitCertificate


def _application() -> LedgerApplication:
    world = memory_world()
    return LedgerApplication(world.consortium.genesis, world.chain, NODE_ID)


def _equivocation(height: int) -> ledger_pb2.Evidence:
    consortium = memory_world().consortium
    key = consortium.validator_keys["validator-3"]
    votes = []
    for block_id in (b"\x01" * 32, b"\x02" * 32):
        vote = ledger_pb2.Vote(
            type=ledger_pb2.VOTE_TYPE_PREVOTE,
            height=height,
            round=0,
            block_id=block_id,
            validator_id="validator-3",
        )
        vote.signature = sign_vote(key, consortium.chain_id, vote)
        votes.append(vote)
    return make_evidence(*votes)


@cache
def seeds() -> tuple[Seed, ...]:
    world = memory_world()
    consortium = world.consortium
    height = world.chain.head_height + 1
    by_label = dict(world.event_seeds)
    contents: dict[str, tuple[list[ledger_pb2.SignedEvent], list[ledger_pb2.Evidence]]] = {
        "events": ([s for _, s in world.compatible_seeds], []),
        "empty": ([], []),
        "evidence": ([by_label["asset_registered"]], [_equivocation(3)]),
        "governance": ([by_label["governance/member_added"]], []),
    }
    made = []
    for label, (signed, evidence) in contents.items():
        app = _application()
        outcomes = app.admit(app.decode_all(signed), SEED_TIME_MS, Origin.CLIENT)
        assert all(not isinstance(o, Exception) for o in outcomes), outcomes
        for item in evidence:
            assert app.add_evidence(item)
        block = app.propose(height, 0, SEED_TIME_MS)
        assert len(block.events) == len(signed) and len(block.evidence) == len(evidence)
        header = blocks.decode_header(block.header)
        decided = _Decided(header, blocks.block_id(block.header))
        made.append(Seed(label, block, consortium.certificate(decided)))  # type: ignore[arg-type]
    return tuple(made)


@dataclass(frozen=True)
class _Decided:  # what Consortium.certificate reads of an executed block
    header: ledger_pb2.BlockHeader
    block_id: bytes


def _content(block: ledger_pb2.Block) -> tuple:
    """What a block says: its header bytes, each event's body and signature, its evidence and
    previous certificate (unknown fields of the wrappers are not content)."""
    return (
        block.header,
        tuple((e.body, e.signature) for e in block.events),
        tuple(e.SerializeToString(deterministic=True) for e in block.evidence),
        block.last_commit.SerializeToString(deterministic=True)
        if block.HasField("last_commit")
        else None,
    )


def _store_snapshot() -> tuple:
    chain = memory_world().chain
    return chain.state.snapshot(), chain.tip, chain.log.size, len(chain.blocks)


# --- the property --------------------------------------------------------------------------


@hang_checked
def check_proposal(block: ledger_pb2.Block, *, honest: bool = False, warm: bool = False) -> bool:
    """Validate `block` as a fresh validator would. `honest`: the header was made by executing
    the events, so the block must be accepted. `warm`: the validator first admitted every seed
    event into its mempool (so it reuses their decoding and verified signatures)."""
    before = _store_snapshot()
    app = _application()
    if warm:
        pool = [signed for _, signed in memory_world().event_seeds]
        app.admit(app.decode_all(pool), SEED_TIME_MS, Origin.PEER)
    try:
        valid = app.validate(block, SEED_TIME_MS)
    except Exception as error:
        raise unexpected(error, f"validate(block={show(block.SerializeToString())})") from error
    if _store_snapshot() != before:
        raise Finding("state_changed", f"validate changed the store: {show(block.header)}")
    if valid is not True and valid is not False:
        raise Finding("not_a_verdict", f"validate answered {valid!r}")
    if honest and not valid:
        reports = app.take_reports()
        raise Finding("valid_block_refused", f"an honestly made block was refused: {reports}")
    if valid and not honest:
        _check_accepted(block)
    count(TARGET, "accepted" if valid else "rejected")
    return valid


def _check_accepted(block: ledger_pb2.Block) -> None:
    """A changed block that was accepted must hold a seed's events, evidence and previous
    certificate, under a header that executing them gives at the header's time and proposer
    (the two things a proposer chooses)."""
    what = show(block.SerializeToString(), 400)
    seed = next((s for s in seeds() if _content(s.block)[1:] == _content(block)[1:]), None)
    if seed is None:
        raise Finding("invalid_block_accepted", f"a block with other content was accepted: {what}")
    header = blocks.decode_header(block.header)
    world = memory_world()
    chain = world.chain
    try:
        executed = blocks.execute_block(
            state=chain,
            log=chain.log,
            tip=chain.tip,
            chain_id=world.consortium.chain_id,
            candidates=[world.consortium.decode(e) for e in block.events],
            time_ms=header.time_ms,
            proposer_id=header.proposer_id,
            genesis_validators=world.consortium.genesis.validator_set,
            last_commit=block.last_commit,
            strict=True,
            evidence=list(block.evidence),
        )
    except Rejected as rejection:
        message = f"validate accepted what execution refuses ({rejection}): {what}"
        raise Finding("invalid_block_accepted", message) from None
    if executed.header_bytes != block.header:
        raise Finding("invalid_block_accepted", f"a changed header was accepted: {what}")
    if header.time_ms > SEED_TIME_MS + FUTURE_TIME_MS:
        raise Finding("future_block_time_accepted", f"a block far in the future passed: {what}")


@hang_checked
def check_synced_commit(block: ledger_pb2.Block, certificate: ledger_pb2.CommitCertificate) -> str:
    """Commit `block` as synced with `certificate`, writing nowhere."""
    before = _store_snapshot()
    written: list[tuple] = []

    async def write(executed, certificate) -> None:
        written.append((executed, certificate))

    app = _application()
    shown = show(block.SerializeToString()), show(certificate.SerializeToString())
    what = f"block={shown[0]} certificate={shown[1]}"
    try:
        executed = commit_now(app.commit(block, certificate, write, synced=True))
    except Rejected:
        outcome = "rejected"
    except Exception as error:
        raise unexpected(error, f"commit(synced) of {what}") from error
    else:
        outcome = "not_next" if executed is None else "committed"
    if _store_snapshot() != before:
        raise Finding(
            "state_changed", f"a commit whose write went nowhere changed the store: {what}"
        )
    if written:
        seed = _seed_with_content(block)
        if seed is None:
            raise Finding(
                "invalid_block_committed", f"a changed synced block was committed: {what}"
            )
        if not _signatures_of(certificate, seed.certificate):
            raise Finding("bad_certificate_accepted", f"a changed certificate was accepted: {what}")
    count(TARGET, outcome)
    return outcome


def _seed_with_content(block: ledger_pb2.Block) -> Seed | None:
    return next((s for s in seeds() if _content(s.block) == _content(block)), None)


def _signatures_of(
    certificate: ledger_pb2.CommitCertificate, original: ledger_pb2.CommitCertificate
) -> bool:
    """Whether `certificate` is `original` with some of its signatures, a quorum still (the
    only change to a certificate that may still be accepted)."""
    entries = {(s.validator_id, s.signature) for s in original.signatures}
    signers = [s.validator_id for s in certificate.signatures]
    quorum = memory_world().consortium.genesis.validator_set.quorum_size
    return (
        (certificate.height, certificate.round, certificate.block_id)
        == (original.height, original.round, original.block_id)
        and all((s.validator_id, s.signature) in entries for s in certificate.signatures)
        and len(set(signers)) >= quorum
    )


# --- the inputs ----------------------------------------------------------------------------


def _event_hook(message, field, choices: Choices):
    """Another seed's event (as it is, or changed and signed again) where a block has one."""
    if field.message_type is not None and field.message_type.name == "SignedEvent":
        seed = pick(choices, [s for _, s in memory_world().event_seeds])
        if choices.integer(0, 1):
            return seed
        return resign(mutate_bytes(seed.body, choices, 2))
    return None


def block_wire(choices: Choices) -> None:
    seed = pick(choices, seeds())
    try:
        wire = mutate_bytes(seed.block.SerializeToString(), choices, operations_max=2)
        block = ledger_pb2.Block.FromString(wire)
    except DecodeError:
        count(TARGET, "unparsable")
        return
    check_proposal(block, warm=choices.integer(0, 3) == 0)


def block_fields(choices: Choices) -> None:
    block = ledger_pb2.Block()
    block.CopyFrom(pick(choices, seeds()).block)
    mutate_message(block, choices, VOCABULARY, value_hook=_event_hook)
    check_proposal(block, warm=choices.integer(0, 3) == 0)


def header_fields(choices: Choices) -> None:
    block = ledger_pb2.Block()
    block.CopyFrom(pick(choices, seeds()).block)
    header = blocks.decode_header(block.header)
    mutate_message(header, choices, VOCABULARY)
    block.header = header.SerializeToString()
    check_proposal(block)


def honest_block(choices: Choices) -> None:
    """Events chosen and ordered at random, executed honestly: valid if execution succeeds."""
    world = memory_world()
    chain = world.chain
    pool = [s for _, s in world.event_seeds]
    chosen = [pick(choices, pool) for _ in range(choices.integer(0, 6))]
    evidence = [_equivocation(choices.integer(1, 7))] if choices.integer(0, 3) == 0 else []
    decoded = []
    try:
        decoded = [world.consortium.decode(s) for s in chosen]
        executed = blocks.execute_block(
            state=chain,
            log=chain.log,
            tip=chain.tip,
            chain_id=world.consortium.chain_id,
            candidates=decoded,
            time_ms=SEED_TIME_MS + choices.integer(0, BLOCK_TIME_DRIFT_MS_MAX),
            proposer_id=pick(choices, sorted(world.consortium.validator_keys)),
            genesis_validators=world.consortium.genesis.validator_set,
            last_commit=chain.checkpoint(chain.head_height).certificate,  # type: ignore[union-attr]
            strict=True,
            evidence=evidence,
        )
    except Rejected:
        count(TARGET, "unbuildable")
        return
    check_proposal(executed.to_block(), honest=True, warm=choices.integer(0, 3) == 0)


def synced_commit(choices: Choices) -> None:
    seed = pick(choices, seeds())
    block = ledger_pb2.Block()
    block.CopyFrom(seed.block)
    certificate = ledger_pb2.CommitCertificate()
    certificate.CopyFrom(seed.certificate)
    what = choices.integer(0, 3)
    if what == 0:
        mutate_message(certificate, choices, VOCABULARY)
    elif what == 1:
        try:
            certificate = ledger_pb2.CommitCertificate.FromString(
                mutate_bytes(certificate.SerializeToString(), choices)
            )
        except DecodeError:
            count(TARGET, "unparsable")
            return
    elif what == 2:
        mutate_message(block, choices, VOCABULARY, value_hook=_event_hook)
    check_synced_commit(block, certificate)


# --- bounded runs (make test) --------------------------------------------------------------


def test_every_seed_proposal_is_valid_and_commits_when_synced() -> None:
    for seed in seeds():
        assert check_proposal(seed.block) is True, seed.label
        assert check_synced_commit(seed.block, seed.certificate) == "committed", seed.label


@fuzz_settings(examples=60)
@given(st.data())
def test_honestly_made_blocks_are_accepted(data) -> None:
    honest_block(DrawChoices(data))


@fuzz_settings(examples=120)
@given(st.data())
def test_changed_block_bytes_are_judged_cleanly(data) -> None:
    block_wire(DrawChoices(data))


@fuzz_settings(examples=150)
@given(st.data())
def test_changed_block_fields_are_judged_cleanly(data) -> None:
    block_fields(DrawChoices(data))


@fuzz_settings(examples=120)
@given(st.data())
def test_changed_headers_are_refused(data) -> None:
    header_fields(DrawChoices(data))


@fuzz_settings(examples=120)
@given(st.data())
def test_changed_synced_blocks_and_certificates_are_judged_cleanly(data) -> None:
    synced_commit(DrawChoices(data))


HYPOTHESIS_TESTS = (
    test_honestly_made_blocks_are_accepted,
    test_changed_block_bytes_are_judged_cleanly,
    test_changed_block_fields_are_judged_cleanly,
    test_changed_headers_are_refused,
    test_changed_synced_blocks_and_certificates_are_judged_cleanly,
)


# --- coverage-guided runs (make fuzz, with atheris) ----------------------------------------

_MODES = ("block_wire", "header_wire", "certificate_wire", "structured")


def atheris_corpus() -> Sequence[bytes]:
    corpus = []
    for index, seed in enumerate(seeds()):
        corpus.append(bytes([0]) + seed.block.SerializeToString())
        corpus.append(bytes([1, index]) + seed.block.header)
        corpus.append(bytes([2, index]) + seed.certificate.SerializeToString())
    corpus.extend(bytes([3, index]) + bytes(16) for index in range(5))
    return corpus


def atheris_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode = _MODES[data[0] % len(_MODES)]
    if mode == "block_wire":
        try:
            block = ledger_pb2.Block.FromString(data[1:])
        except DecodeError:
            return
        check_proposal(block)
        return
    seed = seeds()[data[1] % len(seeds())]
    if mode == "header_wire":
        block = ledger_pb2.Block()
        block.CopyFrom(seed.block)
        block.header = data[2:]
        check_proposal(block)
    elif mode == "certificate_wire":
        try:
            certificate = ledger_pb2.CommitCertificate.FromString(data[2:])
        except DecodeError:
            return
        check_synced_commit(seed.block, certificate)
    else:
        import atheris

        choices = ProviderChoices(atheris.FuzzedDataProvider(data[1:]))
        pick(choices, (block_wire, block_fields, header_fields, honest_block, synced_commit))(
            choices
        )
