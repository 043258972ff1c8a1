"""The .proto files are the whole contract: a client built from them alone can write and verify.

The test generates Python code from proto/provledger/v1/*.proto with a stock protoc
(`python -m grpc_tools.protoc`) into a scratch folder, then runs a small client script in a
subprocess whose import path holds only that folder and the site-packages that provide grpc,
protobuf and PyNaCl; provledger itself is not importable there. The script builds and signs an
event, submits it with SubmitAndWait, reads it back, and checks its inclusion proof (RFC 9162
§2.1.3.2, written out in the script) against the checkpoint's log root, and the checkpoint's
precommit signature against the validator key in the genesis file.

It reaches the node as any client does: over TLS, trusting the consortium CA's certificate
(`ca/ca.pem` of `consortium init`, the stock `grpc.ssl_channel_credentials`), and reading with
a member's bearer token in the call metadata (`authorization: Bearer <token>`), issued by the
`provledger token issue` command and handed to the script; submitting needs no token, and a
read without one is refused UNAUTHENTICATED.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import google.protobuf
import grpc
import nacl
import pytest
from support.processes import NodeProcess, init_consortium
from support.rest_support import cli_token

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPOSITORY / "proto"
CLIENT_TIMEOUT_S = 60

CLIENT_SCRIPT = r'''
"""An independent provledger client: generated code, PyNaCl and hashlib, nothing else."""

import hashlib
import importlib.util
import json
import sys
import time

import grpc
import nacl.signing
from nacl.exceptions import BadSignatureError

from provledger.v1 import api_pb2, api_pb2_grpc, ledger_pb2

GENERATED = sys.argv[1]
ADDRESS = sys.argv[2]
IDENTITY = json.load(open(sys.argv[3]))
GENESIS = json.load(open(sys.argv[4]))
CA_CERTIFICATE = open(sys.argv[5], "rb").read()  # the consortium CA, which issued the node's
TOKEN = sys.argv[6]  # a member's bearer token: reads need one, submitting does not

DOMAIN_EVENT = b"provledger/v1/event\x00"
DOMAIN_HEADER = b"provledger/v1/header\x00"
DOMAIN_PRECOMMIT = b"provledger/v1/precommit\x00"


def fail(message):
    print("FAILED: " + message)
    sys.exit(1)


def require(condition, message):
    if not condition:
        fail(message)


# --- isolation: only the generated code is importable as provledger ----------------------
require(ledger_pb2.__file__.startswith(GENERATED), "ledger_pb2 is not the generated module")
for name in ("provledger.protocol", "provledger.node", "provledger.cli"):
    require(importlib.util.find_spec(name) is None, name + " is importable")


# --- RFC 6962 hashing and the RFC 9162 section 2.1.3.2 inclusion verifier ---------------
def hash_leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, path):
    """The root `path` yields for the leaf, or None if the proof is malformed."""
    if leaf_index >= tree_size:
        return None
    fn, sn = leaf_index, tree_size - 1
    r = leaf_hash
    for p in path:
        if len(p) != 32 or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return None
    return r


def verify_inclusion(proof, event_id, signature, root):
    leaf_hash = hash_leaf(event_id + signature)
    if proof.leaf_hash != leaf_hash:
        return False
    return root_from_inclusion_proof(
        proof.leaf_index, proof.tree_size, leaf_hash, list(proof.hashes)
    ) == root


# --- checkpoints: a quorum of the genesis validators signed the header -------------------
VALIDATORS = {v["validator_id"]: bytes.fromhex(v["public_key"]) for v in GENESIS["validators"]}
QUORUM = len(VALIDATORS) * 2 // 3 + 1


def verify_checkpoint(checkpoint):
    """The checkpoint's header, if a quorum of genesis validators signed it; else None."""
    header = ledger_pb2.BlockHeader()
    header.ParseFromString(checkpoint.header)
    block_id = hashlib.sha256(DOMAIN_HEADER + checkpoint.header).digest()
    certificate = checkpoint.certificate
    if header.chain_id != GENESIS["chain_id"]:
        return None
    if certificate.block_id != block_id or certificate.height != header.height:
        return None
    sign_bytes = (
        DOMAIN_PRECOMMIT
        + header.chain_id.encode()
        + b"\x00"
        + header.height.to_bytes(8, "big")
        + certificate.round.to_bytes(4, "big")
        + block_id
    )
    signers = set()
    for entry in certificate.signatures:
        public_key = VALIDATORS.get(entry.validator_id)
        if public_key is None or entry.validator_id in signers:
            return None
        try:
            nacl.signing.VerifyKey(public_key).verify(sign_bytes, entry.signature)
        except BadSignatureError:
            return None
        signers.add(entry.validator_id)
    return header if len(signers) >= QUORUM else None


