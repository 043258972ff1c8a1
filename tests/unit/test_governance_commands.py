"""The governance command line builds the changes the rules accept (cli/governance.py), reads
only the public part of a key file, and refuses bad arguments before anything is signed. A
validator-set change is not proposed but drafted, signed by each member and submitted as one
action; a forged approval, or one of another chain or change, is refused before submitting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, signing_key

from provledger.cli import governance, governance_offline, main
from provledger.cli.output import CommandError
from provledger.node import tls
from provledger.node.keyfile import save_key
from provledger.protocol import rules, rules_governance, validators
from provledger.protocol.validators import ValidatorContext
from provledger.v1 import api_pb2, ledger_pb2


def parse(*argv: str):
    return main.build_parser().parse_args(["governance", "propose", *argv])


def change_of(*argv: str) -> ledger_pb2.GovernanceChange:
    return ledger_pb2.GovernanceChange.FromString(governance.build_change(parse(*argv), nonce=7))


def test_every_change_kind_of_the_schema_has_its_kind_on_the_command_line():
    assert {kind.field for kind in governance.KINDS.values()} == set(rules_governance.CHANGE_KINDS)


def test_validator_changes_are_built_from_a_public_key():
    key = signing_key("node-4")
    added = change_of(
        "add-validator", "--validator-id", "node-4", "--public-key", key.public_key.hex()
    )
    assert added.validator_added == ledger_pb2.ValidatorAdded(
        validator_id="node-4", public_key=key.public_key
    )
    removed = change_of("remove-validator", "--validator-id", "node-3")
    assert removed.validator_removed.validator_id == "node-3"


def test_a_validator_of_an_organisation_with_its_own_ca_is_added_with_the_ca_root(
    tmp_path: Path,
):
    root, ca_key = tls.create_ca("provledger-test", organisation="org-w")
    (tmp_path / "ca.pem").write_bytes(root)
    key = signing_key("node-4").public_key.hex()
    added = change_of(
        "add-validator", "--validator-id", "node-4", "--public-key", key,
        "--tls-ca", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    assert added.validator_added.tls_ca == root
    replaced = change_of(
        "replace-tls-ca", "--validator-id", "node-4", "--tls-ca", str(tmp_path / "ca.pem")
    )
    assert replaced.tls_ca_replaced == ledger_pb2.TlsCaReplaced(validator_id="node-4", tls_ca=root)
    # A node certificate, or a missing file, is refused before anything is signed.
    (tmp_path / "node.pem").write_bytes(tls.issue_node_certificate(root, ca_key, "node-4")[0])
    for path in (tmp_path / "node.pem", tmp_path / "missing.pem"):
        with pytest.raises(CommandError, match="--tls-ca"):
            change_of("replace-tls-ca", "--validator-id", "node-4", "--tls-ca", str(path))


def test_add_member_reads_only_the_public_part_of_a_key_file(tmp_path: Path):
    key = signing_key("agency-c")
    path = tmp_path / "agency-c.json"
    save_key(path, key, member_id="agency-c")
    change = change_of(
        "add-member", "--member-id", "agency-c", "--role", "agency", "--public-key", str(path)
    )
    assert change.proposal_nonce == 7
    assert change.member_added == ledger_pb2.MemberAdded(
        member_id="agency-c",
        name="agency-c",
        role=ledger_pb2.ROLE_AGENCY,
        public_key=key.public_key,
    )
    # the same with the hex that `keys public` prints
    by_hex = change_of(
        "add-member",
        "--member-id",
        "agency-c",
        "--role",
        "agency",
        "--public-key",
        key.public_key.hex(),
    )
    assert by_hex == change
    # a file without a public key is refused, and its contents are not echoed
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"seed": "ab" * 32}))
    with pytest.raises(CommandError) as raised:
        change_of("add-member", "--member-id", "x", "--role", "agency", "--public-key", str(secret))
    assert "ab" * 32 not in str(raised.value)


def test_the_changes_the_command_line_builds_are_applied_by_the_rules():
    c = Consortium()
    state = c.state()
    b_key = c["agency-b"].key
    for argv in (
        (
            "rotate-key",
            "--member-id",
            "agency-b",
            "--new-public-key",
            signing_key("b2").public_key.hex(),
        ),
        (
            "revoke-key",
            "--member-id",
            "agency-b",
            "--key-id",
            b_key.key_id.hex(),
            "--from-height",
            "4",
            "--reason",
            "lost",
        ),
        ("change-role", "--member-id", "exchange", "--role", "regulator"),
        ("change-thresholds", "--default", "3/4", "--kind", "member_removed=1/2"),
        ("remove-member", "--member-id", "exchange"),
    ):
        change = ledger_pb2.GovernanceChange.FromString(governance.build_change(parse(*argv)))
        signed = c.sign(
            "agency-a", "governance_proposed", change=change.SerializeToString(deterministic=True)
        )
        c.apply(state, signed, GENESIS_TIME_MS + 1_000)
        for approver in ("agency-b", "exchange", "regulator", "auditor"):
            record = state.load(
                "proposal", rules_governance.proposal_id(signed_change(c, signed)).hex()
            )
            if record.applied:
                break
            identifier = record.proposal_id
            c.apply(
                state,
                c.sign(approver, "governance_approved", proposal_id=identifier),
                GENESIS_TIME_MS + 1_000,
            )
        assert state.load(
            "proposal", rules_governance.proposal_id(signed_change(c, signed)).hex()
        ).applied, argv
    assert state.load("member", "exchange").removed
    assert state.load("thresholds", "current").by_kind["member_removed"].denominator == 2


def signed_change(c: Consortium, signed: ledger_pb2.SignedEvent) -> bytes:
    return c.decode(signed).event.governance_proposed.change


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ("revoke-key", "--member-id", "a", "--key-id", "abcd", "--from-height", "1"),
            "a key id is 16 bytes",
        ),
        (
            ("revoke-key", "--member-id", "a", "--key-id", "00" * 16, "--from-height", "-1"),
            "--from-height",
        ),
        (
            ("change-thresholds", "--default", "two thirds"),
            'a threshold is a fraction such as "2/3"',
        ),
        (
            ("change-thresholds", "--default", "2/3", "--kind", "teleport=2/3"),
            "--kind takes KIND=N/D",
        ),
        (
            ("add-member", "--member-id", "x", "--role", "agency", "--public-key", "00"),
            "a public key is 32 bytes",
        ),
        (
            ("add-member", "--member-id", "x", "--role", "agency", "--public-key", "zz"),
            "must be hex",
        ),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_signed(argv, fragment):
    with pytest.raises(CommandError) as raised:
        governance.build_change(parse(*argv))
    assert fragment in str(raised.value)


def test_keys_public_prints_the_public_part_only(tmp_path: Path, capsys):
    key = signing_key("org")
    path = tmp_path / "org.json"
    save_key(path, key)
    assert main.main(["keys", "public", "--key", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"public_key": key.public_key.hex(), "key_id": key.key_id.hex()}


# --- off the ledger: draft, sign, submit -------------------------------------------------------


class FakeNode:
    """Stands in for the node `governance submit` reaches: records what it was sent."""

    def __init__(self) -> None:
        self.submitted: list[ledger_pb2.SignedEvent] = []

    def __enter__(self) -> FakeNode:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def submit_and_wait(self, signed: ledger_pb2.SignedEvent) -> api_pb2.Receipt:
        self.submitted.append(signed)
        return api_pb2.Receipt(event_id=b"\x01" * 32, height=9, log_index=12)


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> FakeNode:
    fake = FakeNode()
    monkeypatch.setattr(governance_offline, "client_for", lambda args: fake)
    return fake


def identity_file(c: Consortium, folder: Path, member_id: str, chain_id: str = "") -> Path:
    """`member_id`'s identity file in its own folder."""
    path = folder / member_id / "identity.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_key(path, c[member_id].key, member_id=member_id, chain_id=chain_id or c.chain_id)
    return path


