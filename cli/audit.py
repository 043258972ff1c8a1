"""`provledger audit watch`: ask several nodes for their latest checkpoints and prove that they
are all on one chain, or catch a split view with a portable proof of the fork.

A node's answers are never trusted: a checkpoint counts once a quorum of the genesis validators
committed it (protocol/blocks.verify_checkpoint), and a conflict counts once
protocol/fork_proof.py can show it to anyone who trusts the genesis alone.

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
       that does not verify (a bad checkpoint, a consistency proof that shows nothing).

The state file (--state) is JSON, written atomically (a temporary file, fsync, rename):
    {"format": "provledger-audit-state/1", "chain_id": str, "genesis_hash": hex,
     "nodes": {address: {"checkpoint": {...}}}}   # the highest verified checkpoint per node
Its checkpoints are verified again when it is read, so a damaged or edited file cannot make a
fork or hide one: at worst it is refused.
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
from provledger.protocol.evidence import (
    checkpoint_json,
    encode_canonical,
    parse_canonical,
    read_checkpoint,
)
from provledger.protocol.evidence_claims import BundleError
from provledger.protocol.fork_proof import (
    ForkProof,
    ForkProofError,
    Sighting,
    encode_fork_proof,
    find_conflict,
)
from provledger.protocol.genesis import Genesis
from provledger.protocol.proofs import ProofAnswerError, verify_consistency_answer
from provledger.v1 import api_pb2, ledger_pb2

EXIT_FORK = 3
EXIT_INCOMPLETE = 4
STATE_FORMAT = "provledger-audit-state/1"
STATE_SIZE_BYTES_MAX = 16 * 1024 * 1024
RPC_TIMEOUT_S = 30.0
PROOF_FILE_SUFFIX = ".fork-proof.json"
DEFAULT_PROOF_FILE = "provledger-fork-proof.json"  # without --state or --proof-out
SEEN_BEFORE = " (seen before)"  # how a remembered sighting's source is named


class Node(Protocol):
    """What the watch asks of one node (cli: a gRPC client; tests: a fake)."""

    address: str

    def latest_checkpoint(self) -> ledger_pb2.Checkpoint | None:
        """The node's latest checkpoint, None for an empty chain; raises on failure."""
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
    remember: dict[str, ledger_pb2.Checkpoint] = field(default_factory=dict)
    comparisons: int = 0

    @property
    def exit_code(self) -> int:
        if self.forks:
            return EXIT_FORK
        return EXIT_INCOMPLETE if self.problems else 0


def watch(
    genesis: Genesis,
    nodes: Sequence[Node],
    remembered: dict[str, ledger_pb2.Checkpoint],
    describe_error: Callable[[Exception], str] = str,
) -> WatchReport:
    """Compare every node's latest checkpoint with every other's and with `remembered` (the
    highest verified checkpoint of each node from earlier runs). I/O only through `nodes`;
    an exception a node raises is a problem described by `describe_error`."""
    report = WatchReport()
    sightings: list[Seen] = []
    for address, checkpoint in sorted(remembered.items()):
        seen = _seen(Sighting(address + SEEN_BEFORE, checkpoint), address, genesis, False)
        if seen is not None:  # the state file's are verified when it is read
            sightings.append(seen)
            report.remember[address] = checkpoint
    for node in nodes:
        try:
            checkpoint = node.latest_checkpoint()
        except Exception as error:
            report.problems.append(f"{node.address}: cannot be asked: {describe_error(error)}")
            continue
        if checkpoint is None:
            report.latest[node.address] = None  # an empty chain agrees with every chain
            continue
        seen = _seen(Sighting(node.address, checkpoint), node.address, genesis, True)
        if seen is None:
            report.problems.append(
                f"{node.address}: its latest checkpoint is not committed by a quorum of the "
                "genesis validators"
            )
            continue
        report.latest[node.address] = seen
        sightings.append(seen)
        before = report.remember.get(node.address)
        if before is None or decode_header(before.header).height <= seen.height:
            report.remember[node.address] = checkpoint
    by_address = {node.address: node for node in nodes}
    found: set[tuple[bytes, bytes]] = set()

    def fork(proof: ForkProof) -> None:
        key = (block_id(proof.first.checkpoint.header), block_id(proof.second.checkpoint.header))
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


def _seen(sighting: Sighting, address: str, genesis: Genesis, current: bool) -> Seen | None:
    try:
        header = verify_checkpoint(sighting.checkpoint, genesis)
    except Rejected:
        return None
    return Seen(sighting, address, header.height, block_id(sighting.checkpoint.header), current)


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
    try:
        for seen, served in pairs:
            if decode_header(served.header).height != seen.height:
                raise ForkProofError("wrong_heights", f"it holds no checkpoint at {seen.height}")
        # Its own checkpoints at both heights: each must commit what was seen there.
        for seen, served in pairs:
            proof = find_conflict(seen.sighting, Sighting(where, served), genesis)
            if proof is not None:
                fork(proof)
                return
    except (ForkProofError, Rejected) as error:
        report.problems.append(f"{node.address}: its consistency answer does not verify: {error}")
        return
    try:
        verify_consistency_answer(
            answer.proof, lower.sighting.checkpoint, upper.sighting.checkpoint, genesis
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

    def latest_checkpoint(self) -> ledger_pb2.Checkpoint | None:
        try:
            return self._client.stub.GetCheckpoint(
                api_pb2.GetCheckpointRequest(height=0), timeout=RPC_TIMEOUT_S
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
                return None  # empty_chain
            raise

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


def read_state(path: Path, genesis: Genesis) -> dict[str, ledger_pb2.Checkpoint]:
    """The checkpoints remembered in `path` (none if it does not exist), each verified."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise CommandError(f"cannot read the state file {path}: {error}") from None
    try:
        document = parse_canonical(data, STATE_SIZE_BYTES_MAX)
        if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
            raise BundleError("malformed", f"not a {STATE_FORMAT} document")
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
            if not isinstance(entry, dict) or set(entry) != {"checkpoint"}:
                raise BundleError("malformed", f"nodes[{address!r}] must hold a checkpoint")
            checkpoint, *_ = read_checkpoint(entry["checkpoint"], genesis, f"nodes[{address!r}]")
            remembered[address] = checkpoint
    except BundleError as error:
        raise CommandError(f"the state file {path} is not usable: {error}") from None
    return remembered


def write_state(path: Path, genesis: Genesis, remember: dict[str, ledger_pb2.Checkpoint]) -> None:
    document = {
        "format": STATE_FORMAT,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.genesis_hash.hex(),
        "nodes": {
            address: {"checkpoint": checkpoint_json(checkpoint)}
            for address, checkpoint in sorted(remember.items())
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
