"""The core's judgements, each in its one home: the grant judgement (protocol/authorization.py),
what an event concerns (protocol/concerns.py), the lineage traversal (protocol/lineage.py) and
the access policy (protocol/access.py), over small in-memory readers.

The interfaces that call them (REST, gRPC, bundles, the rules) are tested elsewhere; these
tests pin the judgements themselves, so a change to one shows here first.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provledger.protocol import access, authorization, concerns, lineage
from provledger.v1 import ledger_pb2, state_pb2

READ = ledger_pb2.OPERATION_READ
DERIVE = ledger_pb2.OPERATION_DERIVE
EXPIRY_MS = 10_000


def grant(**fields) -> ledger_pb2.GrantIssued:
    values = {
        "grant_id": "g",
        "asset_id": "a",
        "grantee_id": "b",
        "purposes": ["research"],
        "operations": [READ],
        "expires_at_ms": EXPIRY_MS,
    }
    values.update(fields)
    return ledger_pb2.GrantIssued(**values)


def failure(issued: ledger_pb2.GrantIssued, **question) -> str | None:
    asked = {
        "grantee_id": "b",
        "asset_id": "a",
        "operation": READ,
        "purpose": "research",
        "at_ms": 5_000,
    }
    asked.update(question)
    found = authorization.grant_failure("g", issued, **asked)
    return None if found is None else found.code


# --- the grant judgement ---------------------------------------------------------------------


def test_a_grant_covers_what_it_names_until_it_expires():
    assert failure(grant()) is None
    assert failure(grant(), at_ms=EXPIRY_MS - 1) is None
    assert failure(grant(), at_ms=EXPIRY_MS) == "grant_expired"
    assert failure(grant(), purpose=None) is None  # a share or derivation names no purpose


@pytest.mark.parametrize(
    ("question", "code"),
    [
        ({"grantee_id": "c"}, "grant_not_held"),
        ({"asset_id": "other"}, "grant_wrong_asset"),
        ({"purpose": "marketing"}, "purpose_not_granted"),
        ({"operation": DERIVE}, "operation_not_granted"),
        ({"issued_at_ms": 6_000}, "grant_not_yet_issued"),
        ({"revoked_at_ms": 5_000}, "grant_revoked"),
        ({"at_ms": EXPIRY_MS + 1}, "grant_expired"),
    ],
)
def test_each_way_a_grant_fails_has_its_code(question, code):
    assert failure(grant(), **question) == code


def test_a_revocation_after_the_time_does_not_count():
    assert failure(grant(), revoked_at_ms=5_001) is None


def test_the_first_failure_from_least_to_most_specific_is_the_answer():
    """One order, used by the rules and by the auditor's question alike."""
    assert failure(grant(), purpose="marketing", revoked_at_ms=1) == "purpose_not_granted"
    assert failure(grant(), operation=DERIVE, at_ms=EXPIRY_MS) == "operation_not_granted"
    assert failure(grant(), issued_at_ms=6_000, revoked_at_ms=5_000) == "grant_not_yet_issued"
    assert failure(grant(), revoked_at_ms=1, at_ms=EXPIRY_MS) == "grant_revoked"


def entry(index: int, time_ms: int, author: str, **payload) -> authorization.HistoryEntry:
    event = ledger_pb2.Event(author=ledger_pb2.Author(member_id=author), **payload)
    return authorization.HistoryEntry(event, index, time_ms, ref=index)


def registered(index: int = 0, time_ms: int = 1_000) -> authorization.HistoryEntry:
    return entry(
        index, time_ms, "a-owner", asset_registered=ledger_pb2.AssetRegistered(asset_id="a")
    )


def issued(index: int, time_ms: int, **fields) -> authorization.HistoryEntry:
    return entry(index, time_ms, "a-owner", grant_issued=grant(**fields))


def revoked(index: int, time_ms: int, grant_id: str = "g") -> authorization.HistoryEntry:
    return entry(
        index, time_ms, "a-owner", grant_revoked=ledger_pb2.GrantRevoked(grant_id=grant_id)
    )


def judge(history: Iterable[authorization.HistoryEntry], **asked) -> authorization.Judgement:
    question = {"member_id": "b", "asset_id": "a", "purpose": "research", "operation": READ}
    question.update(asked)
    question.setdefault("at_ms", 5_000)
    return authorization.judge_use(history, authorization.UseQuestion(**question))