def run(capsys, *argv: str) -> dict:
    assert main.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def fails(capsys, *argv: str) -> str:
    assert main.main(list(argv)) == 1
    return capsys.readouterr().err


def test_a_validator_change_is_drafted_signed_by_each_member_and_submitted_as_one_action(
    tmp_path: Path, capsys, node: FakeNode
):
    c = Consortium()
    key = signing_key("validator-4")
    drafted = run(
        capsys, "governance", "draft", "add-validator", "--validator-id", "validator-4",
        "--public-key", key.public_key.hex(), "--identity",
        str(identity_file(c, tmp_path, "agency-a")), "--out", str(tmp_path / "change.json"),
    )  # fmt: skip
    change = bytes.fromhex(drafted["change"])
    assert drafted["chain_id"] == c.chain_id
    assert drafted["kind"] == "validator_added"
    assert drafted["proposal_id"] == rules_governance.proposal_id(change).hex()
    assert drafted["summary"]["validator_id"] == "validator-4"
    assert drafted["summary"]["public_key"] == key.public_key.hex()
    assert json.loads((tmp_path / "change.json").read_text()) == drafted
    assert node.submitted == []  # a draft submits nothing
    # Each member signs in its own folder; the change file is what travels.
    approvals = []
    for member_id in ("agency-b", "exchange", "regulator", "auditor"):
        identity = identity_file(c, tmp_path, member_id)
        out = identity.parent / "approval.json"
        signed = run(
            capsys, "governance", "sign", str(tmp_path / "change.json"),
            "--identity", str(identity), "--out", str(out),
        )  # fmt: skip
        assert signed["summary"] == drafted["summary"]  # what is signed is shown
        assert signed["member_id"] == member_id
        assert "seed" not in out.read_text()
        approvals += ["--approval", str(out)]
    submitted = run(
        capsys, "governance", "submit", str(tmp_path / "change.json"), *approvals,
        "--identity", str(tmp_path / "agency-a" / "identity.json"), "--plaintext",
    )  # fmt: skip
    assert (submitted["height"], submitted["kind"]) == (9, "validator_added")
    assert submitted["approvers"] == ["agency-b", "exchange", "regulator", "auditor"]
    # The one event is a GovernanceAction the rules apply, with its block's validators.
    (event,) = node.submitted
    decoded = c.decode(event)
    assert decoded.kind == "governance"
    assert decoded.event.governance.change == change
    state = c.state()
    context = ValidatorContext(c.genesis.validator_set, 5)
    writes = rules.apply_event(state, decoded, GENESIS_TIME_MS, height=5, validator_context=context)
    assert "validators" in [w.kind for w in writes]


