"""`provledger audit watch`: ask several nodes for their latest checkpoints and prove that they
are all on one chain, or catch a split view with a portable proof of the fork.

A node's answers are never trusted: a checkpoint counts once a quorum of the validators of its
height committed it (protocol/blocks.verify_checkpoint), which validators those are being
proven by the walk of the validator sets from the genesis that the node serves with it
(protocol/validator_chain.py, ADR 013; empty while the genesis set signs); and a conflict
counts once protocol/fork_proof.py can show it to anyone who trusts the genesis alone. A
node's latest checkpoint and its walk are the `second` and `validator_chain` of its
GetConsistencyProof answer from height 1 to its latest (0), so no other call is needed; every
consistency answer carries the walk that verifies its two checkpoints.

What is compared (`watch`): a *sighting* is a verified checkpoint and where it was seen: each
node's latest now, and, from the state file, the highest each node served before. For every
node's latest checkpoint B and every other sighting A at a lower height, the node that served
B is asked for a consistency proof from A's height to B's (GetConsistencyProof). Its answer
holds its own checkpoint at A's height, which must commit A's block (else two blocks were
committed at one height: a fork), and an RFC 6962 proof that its log extends A's log (a proof
that fails is a fork if it shows the conflict, and an unverified answer otherwise). Sightings
at one height must commit one block. Honest nodes at different heights agree.

Exit codes, for scripts and monitors:
    0  every node's checkpoint is on one chain with every other's and with what was seen before;
    1  the command could not run (arguments, files, the genesis), as every command;
    3  FORK: two quorum-signed checkpoints conflict; the nodes that disagree are printed and the
       proof (`provledger verify` checks it) is written to --proof-out;
    4  INCOMPLETE: no fork was proven, but a node could not be asked, or answered with something
       that does not verify (a bad walk of the validator sets, a bad checkpoint, a consistency
       proof that shows nothing).

The state file (--state) is JSON, written atomically (a temporary file, fsync, rename):
    {"format": "provledger-audit-state/2", "chain_id": str, "genesis_hash": hex,
     "nodes": {address: {"checkpoint": {...},            # the highest verified one per node
                         "validator_chain": {...}}}}    # the walk it was verified with
Its walks and checkpoints are verified again when it is read, so a damaged or edited file
cannot make a fork or hide one: at worst it is refused. A "provledger-audit-state/1" file
(no walks) is still read, its checkpoints against the genesis set; /2 is written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc

from provledger.cli.client import describe_rpc_error
from provledger.cli.connection import client_for
from provledger.cli.output import CommandError, emit, load_genesis
from provledger.protocol.blocks import block_id, decode_header, verify_checkpoint
from provledger.protocol.errors import Rejected
from provledger.protocol.evidence import read_checkpoint
from provledger.protocol.evidence_claims import BundleError
from provledger.protocol.evidence_format import checkpoint_json, encode_canonical, parse_canonical
from provledger.protocol.fork_proof import (
    ForkProof,
    ForkProofError,
    Sighting,
    encode_fork_proof,
    find_conflict,
    walked_history,
)
from provledger.protocol.genesis import Genesis
from provledger.protocol.proofs import ProofAnswerError, verify_consistency_answer
from provledger.protocol.validator_chain import (
    ValidatorChainError,
    chain_from_json,
    chain_to_json,
    verify_validator_chain,
)
from provledger.v1 import api_pb2, ledger_pb2

EXIT_FORK = 3
EXIT_INCOMPLETE = 4
STATE_FORMAT = "provledger-audit-state/2"
STATE_FORMAT_1 = "provledger-audit-state/1"  # still read: no walks, the genesis set signs
STATE_SIZE_BYTES_MAX = 16 * 1024 * 1024
RPC_TIMEOUT_S = 30.0
PROOF_FILE_SUFFIX = ".fork-proof.json"
DEFAULT_PROOF_FILE = "provledger-fork-proof.json"  # without --state or --proof-out
SEEN_BEFORE = " (seen before)"  # how a remembered sighting's source is named
_ENTRY_FIELDS = {"checkpoint", "validator_chain"}  # a node's entry in the state file


class Node(Protocol):
    """What the watch asks of one node (cli: a gRPC client; tests: a fake)."""

    address: str

    def latest_checkpoint(
        self,
    ) -> tuple[ledger_pb2.Checkpoint, ledger_pb2.ValidatorChain] | None:
        """The node's latest checkpoint and the walk of the validator sets to its height,
        None for an empty chain; raises on failure."""
        ...

    def consistency(
        self, first_height: int, second_height: int
    ) -> api_pb2.GetConsistencyProofResponse:
        """GetConsistencyProof; raises on failure."""
        ...


@dataclass(frozen=True)
class Seen:
    """A verified sighting: its checkpoint, height and block id, and which node served it."""

    sighting: Sighting
    address: str
    height: int
    block_id: bytes
    current: bool  # served in this run (else remembered from the state file)


@dataclass
class WatchReport:
    """What one run found: forks (each provable), problems (no fork proven, but a node could
    not be checked), every node's latest height and block, and the state to remember."""

    forks: list[ForkProof] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    latest: dict[str, Seen | None] = field(default_factory=dict)
    remember: dict[str, Sighting] = field(default_factory=dict)  # by address; source unused
    comparisons: int = 0

    @property
    def exit_code(self) -> int:
        if self.forks:
            return EXIT_FORK
        return EXIT_INCOMPLETE if self.problems else 0