def test_the_question_over_history_names_its_deciding_events_in_log_order():
    granted = judge([registered(0), issued(1, 2_000)])
    assert (granted.code, granted.grant_id, granted.authorised) == ("granted", "g", True)
    assert granted.deciding == [("registered", 0), ("grant_issued", 1)]
    owner = judge([registered(0)], member_id="a-owner")
    assert (owner.code, owner.deciding) == ("owner", [("registered", 0)])
    nothing = judge([registered(0)])
    assert (nothing.code, nothing.authorised) == ("no_grant", False)


def test_the_closest_grant_explains_a_refusal():
    history = [
        registered(0),
        issued(1, 2_000, grant_id="g", purposes=["marketing"]),
        issued(2, 2_000, grant_id="h"),
        revoked(3, 3_000, grant_id="h"),
    ]
    refused = judge(history)
    assert refused.code == "grant_revoked" and refused.grant_id is None
    assert refused.deciding == [
        ("registered", 0),
        ("grant_issued", 1),
        ("grant_issued", 2),
        ("grant_revoked", 3),
    ]
    before_the_revocation = judge(history, at_ms=2_500)
    assert (before_the_revocation.code, before_the_revocation.grant_id) == ("granted", "h")


def test_nothing_is_authorised_before_registration_or_after_retirement():
    assert judge([registered(0, time_ms=6_000)]).code == "asset_not_registered"
    retired = entry(2, 4_000, "a-owner", asset_retired=ledger_pb2.AssetRetired(asset_id="a"))
    assert judge([registered(0), issued(1, 2_000), retired]).code == "asset_retired"


# --- what an event concerns --------------------------------------------------------------------


class Records(dict):
    """(kind, id) -> record: the smallest reader."""

    def load(self, kind: str, record_id: str):
        return self.get((kind, record_id))


def trade_records() -> Records:
    return Records(
        {
            ("offer", "o1"): state_pb2.OfferRecord(
                offer=ledger_pb2.OfferListed(offer_id="o1", asset_id="a", seller_id="s"),
                exchange_id="x",
            ),
            ("order", "r1"): state_pb2.OrderRecord(
                order_id="r1", offer_id="o1", buyer_id="b", seller_id="s", exchange_id="x"
            ),
            ("dispute", "d1"): state_pb2.DisputeRecord(dispute_id="d1", order_id="r1"),
            ("grant", "g"): state_pb2.GrantRecord(grant=grant()),
        }
    )


@pytest.mark.parametrize(
    ("kind", "payload", "assets", "members"),
    [
        (
            "asset_derived",
            ledger_pb2.AssetDerived(asset_id="c", parent_ids=["p", "q"]),
            ("c", "p", "q"),
            (),
        ),
        ("asset_shared", ledger_pb2.AssetShared(asset_id="a", recipient_id="r"), ("a",), ("r",)),
        ("grant_issued", grant(), ("a",), ("b",)),
        ("grant_revoked", ledger_pb2.GrantRevoked(grant_id="g"), ("a",), ()),
        (
            "order_placed",
            ledger_pb2.OrderPlaced(order_id="r1", offer_id="o1"),
            ("a",),
            ("b", "s", "x"),
        ),
        ("dispute_resolved", ledger_pb2.DisputeResolved(dispute_id="d1"), ("a",), ("b", "s", "x")),
    ],
)
def test_what_each_kind_of_event_concerns(kind, payload, assets, members):
    about = concerns.concerns(kind, payload, trade_records().load)
    assert (about.assets, about.members) == (assets, members)


def test_a_derivation_adds_an_edge_from_each_parent_and_governance_concerns_everyone():
    derived = ledger_pb2.AssetDerived(asset_id="c", parent_ids=["p", "q"])
    assert concerns.concerns("asset_derived", derived, Records().load).lineage_edges == (
        ("p", "c"),
        ("q", "c"),
    )
    about = concerns.concerns("asset_derived", derived, Records().load)
    assert about.assets == ("c", "p", "q") and about.readable_through == ("c",)
    assert concerns.concerns("governance", ledger_pb2.GovernanceAction(), Records().load).everyone


# --- the lineage traversal -------------------------------------------------------------------


class Graph:
    """Assets and (parent, child) edges in memory, read as the store reads them."""

    def __init__(self, edges: Iterable[tuple[str, str]], extra: Iterable[str] = ()) -> None:
        self.edges = sorted(set(edges))
        names = {n for edge in self.edges for n in edge} | set(extra)
        self.assets = {n: state_pb2.AssetRecord(asset_id=n, owner_id="o") for n in names}

    def load(self, kind: str, record_id: str):
        return self.assets.get(record_id) if kind == "asset" else None

    def lineage_neighbours(self, asset_id: str, upstream: bool) -> list[str]:
        if upstream:
            return sorted(p for p, c in self.edges if c == asset_id)
        return sorted(c for p, c in self.edges if p == asset_id)