# --- write -------------------------------------------------------------------------------
signing_key = nacl.signing.SigningKey(bytes.fromhex(IDENTITY["seed"]))
key_id = hashlib.sha256(bytes(signing_key.verify_key)).digest()[:16]
require(key_id.hex() == IDENTITY["key_id"], "the identity's key id is not SHA-256(pk)[:16]")

credentials = grpc.ssl_channel_credentials(root_certificates=CA_CERTIFICATE)
channel = grpc.secure_channel(ADDRESS, credentials)
stub = api_pb2_grpc.LedgerServiceStub(channel)
READ = (("authorization", "Bearer " + TOKEN),)  # the metadata of every read
first_nonce = time.time_ns() // 1000
receipts = []
signed_events = []
for number in range(3):
    content = ("stock client dataset %d" % number).encode()
    event = ledger_pb2.Event(
        chain_id=IDENTITY["chain_id"],
        author=ledger_pb2.Author(member_id=IDENTITY["member_id"], key_id=key_id),
        nonce=first_nonce + number,
        timestamp_ms=time.time_ns() // 1000000,
        asset_registered=ledger_pb2.AssetRegistered(
            asset_id="stock-client/dataset-%d-%d" % (first_nonce, number),
            content_digest=hashlib.sha256(content).digest(),
            classification=ledger_pb2.CLASSIFICATION_GENERAL,
            name="Stock client dataset",
            metadata={"client": "stock-protoc"},
        ),
    )
    body = event.SerializeToString()
    signature = signing_key.sign(DOMAIN_EVENT + body).signature
    signed = ledger_pb2.SignedEvent(body=body, signature=signature)
    receipt = stub.SubmitAndWait(api_pb2.SubmitAndWaitRequest(event=signed), timeout=30)
    require(receipt.event_id == hashlib.sha256(body).digest(), "receipt names another event")
    receipts.append(receipt)
    signed_events.append(signed)

# --- read back and verify ----------------------------------------------------------------
middle, signed = receipts[1], signed_events[1]
try:
    stub.GetEvent(api_pb2.GetEventRequest(event_id=middle.event_id), timeout=10)
    fail("a read without a token was answered")
except grpc.RpcError as error:
    require(error.code() == grpc.StatusCode.UNAUTHENTICATED, "anonymous read: %s" % error.code())
    require(error.details().startswith("missing_token: "), "anonymous read: " + error.details())
read = stub.GetEvent(
    api_pb2.GetEventRequest(event_id=middle.event_id), timeout=10, metadata=READ
)
require(read.event.body == signed.body, "GetEvent returned other bytes")
require(read.event.signature == signed.signature, "GetEvent returned another signature")
require((read.height, read.log_index) == (middle.height, middle.log_index), "location differs")

header = verify_checkpoint(middle.checkpoint)
require(header is not None, "the receipt's checkpoint does not verify against the genesis")
require(verify_inclusion(middle.proof, middle.event_id, signed.signature, header.log_root),
        "the receipt's inclusion proof does not verify")

response = stub.GetInclusionProof(
    api_pb2.GetInclusionProofRequest(event_id=middle.event_id), timeout=10, metadata=READ
)
header = verify_checkpoint(response.checkpoint)
require(header is not None, "the latest checkpoint does not verify against the genesis")
require(response.proof.tree_size == header.log_size, "proof and checkpoint sizes differ")
require(response.proof.leaf_index == middle.log_index, "proof is for another leaf")
require(response.proof.tree_size >= 3 and len(response.proof.hashes) > 0, "trivial proof")
require(response.event.body == signed.body, "the proof's event differs")
require(verify_inclusion(response.proof, middle.event_id, signed.signature, header.log_root),
        "the inclusion proof does not verify")