def watch(
    genesis: Genesis,
    nodes: Sequence[Node],
    remembered: dict[str, Sighting],
    describe_error: Callable[[Exception], str] = str,
) -> WatchReport:
    """Compare every node's latest checkpoint with every other's and with `remembered` (the
    highest verified checkpoint of each node from earlier runs, with its walk). I/O only
    through `nodes`; an exception a node raises is a problem described by `describe_error`."""
    report = WatchReport()
    sightings: list[Seen] = []
    for address, before in sorted(remembered.items()):
        sighting = Sighting(address + SEEN_BEFORE, before.checkpoint, before.validator_chain)
        seen, _ = _seen(sighting, address, genesis, False)
        if seen is not None:  # the state file's are verified when it is read
            sightings.append(seen)
            report.remember[address] = sighting
    for node in nodes:
        try:
            served = node.latest_checkpoint()
        except Exception as error:
            report.problems.append(f"{node.address}: cannot be asked: {describe_error(error)}")
            continue
        if served is None:
            report.latest[node.address] = None  # an empty chain agrees with every chain
            continue
        checkpoint, walk = served
        seen, failure = _seen(Sighting(node.address, checkpoint, walk), node.address, genesis, True)
        if seen is None:
            report.problems.append(f"{node.address}: its latest checkpoint {failure}")
            continue
        report.latest[node.address] = seen
        sightings.append(seen)
        remembered_before = report.remember.get(node.address)
        if (
            remembered_before is None
            or decode_header(remembered_before.checkpoint.header).height <= seen.height
        ):
            report.remember[node.address] = seen.sighting
    by_address = {node.address: node for node in nodes}
    found: set[frozenset[bytes]] = set()

    def fork(proof: ForkProof) -> None:  # one pair of blocks, in either order, is one fork
        key = frozenset(
            (block_id(proof.first.checkpoint.header), block_id(proof.second.checkpoint.header))
        )
        if key not in found:
            found.add(key)
            report.forks.append(proof)

    for index, one in enumerate(sightings):  # one height: one block
        for other in sightings[index + 1 :]:
            if one.height == other.height and one.block_id != other.block_id:
                report.comparisons += 1
                proof = find_conflict(one.sighting, other.sighting, genesis)
                if proof is not None:
                    fork(proof)
    for upper in sightings:  # each node's latest against every lower sighting, by that node
        if not upper.current:
            continue
        asked: dict[int, api_pb2.GetConsistencyProofResponse | None] = {}
        for lower in sightings:
            if lower.height >= upper.height or lower.block_id == upper.block_id:
                continue
            if lower.current and lower.address == upper.address:
                continue
            report.comparisons += 1
            _compare(
                by_address[upper.address],
                upper,
                lower,
                genesis,
                asked,
                report,
                fork,
                describe_error,
            )
    return report


def _seen(
    sighting: Sighting, address: str, genesis: Genesis, current: bool
) -> tuple[Seen | None, str]:
    """The sighting if its walk verifies from the genesis and a quorum of the set that walk
    says signs its height committed its checkpoint; else None and why not."""
    try:
        history = walked_history(sighting, genesis)
    except ForkProofError as error:
        return None, f"comes with a walk of the validator sets that does not verify: {error}"
    try:
        header = verify_checkpoint(sighting.checkpoint, genesis, history)
    except Rejected as error:
        return None, (
            "is not committed by a quorum of the validators of its height (by its walk of the "
            f"validator sets): {error}"
        )
    seen = Seen(sighting, address, header.height, block_id(sighting.checkpoint.header), current)
    return seen, ""


