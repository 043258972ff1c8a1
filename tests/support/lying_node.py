"""A lying node for split-view tests: a gRPC server on 127.0.0.1 that serves LedgerService's
GetCheckpoint and GetConsistencyProof over TLS, with a certificate issued by the consortium CA
(whose key `consortium init` leaves in DIR/ca/), from checkpoints the test hands it: the
chain a Byzantine quorum shows to some clients and not to others. Every other method answers
UNIMPLEMENTED. It runs in the test's process, on threads, until `stop`.

    with LyingNode(layout, checkpoints={1: real_1, 2: forged_2}, proofs=real.consistency) as liar:
        ...  # liar.address serves forged_2 as its latest checkpoint

Also `forge_checkpoint`: a block header at an existing height changed and signed again by the
given validators' keys, taken from their node folders, as a Byzantine quorum would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from pathlib import Path

import grpc

from provledger.cli.consortium import ConsortiumLayout
from provledger.node import tls
from provledger.node.keyfile import load_key
from provledger.protocol import blocks
from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

LOOPBACK = "127.0.0.1"
SERVER_THREADS = 4
STOP_GRACE_S = 1.0

ConsistencyReader = Callable[[int, int], api_pb2.GetConsistencyProofResponse]


def consortium_ca(layout: ConsortiumLayout) -> tuple[bytes, bytes]:
    """The consortium CA's certificate and key, as `consortium init` wrote them."""
    ca_dir = Path(layout.directory) / "ca"
    return (ca_dir / "ca.pem").read_bytes(), (ca_dir / "ca-key.pem").read_bytes()


def issued_material(layout: ConsortiumLayout, node_id: str) -> tls.TlsMaterial:
    """A certificate for `node_id` (names localhost and 127.0.0.1) issued by the CA."""
    ca_certificate, ca_key = consortium_ca(layout)
    certificate, key = tls.issue_node_certificate(ca_certificate, ca_key, node_id)
    return tls.TlsMaterial(
        ca_certificate_pem=ca_certificate, certificate_pem=certificate, key_pem=key
    )


def validator_key_path(layout: ConsortiumLayout, node_id: str) -> Path:
    return Path(layout.directory) / node_id / "validator-key.json"


def forge_checkpoint(
    layout: ConsortiumLayout,
    chain_id: str,
    real: ledger_pb2.Checkpoint,
    signers: Iterable[str],
) -> ledger_pb2.Checkpoint:
    """Another block at `real`'s height (its time one millisecond later: the same log, another
    block id), precommitted in `real`'s round by each of `signers` with its validator key."""
    header = blocks.decode_header(real.header)
    header.time_ms += 1
    header_bytes = blocks.encode_header(header)
    identifier = blocks.block_id(header_bytes)
    round_number = real.certificate.round
    signatures = []
    for node_id in sorted(signers):
        key, _ = load_key(validator_key_path(layout, node_id))
        signatures.append(
            ledger_pb2.CommitSignature(
                validator_id=node_id,
                signature=blocks.sign_precommit(
                    key, chain_id, header.height, round_number, identifier
                ),
            )
        )
    return ledger_pb2.Checkpoint(
        header=header_bytes,
        certificate=ledger_pb2.CommitCertificate(
            height=header.height, round=round_number, block_id=identifier, signatures=signatures
        ),
    )


class _Servicer(api_pb2_grpc.LedgerServiceServicer):
    def __init__(
        self, checkpoints: Mapping[int, ledger_pb2.Checkpoint], proofs: ConsistencyReader
    ) -> None:
        self._checkpoints = dict(checkpoints)
        self._latest = max(self._checkpoints)
        self._proofs = proofs
        self.calls: list[str] = []

    def GetCheckpoint(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.append(f"GetCheckpoint({request.height})")
        height = request.height or self._latest
        if height not in self._checkpoints:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no checkpoint at {height}")
        return self._checkpoints[height]

    def GetConsistencyProof(self, request, context):  # type: ignore[no-untyped-def]
        self.calls.append(f"GetConsistencyProof({request.first_height}, {request.second_height})")
        second = request.second_height or self._latest
        if request.first_height not in self._checkpoints or second not in self._checkpoints:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad_range")
        answer = self._proofs(request.first_height, second)
        return api_pb2.GetConsistencyProofResponse(
            proof=answer.proof,
            first=self._checkpoints[request.first_height],
            second=self._checkpoints[second],
        )


class LyingNode:
    """The server described in the module docstring; `address` once started."""

    def __init__(
        self,
        layout: ConsortiumLayout,
        checkpoints: Mapping[int, ledger_pb2.Checkpoint],
        proofs: ConsistencyReader,
        node_id: str = "liar",
    ) -> None:
        self._material = issued_material(layout, node_id)
        self.servicer = _Servicer(checkpoints, proofs)
        self._server: grpc.Server | None = None
        self.address = ""

    def start(self) -> LyingNode:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=SERVER_THREADS))
        api_pb2_grpc.add_LedgerServiceServicer_to_server(self.servicer, server)
        port = server.add_secure_port(
            f"{LOOPBACK}:0", tls.client_api_server_credentials(self._material)
        )
        server.start()
        self._server = server
        self.address = f"{LOOPBACK}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(STOP_GRACE_S).wait()
            self._server = None

    def __enter__(self) -> LyingNode:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
