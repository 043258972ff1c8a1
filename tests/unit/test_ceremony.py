"""The founding ceremony's commands, run in-process (cli/ceremony.py, ADR 015): each
organisation's folder, the draft, the signatures, the seal, the node config and the CA bundle,
and what each refuses. Real nodes run the same ceremony in
tests/integration/test_founding_ceremony.py."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography import x509

from provledger.cli.main import main
from provledger.node import tls
from provledger.node.config import NodeConfig
from provledger.protocol.genesis import parse_genesis

CHAIN = "ceremony-unit"
# (member id, role, node id or None)
ORGS = (
    ("agency-a", "agency", "node-a"),
    ("agency-b", "agency", "node-b"),
    ("audit", "auditor", None),
)
PRIVATE_FILES = (
    "identity.json",
    "ca/ca-key.pem",
    "node/validator-key.json",
    "node/tls/node-key.pem",
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def org_init(
    capsys: pytest.CaptureFixture[str], root: Path, org: str, role: str, node: str | None
) -> None:
    argv = ["org", "init", "--org", org, "--name", org.title(), "--role", role]
    argv += ["--chain-id", CHAIN, "--dir", str(root / org)]
    if node is not None:
        argv += [
            "--node",
            node,
            "--host",
            f"{node}.example.org",
            "--peer-address",
            f"127.0.0.1:{7100 + len(node)}",
        ]
    ok_json(capsys, *argv)


@pytest.fixture
def ceremony(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Every organisation's folder after `org init`, and the coordinator's draft and peers."""
    for org, role, node in ORGS:
        org_init(capsys, tmp_path, org, role, node)
    coordinator = tmp_path / "coordinator"
    coordinator.mkdir()
    argv = ["genesis", "draft", "--chain-id", CHAIN, "--out", str(coordinator / "draft.json")]
    argv += ["--peers-out", str(coordinator / "peers.json")]
    for org, _, _ in ORGS:
        argv += ["--org", str(tmp_path / org / "public.json")]
    ok_json(capsys, *argv)
    return tmp_path


def sign_all(capsys: pytest.CaptureFixture[str], root: Path, orgs=ORGS) -> list[str]:
    approvals = []
    for org, _, _ in orgs:
        approval = root / org / "approval.json"
        ok_json(
            capsys, "genesis", "sign", "--draft", str(root / "coordinator" / "draft.json"),
            "--identity", str(root / org / "identity.json"), "--out", str(approval),
        )  # fmt: skip
        approvals += ["--approval", str(approval)]
    return approvals


def seal(
    capsys: pytest.CaptureFixture[str], root: Path, approvals: list[str]
) -> tuple[int, str, str]:
    draft = str(root / "coordinator" / "draft.json")
    out = str(root / "coordinator" / "genesis.json")
    return run(capsys, "genesis", "seal", "--draft", draft, *approvals, "--out", out)