def walk(graph: Graph, root: str, limit: int, depth: int = 64, total_max: int = 1_000):
    pages, offset = [], 0
    while True:
        query = lineage.LineageQuery(root, True, depth, limit, total_max, offset)
        page = lineage.lineage_page(graph, query)
        pages.append(page)
        if page.next_offset is None:
            return pages
        offset = page.next_offset


DAGS = st.lists(
    st.tuples(st.integers(0, 11), st.integers(0, 11)).filter(lambda e: e[0] < e[1]),
    max_size=30,
).map(lambda edges: Graph([(f"n{p:02}", f"n{c:02}") for p, c in edges], extra=["n11"]))


@settings(max_examples=150, deadline=None)
@given(graph=DAGS, limit=st.integers(1, 5))
def test_pages_hold_every_upstream_node_and_edge_once(graph, limit):
    whole = lineage.lineage_page(graph, lineage.LineageQuery("n11", True, 64, 1_000, 1_000))
    pages = walk(graph, "n11", limit)
    nodes = [a.asset_id for page in pages for a in page.assets]
    edges = [edge for page in pages for edge in page.edges]
    assert nodes == [a.asset_id for a in whole.assets]
    assert len(nodes) == len(set(nodes)) and sorted(edges) == sorted(set(edges))
    assert sorted(edges) == sorted(whole.edges)
    reached = set(nodes)
    assert set(edges) == {(p, c) for p, c in graph.edges if c in reached}
    assert whole.complete and whole.closed().edges == whole.edges


def test_depth_and_size_limits_say_they_cut():
    chain = Graph([("a", "b"), ("b", "c"), ("c", "d")])
    cut = lineage.lineage_page(chain, lineage.LineageQuery("d", True, 1, 10, 10))
    assert [a.asset_id for a in cut.assets] == ["d", "c"] and cut.truncated
    capped = lineage.lineage_page(chain, lineage.LineageQuery("d", True, 10, 2, 2))
    assert [a.asset_id for a in capped.assets] == ["d", "c"] and capped.truncated
    assert capped.closed().edges == [("c", "d")]
    missing = lineage.lineage_page(chain, lineage.LineageQuery("zz", True, 10, 2, 2))
    assert missing.assets == [] and missing.complete


# --- the access policy -----------------------------------------------------------------------


class Ledger(Records):
    def event(self, event_identifier: bytes):
        return self.get(("event", event_identifier))

    def grants_of_asset(self, asset_id, after_grant_id, limit):
        found = sorted(
            (
                r
                for (kind, _), r in self.items()
                if kind == "grant" and r.grant.asset_id == asset_id
            ),
            key=lambda r: r.grant.grant_id,
        )
        if after_grant_id is not None:
            found = [r for r in found if r.grant.grant_id > after_grant_id]
        return found[:limit], len(found) > limit


def policy_ledger() -> Ledger:
    ledger = Ledger(trade_records())
    ledger[("asset", "a")] = state_pb2.AssetRecord(
        asset_id="a",
        owner_id="owner",
        name="secret name",
        content_digest=b"\x01" * 32,
        holder_ids=["holder"],
        origin_event_id=b"\x02" * 32,
        parent_ids=["p"],
        activity="fusion",
    )
    return ledger


@pytest.mark.parametrize(
    ("member", "sees"),
    [("owner", True), ("holder", True), ("b", True), ("s", False), ("nobody", False)],
)
def test_who_sees_an_asset(member, sees):
    ledger = policy_ledger()
    reader = access.Reader(member, "member")
    assert access.sees_asset(ledger, reader, ledger.load("asset", "a")) is sees
    shown, redacted = access.redact_asset(ledger, reader, ledger.load("asset", "a"))
    assert redacted is not sees
    if redacted:
        assert (
            shown.name,
            shown.content_digest,
            list(shown.holder_ids),
            shown.origin_event_id,
        ) == ("", b"", [], b"")
        assert (shown.asset_id, shown.owner_id, list(shown.parent_ids), shown.activity) == (
            "a",
            "owner",
            ["p"],
            "fusion",
        )


def test_an_auditor_sees_everything_and_an_order_concerns_its_parties_and_asset_owner():
    ledger = policy_ledger()
    order = ledger.load("order", "r1")
    assert access.sees_order(ledger, access.Reader("anyone", "auditor"), order)
    for member in ("b", "s", "x", "owner"):
        assert access.sees_order(ledger, access.Reader(member, "member"), order)
    assert not access.sees_order(ledger, access.Reader("holder", "member"), order)