# The verifiers refuse what they must refuse.
tampered = ledger_pb2.InclusionProof()
tampered.CopyFrom(response.proof)
tampered.hashes[0] = bytes([tampered.hashes[0][0] ^ 1]) + tampered.hashes[0][1:]
require(not verify_inclusion(tampered, middle.event_id, signed.signature, header.log_root),
        "a tampered proof verified")
require(not verify_inclusion(response.proof, middle.event_id, bytes(64), header.log_root),
        "a proof verified for another leaf")
forged = ledger_pb2.Checkpoint()
forged.CopyFrom(response.checkpoint)
forged.certificate.signatures[0].signature = bytes(64)
require(verify_checkpoint(forged) is None, "a forged precommit signature verified")

modules = [m for m in sys.modules if m == "provledger" or m.startswith("provledger.")]
require(all(m in ("provledger", "provledger.v1") or m.startswith("provledger.v1.")
            for m in modules), "imported more than the generated code: %s" % modules)
print("leaf %d of %d at height %d, %d proof hashes" % (
    response.proof.leaf_index, response.proof.tree_size, header.height,
    len(response.proof.hashes)))
print("VERIFIED")
'''


def site_packages_for_dependencies() -> list[str]:
    """The folders that hold grpc, protobuf and PyNaCl (and what they import), no more."""
    folders = [
        Path(grpc.__file__).resolve().parent.parent,
        Path(google.protobuf.__file__).resolve().parent.parent.parent,
        Path(nacl.__file__).resolve().parent.parent,
        Path(sysconfig.get_paths()["platlib"]),
        Path(sysconfig.get_paths()["purelib"]),
    ]
    unique: list[str] = []
    for folder in folders:
        if str(folder) not in unique:
            unique.append(str(folder))
    return unique


@pytest.fixture(scope="module")
def consortium_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    tmp_path = tmp_path_factory.mktemp("stock-client")
    layout = init_consortium(tmp_path, nodes=1)
    with NodeProcess.for_node(layout, 0, tmp_path) as node:
        yield layout, node


def generate(out: Path) -> None:
    out.mkdir()
    protos = sorted(str(p) for p in (PROTO_ROOT / "provledger" / "v1").glob("*.proto"))
    assert protos
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ],
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "provledger" / "v1" / "api_pb2_grpc.py").exists()
    # A namespace package, not the repository's provledger: no __init__.py is generated.
    assert not (out / "provledger" / "__init__.py").exists()


def test_stock_protoc_client_submits_and_verifies(consortium_node, tmp_path: Path) -> None:
    layout, node = consortium_node
    token = cli_token(layout.identities["agency-a"], "member")
    generated = tmp_path / "generated"
    generate(generated)
    client_dir = tmp_path / "client"
    client_dir.mkdir()
    script = client_dir / "stock_client.py"
    script.write_text(CLIENT_SCRIPT)

    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environment["PYTHONPATH"] = os.pathsep.join([str(generated), *site_packages_for_dependencies()])
    result = subprocess.run(
        [
            sys.executable,
            "-S",  # no site: the editable install's .pth hook must not make provledger importable
            str(script),
            str(generated),
            node.address,
            str(layout.identities["agency-a"]),
            str(layout.genesis_path),
            str(layout.ca_certificate),
            token,
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=client_dir,
        timeout=CLIENT_TIMEOUT_S,
    )
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{node.log_tail()}"
    assert result.returncode == 0, output
    assert result.stdout.strip().splitlines()[-1] == "VERIFIED", output


def test_client_subprocess_cannot_import_provledger(tmp_path: Path) -> None:
    """The isolation the test above relies on: with -S and this path, provledger is absent."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environment["PYTHONPATH"] = os.pathsep.join(site_packages_for_dependencies())
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import provledger"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode != 0
    assert "No module named 'provledger'" in result.stderr