def test_sign_shows_the_change_from_its_bytes_and_refuses_another_chains_change(
    tmp_path: Path, capsys
):
    c = Consortium()
    run(
        capsys, "governance", "draft", "remove-validator", "--validator-id", "validator-3",
        "--chain-id", "another-chain", "--out", str(tmp_path / "change.json"),
    )  # fmt: skip
    identity = identity_file(c, tmp_path, "agency-b")
    error = fails(
        capsys, "governance", "sign", str(tmp_path / "change.json"),
        "--identity", str(identity), "--out", str(tmp_path / "approval.json"),
    )  # fmt: skip
    assert "the change is for chain 'another-chain'" in error
    assert not (tmp_path / "approval.json").exists()
    # A change file whose kind or id was edited is refused; a summary edited is not believed.
    document = json.loads((tmp_path / "change.json").read_text())
    document["chain_id"] = c.chain_id
    document["summary"]["validator_id"] = "validator-0"
    (tmp_path / "edited.json").write_text(json.dumps(document))
    signed = run(
        capsys, "governance", "sign", str(tmp_path / "edited.json"),
        "--identity", str(identity), "--out", str(tmp_path / "approval.json"),
    )  # fmt: skip
    assert signed["summary"]["validator_id"] == "validator-3"
    document["kind"] = "validator_added"
    (tmp_path / "edited.json").write_text(json.dumps(document))
    error = fails(
        capsys, "governance", "sign", str(tmp_path / "edited.json"),
        "--identity", str(identity), "--out", str(tmp_path / "approval.json"),
    )  # fmt: skip
    assert "its kind or proposal id is not its change's" in error