def _compare(
    node: Node,
    upper: Seen,
    lower: Seen,
    genesis: Genesis,
    asked: dict[int, api_pb2.GetConsistencyProofResponse | None],
    report: WatchReport,
    fork: Callable[[ForkProof], None],
    describe_error: Callable[[Exception], str],
) -> None:
    """Ask `node` (which served `upper`) to prove that its log extends `lower`'s."""
    if lower.height not in asked:
        try:
            asked[lower.height] = node.consistency(lower.height, upper.height)
        except Exception as error:
            asked[lower.height] = None
            report.problems.append(
                f"{node.address}: no consistency proof from height {lower.height} to "
                f"{upper.height}: {describe_error(error)}"
            )
    answer = asked[lower.height]
    if answer is None:
        return
    where = f"{node.address} (consistency answer)"
    pairs = ((lower, answer.first), (upper, answer.second))
    walk = answer.validator_chain
    try:
        for seen, served in pairs:
            if decode_header(served.header).height != seen.height:
                raise ForkProofError("wrong_heights", f"it holds no checkpoint at {seen.height}")
        # Its own checkpoints at both heights (verified with the walk it answers with): each
        # must commit what was seen there.
        for seen, served in pairs:
            proof = find_conflict(seen.sighting, Sighting(where, served, walk), genesis)
            if proof is not None:
                fork(proof)
                return
    except (ForkProofError, Rejected) as error:
        report.problems.append(f"{node.address}: its consistency answer does not verify: {error}")
        return
    try:
        verify_consistency_answer(
            answer.proof, lower.sighting.checkpoint, upper.sighting.checkpoint, genesis, walk
        )
        return
    except ProofAnswerError as failure:
        reason = str(failure)
    try:
        proof = find_conflict(lower.sighting, upper.sighting, genesis, answer.proof)
    except ForkProofError as error:
        reason = f"{reason}; {error}"
        proof = None
    if proof is not None:
        fork(proof)
    else:
        report.problems.append(
            f"{node.address}: its consistency proof from height {lower.height} to "
            f"{upper.height} does not verify and shows no conflict ({reason})"
        )


# --- the command -------------------------------------------------------------------------


class _GrpcNode:
    """A node's client API, as the watch asks it."""

    def __init__(self, args: argparse.Namespace, address: str) -> None:
        self.address = address
        self._client = client_for(args, address)

    def latest_checkpoint(
        self,
    ) -> tuple[ledger_pb2.Checkpoint, ledger_pb2.ValidatorChain] | None:
        # GetCheckpoint answers no walk; a consistency answer from height 1 to the latest
        # holds the latest checkpoint (`second`) and the walk to its height.
        try:
            answer = self.consistency(1, 0)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
                return None  # empty_chain
            raise
        return answer.second, answer.validator_chain

    def consistency(
        self, first_height: int, second_height: int
    ) -> api_pb2.GetConsistencyProofResponse:
        return self._client.stub.GetConsistencyProof(
            api_pb2.GetConsistencyProofRequest(
                first_height=first_height, second_height=second_height
            ),
            timeout=RPC_TIMEOUT_S,
        )

    def close(self) -> None:
        self._client.close()


def _describe(error: Exception) -> str:
    if isinstance(error, grpc.RpcError):
        return describe_rpc_error(error)
    return str(error)


def cmd_audit_watch(args: argparse.Namespace) -> int:
    genesis = load_genesis(args.genesis)
    addresses = list(dict.fromkeys(args.node))
    if len(addresses) < 2:
        raise CommandError("give at least two --node addresses to compare")
    state_path = Path(args.state) if args.state else None
    remembered = read_state(state_path, genesis) if state_path is not None else {}
    with contextlib.ExitStack() as stack:
        nodes = []
        for address in addresses:
            node = _GrpcNode(args, address)
            stack.callback(node.close)
            nodes.append(node)
        report = watch(genesis, nodes, remembered, _describe)
    if state_path is not None:
        write_state(state_path, genesis, report.remember)
    proof_path = None
    if report.forks:
        proof_path = Path(args.proof_out) if args.proof_out else default_proof_path(state_path)
        _write_atomically(proof_path, encode_fork_proof(report.forks[0], genesis))
    emit(args, _report_json(report, proof_path), "\n".join(_report_lines(report, proof_path)))
    return report.exit_code