def test_org_init_keeps_private_files_private_and_publishes_only_public_parts(
    ceremony: Path,
) -> None:
    folder = ceremony / "agency-a"
    for name in PRIVATE_FILES:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    for name in ("", "ca", "node", "node/tls"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o700, name
    public_text = (folder / "public.json").read_text()
    assert "seed" not in public_text and "PRIVATE KEY" not in public_text
    public = json.loads(public_text)
    assert set(public) == {"chain_id", "member", "validator", "peer_address"}
    assert public["validator"]["tls_ca"] == (folder / "ca" / "ca.pem").read_text()
    # The node's certificate comes from the organisation's own CA and names its hosts.
    material = tls.load_tls_material(folder / "node" / "tls")
    assert material.ca_certificate_pem == (folder / "ca" / "ca.pem").read_bytes()
    assert material.node_id == "node-a"
    names = (
        x509.load_pem_x509_certificate(material.certificate_pem)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "node-a.example.org"]
    # An organisation without a node has an identity and public parts only.
    assert sorted(p.name for p in (ceremony / "audit").iterdir()) == [
        "identity.json",
        "public.json",
    ]


def test_the_sealed_genesis_names_every_organisations_ca_and_every_founding_signature(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = seal(capsys, ceremony, sign_all(capsys, ceremony))
    assert code == 0, err
    genesis = parse_genesis((ceremony / "coordinator" / "genesis.json").read_bytes())
    assert [m.member_id for m in genesis.members] == ["agency-a", "agency-b", "audit"]
    assert genesis.tls_ca("node-b") == (ceremony / "agency-b" / "ca" / "ca.pem").read_bytes()
    document = json.loads((ceremony / "coordinator" / "genesis.json").read_text())
    assert [s["member_id"] for s in document["founding_signatures"]] == [
        "agency-a",
        "agency-b",
        "audit",
    ]
    assert len(document["personal_data_patterns"]) >= 3
    peers = json.loads((ceremony / "coordinator" / "peers.json").read_text())
    assert peers == {"node-a": "127.0.0.1:7106", "node-b": "127.0.0.1:7106"}

    bundle = run(
        capsys, "genesis", "ca-bundle", "--genesis", str(ceremony / "coordinator" / "genesis.json")
    )
    assert bundle[0] == 0
    roots = x509.load_pem_x509_certificates(bundle[1].encode())
    assert [r.subject.rfc4514_string() for r in roots] == [
        "CN=agency-a TLS CA,OU=ceremony-unit,O=provledger",
        "CN=agency-b TLS CA,OU=ceremony-unit,O=provledger",
    ]


def test_signing_shows_what_is_signed(ceremony: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "genesis", "sign", "--draft", str(ceremony / "coordinator" / "draft.json"),
        "--identity", str(ceremony / "audit" / "identity.json"),
        "--out", str(ceremony / "audit" / "approval.json"),
    )  # fmt: skip
    assert code == 0, err
    root = (ceremony / "agency-a" / "ca" / "ca.pem").read_bytes()
    for text in (
        f"chain      {CHAIN}",
        "member     agency-b (agency)",
        "validator  node-a",
        tls.ca_fingerprint(root),
    ):
        assert text in out
    draft_hash = json.loads((ceremony / "audit" / "approval.json").read_text())["draft_hash"]
    assert f"draft hash {draft_hash}" in out


def test_a_seal_without_every_founding_members_approval_is_refused(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approvals = sign_all(capsys, ceremony, ORGS[:2])
    code, _, err = seal(capsys, ceremony, approvals)
    assert code == 1
    assert "founding_signature_missing" in err and "audit" in err
    assert not (ceremony / "coordinator" / "genesis.json").exists()


def test_an_approval_of_another_draft_is_refused(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approvals = sign_all(capsys, ceremony)
    draft_path = ceremony / "coordinator" / "draft.json"
    draft = json.loads(draft_path.read_text())
    draft["genesis_time_ms"] += 1  # the coordinator changed the draft after it was signed
    draft_path.write_text(json.dumps(draft))
    code, _, err = seal(capsys, ceremony, approvals)
    assert code == 1
    assert "agency-a's approval is of draft" in err


def test_an_organisation_does_not_sign_a_draft_with_another_ca_in_its_place(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft_path = ceremony / "coordinator" / "draft.json"
    draft = json.loads(draft_path.read_text())
    draft["validators"][0]["tls_ca"] = tls.create_ca(CHAIN, organisation="agency-a")[0].decode()
    draft_path.write_text(json.dumps(draft))
    code, _, err = run(
        capsys, "genesis", "sign", "--draft", str(draft_path),
        "--identity", str(ceremony / "agency-a" / "identity.json"),
        "--out", str(ceremony / "agency-a" / "approval.json"),
    )  # fmt: skip
    assert code == 1
    assert "node-a" in err and "not your public.json's" in err
    assert not (ceremony / "agency-a" / "approval.json").exists()


def test_a_draft_refuses_another_chains_keys_and_private_fields(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publics = [str(ceremony / org / "public.json") for org, _, _ in ORGS]
    out = str(ceremony / "coordinator" / "other.json")
    code, _, err = run(
        capsys,
        "genesis",
        "draft",
        "--chain-id",
        "another-chain",
        *[a for p in publics for a in ("--org", p)],
        "--out",
        out,
    )
    assert code == 1 and "not 'another-chain'" in err
    leaky = json.loads((ceremony / "audit" / "public.json").read_text())
    leaky["member"]["seed"] = "00" * 32
    (ceremony / "audit" / "public.json").write_text(json.dumps(leaky))
    code, _, err = run(
        capsys,
        "genesis",
        "draft",
        "--chain-id",
        CHAIN,
        *[a for p in publics for a in ("--org", p)],
        "--out",
        out,
    )
    assert code == 1 and "is not an organisation's public.json" in err


def test_node_config_copies_the_genesis_and_points_inside_the_organisations_folder(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert seal(capsys, ceremony, sign_all(capsys, ceremony))[0] == 0
    genesis = ceremony / "coordinator" / "genesis.json"
    folder = ceremony / "agency-b"
    ok_json(
        capsys, "org", "node-config", "--dir", str(folder), "--genesis", str(genesis),
        "--peers", str(ceremony / "coordinator" / "peers.json"), "--listen", "127.0.0.1:7201",
        "--peer-listen", "127.0.0.1:7106", "--rest-listen", "127.0.0.1:7301",
    )  # fmt: skip
    assert (folder / "genesis.json").read_bytes() == genesis.read_bytes()
    config = NodeConfig.load(folder / "node" / "config.toml")
    assert config.node_id == "node-b"
    assert config.peers == {"node-a": "127.0.0.1:7106"}
    assert config.genesis_path.resolve() == (folder / "genesis.json").resolve()
    for path in (config.validator_key_path, config.tls_dir, config.grpc_tls_dir, config.data_dir):
        assert path is not None and path.resolve().is_relative_to(folder.resolve())
    assert config.rest_listen == "127.0.0.1:7301"


def test_node_config_refuses_a_genesis_naming_another_ca_for_its_node(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A genesis that names agency-b's CA for agency-a's node, signed by everyone.
    draft_path = ceremony / "coordinator" / "draft.json"
    draft = json.loads(draft_path.read_text())
    draft["validators"][0]["tls_ca"] = draft["validators"][1]["tls_ca"]
    draft_path.write_text(json.dumps(draft))
    for org in ("agency-a", "agency-b"):  # the signers do not compare it with their own
        (ceremony / org / "public.json").rename(ceremony / org / "public.kept")
    approvals = sign_all(capsys, ceremony)
    for org in ("agency-a", "agency-b"):
        (ceremony / org / "public.kept").rename(ceremony / org / "public.json")
    assert seal(capsys, ceremony, approvals)[0] == 0
    code, _, err = run(
        capsys, "org", "node-config", "--dir", str(ceremony / "agency-a"),
        "--genesis", str(ceremony / "coordinator" / "genesis.json"),
        "--peers", str(ceremony / "coordinator" / "peers.json"),
        "--listen", "127.0.0.1:7201", "--peer-listen", "127.0.0.1:7106",
    )  # fmt: skip
    assert code == 1
    assert "the genesis names another TLS CA for node-a" in err
    assert not (ceremony / "agency-a" / "node" / "config.toml").exists()


def test_node_config_of_a_validator_governance_adds_later_needs_joining(
    ceremony: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An organisation that joins after the genesis configures its node with --joining (the
    genesis does not name it); without it the refusal says so; a founding validator given
    --joining is refused."""
    assert seal(capsys, ceremony, sign_all(capsys, ceremony))[0] == 0
    org_init(capsys, ceremony, "agency-late", "agency", "node-late")
    genesis = ceremony / "coordinator" / "genesis.json"
    argv = [
        "org", "node-config", "--genesis", str(genesis),
        "--peers", str(ceremony / "coordinator" / "peers.json"),
        "--listen", "127.0.0.1:7201", "--peer-listen", "127.0.0.1:7106",
    ]  # fmt: skip
    late = ceremony / "agency-late"
    code, _, err = run(capsys, *argv, "--dir", str(late))
    assert code == 1
    assert "does not name node-late" in err and "--joining" in err
    assert not (late / "node" / "config.toml").exists()

    ok_json(capsys, *argv, "--dir", str(late), "--joining")
    config = NodeConfig.load(late / "node" / "config.toml")
    assert config.node_id == "node-late"
    assert config.peers == {"node-a": "127.0.0.1:7106", "node-b": "127.0.0.1:7106"}
    assert (late / "genesis.json").read_bytes() == genesis.read_bytes()

    code, _, err = run(capsys, *argv, "--dir", str(ceremony / "agency-a"), "--joining")
    assert code == 1 and "the genesis names node-a already" in err


def test_ca_bundle_refuses_a_consortium_ca_genesis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(capsys, "consortium", "init", "--dir", str(tmp_path / "c"), "--no-identities")[0] == 0
    )
    code, _, err = run(
        capsys, "genesis", "ca-bundle", "--genesis", str(tmp_path / "c" / "genesis.json")
    )
    assert code == 1 and "consortium CA" in err