def test_forged_and_other_chain_approvals_are_refused_before_submitting(
    tmp_path: Path, capsys, node: FakeNode
):
    c = Consortium()
    submitter = identity_file(c, tmp_path, "agency-a")
    run(
        capsys, "governance", "draft", "remove-validator", "--validator-id", "validator-3",
        "--identity", str(submitter), "--out", str(tmp_path / "change.json"),
    )  # fmt: skip
    change = bytes.fromhex(json.loads((tmp_path / "change.json").read_text())["change"])
    good = []
    for member_id in ("agency-b", "exchange", "regulator"):
        out = tmp_path / member_id / "approval.json"
        run(
            capsys, "governance", "sign", str(tmp_path / "change.json"),
            "--identity", str(identity_file(c, tmp_path, member_id)), "--out", str(out),
        )  # fmt: skip
        good.append(out)
    approval = json.loads(good[0].read_text())
    forged = {**approval, "signature": c["auditor"].key.sign(b"x", b"y").hex()}
    other_chain = {
        **approval,
        "signature": rules_governance.sign_approval(
            c["agency-b"].key, "another-chain", change
        ).hex(),
    }
    relabelled = {**other_chain, "chain_id": "another-chain"}
    other_change = {**approval, "proposal_id": "00" * 32}
    someone_elses_key = {**approval, "public_key": c["auditor"].key.public_key.hex()}
    cases = (
        (forged, "agency-b's signature does not verify over this change"),
        (other_chain, "agency-b's signature does not verify over this change"),
        (relabelled, "approves a change on chain 'another-chain'"),
        (other_change, "approves another change"),
        (someone_elses_key, "its key id is not its public key's"),
        (approval, "a member approved twice"),
    )
    for document, fragment in cases:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(document))
        error = fails(
            capsys, "governance", "submit", str(tmp_path / "change.json"),
            *[f"--approval={path}" for path in (*good, bad)],
            "--identity", str(submitter), "--plaintext",
        )  # fmt: skip
        assert fragment in error, (fragment, error)
    assert node.submitted == []
    # The same approvals, none forged, are submitted.
    run(
        capsys, "governance", "submit", str(tmp_path / "change.json"),
        *[f"--approval={path}" for path in good], "--identity", str(submitter), "--plaintext",
    )  # fmt: skip
    assert len(node.submitted) == 1


@pytest.mark.parametrize("kind", sorted(governance.ACTION_ONLY))
def test_a_validator_change_is_not_proposed_but_drafted_signed_and_submitted(
    kind: str, tmp_path: Path, capsys, node: FakeNode
):
    assert {governance.KINDS[name].field for name in governance.ACTION_ONLY} == set(
        validators.CHANGE_KINDS
    )
    c = Consortium()
    root, _ = tls.create_ca("provledger-test", organisation="org-w")
    (tmp_path / "ca.pem").write_bytes(root)
    arguments = {
        "add-validator": ("--public-key", signing_key("validator-4").public_key.hex()),
        "remove-validator": (),
        "replace-tls-ca": ("--tls-ca", str(tmp_path / "ca.pem")),
    }[kind]
    error = fails(
        capsys, "governance", "propose", kind, "--validator-id", "validator-4", *arguments,
        "--identity", str(identity_file(c, tmp_path, "agency-a")), "--plaintext",
    )  # fmt: skip
    assert f"a {kind} change is not proposed on the ledger" in error
    assert "governance draft" in error and "governance sign" in error
    assert "governance submit" in error
    assert node.submitted == []