def default_proof_path(state_path: Path | None) -> Path:
    """Next to the state file (its name with PROOF_FILE_SUFFIX), else in the current folder."""
    if state_path is None:
        return Path(DEFAULT_PROOF_FILE)
    return state_path.with_name(state_path.stem + PROOF_FILE_SUFFIX)


def _report_lines(report: WatchReport, proof_path: Path | None) -> list[str]:
    lines = []
    for address, seen in report.latest.items():
        if seen is None:
            lines.append(f"{address}: no block committed yet")
        else:
            lines.append(f"{address}: height {seen.height}, block {seen.block_id.hex()}")
    for proof in report.forks:
        first, second = proof.first, proof.second
        lines.append(
            f"FORK: {first.source} and {second.source} disagree: {proof.reason} ({proof.kind})"
        )
    if report.forks:
        lines.append(f"proof of the fork written to {proof_path}; check it with provledger verify")
    lines += [f"INCOMPLETE: {problem}" for problem in report.problems]
    if report.exit_code == 0:
        lines.append(
            f"consistent: {len(report.latest)} nodes on one chain ({report.comparisons} "
            "comparisons with proofs)"
        )
    return lines


def _report_json(report: WatchReport, proof_path: Path | None) -> dict[str, object]:
    return {
        "exit_code": report.exit_code,
        "nodes": {
            address: None
            if seen is None
            else {"height": seen.height, "block_id": seen.block_id.hex()}
            for address, seen in report.latest.items()
        },
        "forks": [
            {
                "kind": proof.kind,
                "reason": proof.reason,
                "first": proof.first.source,
                "second": proof.second.source,
            }
            for proof in report.forks
        ],
        "proof_file": str(proof_path) if proof_path is not None else None,
        "problems": report.problems,
        "comparisons": report.comparisons,
    }


# --- the state file ----------------------------------------------------------------------


def read_state(path: Path, genesis: Genesis) -> dict[str, Sighting]:
    """The checkpoints remembered in `path` (none if it does not exist), each verified with
    its walk of the validator sets, by address (their `source` is the address)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise CommandError(f"cannot read the state file {path}: {error}") from None
    try:
        document = parse_canonical(data, STATE_SIZE_BYTES_MAX)
        if not isinstance(document, dict) or document.get("format") not in (
            STATE_FORMAT,
            STATE_FORMAT_1,
        ):
            raise BundleError("malformed", f"not a {STATE_FORMAT} document")
        names = {"checkpoint"} if document["format"] == STATE_FORMAT_1 else _ENTRY_FIELDS
        if (document.get("chain_id"), document.get("genesis_hash")) != (
            genesis.chain_id,
            genesis.genesis_hash.hex(),
        ):
            raise BundleError("wrong_genesis", "it is for another chain or genesis")
        nodes = document.get("nodes")
        if not isinstance(nodes, dict):
            raise BundleError("malformed", "nodes must be an object")
        remembered = {}
        for address, entry in nodes.items():
            where = f"nodes[{address!r}]"
            if not isinstance(entry, dict) or set(entry) != names:
                raise BundleError("malformed", f"{where} must hold exactly {sorted(names)}")
            walk = ledger_pb2.ValidatorChain()
            try:
                if "validator_chain" in entry:
                    walk = chain_from_json(entry["validator_chain"])
                history = verify_validator_chain(walk, genesis)
            except ValidatorChainError as error:
                raise BundleError(
                    "bad_validator_chain", f"{where}: the walk does not verify: {error}"
                ) from None
            checkpoint, *_ = read_checkpoint(entry["checkpoint"], genesis, where, history)
            remembered[address] = Sighting(address, checkpoint, walk)
    except BundleError as error:
        raise CommandError(f"the state file {path} is not usable: {error}") from None
    return remembered


def write_state(path: Path, genesis: Genesis, remember: dict[str, Sighting]) -> None:
    document = {
        "format": STATE_FORMAT,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.genesis_hash.hex(),
        "nodes": {
            address: {
                "checkpoint": checkpoint_json(sighting.checkpoint),
                "validator_chain": chain_to_json(sighting.validator_chain),
            }
            for address, sighting in sorted(remember.items())
        },
    }
    _write_atomically(path, encode_canonical(document))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, whole."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        with _temporary_beside(directory, path.name) as temporary:
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error}") from None


@contextlib.contextmanager
def _temporary_beside(directory: Path, name: str) -> Iterator[str]:
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
    os.close(handle)
    try:
        yield temporary
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
