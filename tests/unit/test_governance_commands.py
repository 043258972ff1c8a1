"""The governance command line builds the changes the rules accept (cli/governance.py), reads
only the public part of a key file, and refuses bad arguments before anything is signed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.memory_state import GENESIS_TIME_MS, Consortium, signing_key

from provledger.cli import governance, main
from provledger.cli.output import CommandError
from provledger.node import tls
from provledger.node.keyfile import save_key
from provledger.protocol import rules_governance
from provledger.v1 import ledger_pb2


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
