"""The privacy guard (protocol/privacy.py): free text with personal data is refused with
`personal_data`, naming the field and the kind of data but never the data; the genesis sets
the patterns (defaults: PRC resident ID numbers, mobile numbers, e-mail addresses)."""

from __future__ import annotations

import json

import pytest
from support.memory_state import Consortium, digest

from provledger.protocol.errors import Rejected
from provledger.protocol.events import decode
from provledger.protocol.genesis import parse_genesis
from provledger.protocol.privacy import DEFAULT_GUARD, PersonalDataGuard
from provledger.v1 import ledger_pb2

RESIDENT_ID = "11010519491231002X"
MOBILE = "13812345678"
EMAIL = "zhang.san@example.com.cn"


def registered(consortium: Consortium, **fields) -> ledger_pb2.SignedEvent:
    values = {
        "asset_id": "health/records",
        "content_digest": digest("records"),
        "classification": ledger_pb2.CLASSIFICATION_GENERAL,
    }
    values.update(fields)
    return consortium.sign("agency-a", "asset_registered", **values)


def refusal(signed: ledger_pb2.SignedEvent, guard: PersonalDataGuard = DEFAULT_GUARD) -> str:
    with pytest.raises(Rejected) as raised:
        decode(signed, Consortium().chain_id, guard)
    assert raised.value.code == "personal_data"
    return raised.value.reason


@pytest.mark.parametrize(
    ("fields", "where", "kind"),
    [
        ({"name": f"Patient {RESIDENT_ID}, diabetes"}, "asset_registered.name", "prc_resident_id"),
        ({"name": f"call {MOBILE}"}, "asset_registered.name", "mobile_number"),
        ({"name": "call +86 13912345678"}, "asset_registered.name", "mobile_number"),
        ({"metadata": {"contact": EMAIL}}, "asset_registered.metadata['contact']", "email_address"),
        (
            {"asset_id": f"person/{RESIDENT_ID.lower()}"},
            "asset_registered.asset_id",
            "prc_resident_id",
        ),
    ],
)
def test_personal_data_in_any_text_field_is_refused_without_repeating_it(fields, where, kind):
    reason = refusal(registered(Consortium(), **fields))
    assert where in reason and kind in reason
    for secret in (RESIDENT_ID, RESIDENT_ID.lower(), MOBILE, EMAIL, "13912345678"):
        assert secret not in reason


def test_nested_and_repeated_text_is_checked():
    consortium = Consortium()
    grant = consortium.sign(
        "agency-a",
        "grant_issued",
        grant_id="g/1",
        asset_id="health/records",
        grantee_id="agency-b",
        purposes=["research", f"ask {EMAIL}"],
        operations=[ledger_pb2.OPERATION_READ],
        expires_at_ms=2**40,
    )
    assert "grant_issued.purposes[1]" in refusal(grant)


def test_ordinary_provenance_text_passes():
    consortium = Consortium()
    for name in ("Hospital records 2021", "bus trips, 20210301-20210331", "v1.2.3", "ISO 8601"):
        decode(registered(consortium, name=name), consortium.chain_id, DEFAULT_GUARD)


def test_the_genesis_sets_the_patterns():
    consortium = Consortium()
    document = consortium.genesis_document()
    assert parse_genesis(json.dumps(document).encode()).personal_data is DEFAULT_GUARD
    document["personal_data_patterns"] = [{"name": "case_number", "pattern": r"CASE-\d{6}"}]
    custom = parse_genesis(json.dumps(document).encode()).personal_data
    assert "case_number" in refusal(registered(consortium, name="CASE-123456"), custom)
    decode(registered(consortium, name=f"call {MOBILE}"), consortium.chain_id, custom)
    document["personal_data_patterns"] = []
    none = parse_genesis(json.dumps(document).encode()).personal_data
    decode(registered(consortium, name=f"call {MOBILE}"), consortium.chain_id, none)


@pytest.mark.parametrize(
    "patterns",
    [
        "not a list",
        [{"name": "x"}],
        [{"name": "broken", "pattern": "("}],
        [{"name": "", "pattern": "a"}],
        [{"name": f"p{i}", "pattern": "a"} for i in range(65)],
    ],
)
def test_bad_patterns_make_a_bad_genesis(patterns):
    document = Consortium().genesis_document()
    document["personal_data_patterns"] = patterns
    with pytest.raises(Rejected) as raised:
        parse_genesis(json.dumps(document).encode())
    assert raised.value.code == "bad_genesis"
