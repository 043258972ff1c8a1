"""Governance read over REST (node/rest/) and through node/queries.py, over a real LevelDB store.

A short story is committed block by block the way a node commits it: agency-a proposes to
add agency-c (block 1); agency-b and the exchange approve (block 2); agency-b proposes a role
change for itself that will expire, and a GovernanceAction revokes the exchange's key from
height 2 (block 3); the regulator approves the first proposal, which applies with this fourth
approval (block 4). Every member reads the same governance: the proposals
with their status, approvals and threshold, and each member's keys with their revocations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.memory_state import GENESIS_TIME_MS, Consortium, signing_key

from provledger.node import schema
from provledger.node.queries import LedgerQueries, QueryError
from provledger.node.rest import StoreView, create_app
from provledger.node.store import Store
from provledger.protocol import blocks, rules_governance
from provledger.protocol.access import Reader
from provledger.protocol.limits import PROPOSAL_OPEN_MS_MAX
from provledger.protocol.tokens import issue_token
from provledger.v1 import ledger_pb2

T = GENESIS_TIME_MS
NOW_MS = T + 100_000
QUORUM = ("agency-a", "agency-b", "exchange", "regulator")
ADD_AGENCY_C = ledger_pb2.GovernanceChange(
    proposal_nonce=1,
    member_added=ledger_pb2.MemberAdded(
        member_id="agency-c",
        name="Agency C",
        role=ledger_pb2.ROLE_AGENCY,
        public_key=signing_key("agency-c").public_key,
    ),
)
ROLE_CHANGE = ledger_pb2.GovernanceChange(
    proposal_nonce=2,
    role_changed=ledger_pb2.RoleChanged(member_id="agency-b", role=ledger_pb2.ROLE_EXCHANGE),
)


def _bytes(change: ledger_pb2.GovernanceChange) -> bytes:
    return change.SerializeToString(deterministic=True)


ADD_ID = rules_governance.proposal_id(_bytes(ADD_AGENCY_C)).hex()
ROLE_ID = rules_governance.proposal_id(_bytes(ROLE_CHANGE)).hex()


class Governance:
    def __init__(self, path: Path) -> None:
        self.consortium = c = Consortium()
        self.store = Store(path, c.genesis)
        self.last_commit: ledger_pb2.CommitCertificate | None = None
        self.queries = LedgerQueries(self.store, c.genesis)
        self.client = TestClient(
            create_app(StoreView(self.store, c.genesis, "node-0", lambda: NOW_MS))
        )

    def commit(self, signed: list[ledger_pb2.SignedEvent], time_ms: int) -> None:
        c = self.consortium
        executed = blocks.execute_block(
            state=self.store,
            log=self.store.log,
            tip=self.store.tip,
            chain_id=c.chain_id,
            candidates=[c.decode(s) for s in signed],
            time_ms=time_ms,
            proposer_id=next(iter(c.validator_keys)),
            genesis_validators=c.genesis.validator_set,
            last_commit=self.last_commit,
            strict=True,
        )
        certificate = c.certificate(executed)
        self.store.commit_block(executed, certificate)
        self.last_commit = certificate

    def propose(self, author: str, change: ledger_pb2.GovernanceChange) -> ledger_pb2.SignedEvent:
        return self.consortium.sign(author, "governance_proposed", change=_bytes(change))

    def approve(self, author: str, proposal_id: str) -> ledger_pb2.SignedEvent:
        return self.consortium.sign(
            author, "governance_approved", proposal_id=bytes.fromhex(proposal_id)
        )

    def get(self, path: str, who: str = "agency-a", status: int = 200, **params: Any) -> Any:
        role = "auditor" if who in ("auditor", "regulator") else "member"
        token = issue_token(
            self.consortium[who].key, who, role, self.consortium.chain_id, T, 3_600_000
        )
        response = self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture(scope="module")
def governance(tmp_path_factory: pytest.TempPathFactory) -> Any:
    g = Governance(tmp_path_factory.mktemp("governance") / "store")
    c = g.consortium
    g.commit([g.propose("agency-a", ADD_AGENCY_C)], T + 1_000)
    g.commit([g.approve("agency-b", ADD_ID), g.approve("exchange", ADD_ID)], T + 2_000)
    revocation = ledger_pb2.GovernanceChange(
        proposal_nonce=3,
        key_revoked=ledger_pb2.KeyRevoked(
            member_id="exchange", key_id=c["exchange"].key.key_id, from_height=2, reason="stolen"
        ),
    )
    g.commit(
        [g.propose("agency-b", ROLE_CHANGE), c.govern("agency-a", revocation, QUORUM)], T + 3_000
    )
    g.commit([g.approve("regulator", ADD_ID)], T + 4_000)
    yield g
    g.client.close()
    g.store.close()


def test_a_proposal_reads_with_its_status_approvals_and_threshold(governance):
    one = governance.get("/v1/governance/proposals/one", proposal_id=ADD_ID)
    assert (one["kind"], one["status"], one["proposer_id"]) == (
        "member_added",
        "applied",
        "agency-a",
    )
    assert [a["member_id"] for a in one["approvals"]] == [
        "agency-a",
        "agency-b",
        "exchange",
        "regulator",
    ]
    assert one["applied_height"] == 4
    assert one["change"]["member_added"]["member_id"] == "agency-c"
    assert bytes.fromhex(one["change_raw"]) == _bytes(ADD_AGENCY_C)
    assert one["threshold"] == {"numerator": 2, "denominator": 3}
    # six active members now; the exchange's approval (height 2) was signed before its key was
    # revoked from height 2 on, so it still counts
    assert (one["approvals_counted"], one["approvals_needed"], one["active_members"]) == (4, 5, 6)
    assert one["expires_at_ms"] == T + 1_000 + PROPOSAL_OPEN_MS_MAX


def test_open_proposals_are_listed_for_every_member_alike(governance):
    every = governance.get("/v1/governance/proposals")
    assert [(p["proposal_id"], p["status"]) for p in every["items"]] == [
        (ADD_ID, "applied"),
        (ROLE_ID, "open"),
    ]
    for who in ("agency-b", "auditor", "regulator"):
        assert governance.get("/v1/governance/proposals", who) == every
    opened = governance.get("/v1/governance/proposals", open_only="true")
    assert [p["proposal_id"] for p in opened["items"]] == [ROLE_ID]
    assert opened["items"][0]["approvals_counted"] == 1
    assert opened["more"] is False
    limited = governance.get("/v1/governance/proposals", limit=1)
    assert (len(limited["items"]), limited["more"]) == (1, True)


def test_a_member_reads_with_its_keys_and_revocations(governance):
    member = governance.get("/v1/members", "agency-b", member_id="exchange")
    (key,) = member["keys"]
    assert (member["role"], member["removed"]) == ("exchange", False)
    assert (key["revoked"], key["revoked_after_height"]) == (True, 2)
    assert key["key_id"] == governance.consortium["exchange"].key.key_id.hex()
    assert len(key["revocation_event_id"]) == 64
    fresh = governance.get("/v1/members", member_id="agency-c")["keys"][0]
    assert (fresh["revoked"], fresh["revoked_after_height"]) == (False, None)


def test_governance_errors(governance):
    missing = governance.get("/v1/governance/proposals/one", status=404, proposal_id="00" * 32)
    assert missing["error"] == "unknown_proposal"
    assert (
        governance.get("/v1/members", status=404, member_id="stranger")["error"] == "unknown_member"
    )
    bad = governance.get("/v1/governance/proposals/one", status=422, proposal_id="xyz")
    assert bad["error"]
    for path in ("/v1/governance/proposals", "/v1/members?member_id=agency-a"):
        assert governance.client.get(path).json()["error"] == "missing_token"
    # the revoked key reads nothing
    assert governance.get("/v1/members", "exchange", 401, member_id="exchange")["error"] == (
        "token_key_revoked"
    )


def test_proposals_expire_out_of_the_open_list(governance):
    queries: LedgerQueries = governance.queries
    reader = Reader("agency-a", "member")
    answer = queries.require_proposal(reader, bytes.fromhex(ROLE_ID))
    assert answer.status == "open"
    assert (answer.approvals_counted, answer.approvals_needed) == (1, 5)
    with pytest.raises(QueryError) as raised:
        queries.require_proposal(reader, bytes(32))
    assert (raised.value.kind, raised.value.code) == ("not_found", "unknown_proposal")


def test_the_proposals_index_is_ordered_by_block_time():
    early = schema.proposal_by_time_key(5, bytes(32))
    late = schema.proposal_by_time_key(6, bytes(32))
    assert schema.proposals_from(5) <= early < late < schema.PROPOSALS_END
    assert schema.proposal_id_of_key(late) == bytes(32)
    assert "proposal " + "00" * 32 in schema.describe_key(late)
