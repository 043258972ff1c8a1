"""`provledger evidence export` and `provledger verify`: evidence bundles for auditors.

`export` saves a bundle built by a node's REST API (--rest, with a bearer token) or from a
stopped node's LevelDB folder (--data-dir); given the genesis it verifies the bundle first and
never writes one that does not verify. `verify` checks a bundle offline against the genesis
alone (protocol/evidence.py) and prints what it proves (`summary_lines`; a case file as a
timeline a judge can read, rendered from the verified events in protocol/case_timeline.py's
words, which are presentation: `--json` prints the structured claims); given a proof of a fork
(`provledger audit watch`), it checks that instead (protocol/fork_proof.py) and prints the two
blocks and who signed both (`fork_lines`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from provledger.cli.output import CommandError, emit, load_genesis, parse_hex
from provledger.protocol.case_timeline import remedy_words
from provledger.protocol.evidence import SUBJECT_FIELDS, BundleError, VerifiedBundle, verify_bundle
from provledger.protocol.evidence_case import case_timeline
from provledger.protocol.fork_proof import ForkProofError, VerifiedFork, verify_fork_proof
from provledger.protocol.genesis import Genesis
from provledger.protocol.limits import BUNDLE_SIZE_BYTES_MAX

REST_TIMEOUT_S = 120
REST_ERROR_BYTES_MAX = 64 * 1024


def cmd_evidence_export(args: argparse.Namespace) -> None:
    kind = next(k for k in SUBJECT_FIELDS if getattr(args, k) is not None)
    subject = getattr(args, kind)
    genesis = load_genesis(args.genesis) if args.genesis else None
    if args.data_dir is not None:
        if genesis is None:
            raise CommandError("--data-dir needs --genesis, the chain's genesis file")
        data = _bundle_from_data_dir(Path(args.data_dir), genesis, kind, subject)
    else:
        data = _bundle_from_rest(args.rest, args.token, kind, subject)
    if genesis is not None:  # never write a bundle that does not verify
        _verify_bundle(data, genesis, "the exported bundle")
    out = Path(args.out)
    try:
        out.write_bytes(data)
    except OSError as error:
        raise CommandError(f"cannot write {out}: {error}") from None
    checked = "verified against the genesis" if genesis is not None else "not verified"
    emit(
        args,
        {"path": str(out), "bytes": len(data), "kind": kind, "subject": subject,
         "verified": genesis is not None},
        f"wrote {kind} evidence for {subject} to {out} ({len(data)} bytes, {checked})",
    )  # fmt: skip


def cmd_verify(args: argparse.Namespace) -> None:
    genesis = load_genesis(args.genesis)
    try:
        data = Path(args.bundle).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.bundle}: {error}") from None
    if _FORK_FORMAT_FIELD in data:  # a proof of a fork (`provledger audit watch`)
        try:
            fork = verify_fork_proof(data, genesis)
        except ForkProofError as error:
            raise CommandError(
                f"fork proof does NOT verify: {error.reason} [{error.code}]"
            ) from None
        emit(args, fork.to_json(), "\n".join(fork_lines(fork)))
        return
    verified = _verify_bundle(data, genesis, "bundle")
    emit(args, verified.to_json(), "\n".join(summary_lines(verified)))


# Canonical JSON spells a fork proof's format field exactly so, whatever its version (an
# unsupported one is refused by verify_fork_proof, with its code); inside a bundle's strings
# the quotes would be escaped, so no evidence bundle holds these bytes.
_FORK_FORMAT_FIELD = b'"format":"provledger-fork/'


def _bundle_from_data_dir(data_dir: Path, genesis: Genesis, kind: str, subject: str) -> bytes:
    """Build the bundle from a stopped node's LevelDB folder."""
    # Imported here: only this way of exporting opens a node's database.
    import plyvel

    from provledger.node import bundles
    from provledger.node.store import Store, StoreError

    if not (data_dir / "CURRENT").is_file():
        raise CommandError(f"{data_dir} holds no ledger database (give a node's data folder)")
    try:
        store = Store(data_dir, genesis, create=False)
    except StoreError as error:
        raise CommandError(str(error)) from None
    except plyvel.Error as error:
        raise CommandError(
            f"cannot open the database in {data_dir} ({error}); is its node running? Stop it, "
            "or export over --rest"
        ) from None
    try:
        if kind == "event":
            identifier = parse_hex(subject, "event id")
            if len(identifier) != 32:
                raise CommandError("an event id is 32 bytes (64 hex digits)")
            return bundles.event_bundle(store, genesis, identifier)
        builders = {
            "lineage": bundles.lineage_bundle,
            "trade": bundles.trade_bundle,
            "case": bundles.case_bundle,
        }
        return builders[kind](store, genesis, subject)
    except bundles.BundleBuildError as error:
        raise CommandError(error.reason) from None
    finally:
        store.close()


def _bundle_from_rest(base_url: str, token: str | None, kind: str, subject: str) -> bytes:
    """Fetch the bundle from a node's auditor REST API."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CommandError(f"--rest takes a URL such as http://127.0.0.1:7250, got {base_url!r}")
    if not token:
        raise CommandError("--rest needs --token (or PROVLEDGER_TOKEN): provledger token issue")
    query = urllib.parse.urlencode({SUBJECT_FIELDS[kind]: subject})
    url = f"{base_url.rstrip('/')}/v1/evidence/{kind}?{query}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=REST_TIMEOUT_S) as response:
            data = response.read(BUNDLE_SIZE_BYTES_MAX + 1)
    except urllib.error.HTTPError as error:
        raise CommandError(f"the node answered HTTP {error.code}: {_rest_error(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CommandError(f"cannot reach {base_url}: {reason}") from None
    if len(data) > BUNDLE_SIZE_BYTES_MAX:
        raise CommandError(f"the node's answer exceeds {BUNDLE_SIZE_BYTES_MAX} bytes")
    return data


def _rest_error(error: urllib.error.HTTPError) -> str:
    """The `error: reason` of a REST error response, or the start of its body."""
    try:
        body = error.read(REST_ERROR_BYTES_MAX)
        document = json.loads(body)
        return f"{document['error']}: {document['reason']}"
    except Exception:
        return str(error.reason)


def _verify_bundle(data: bytes, genesis: Genesis, what: str) -> VerifiedBundle:
    try:
        return verify_bundle(data, genesis)
    except BundleError as error:
        raise CommandError(f"{what} does NOT verify: {error.reason} [{error.code}]") from None


# --- what a verified bundle proves, for people ------------------------------------------------


def summary_lines(verified: VerifiedBundle) -> list[str]:
    """What `provledger verify` prints: the checkpoint the bundle is verified under, then what
    its events prove, by kind."""
    validators = verified.validators
    header, claims = verified.header, verified.claims
    lines = [
        f"VERIFIED {verified.kind} evidence for {SUBJECT_FIELDS[verified.kind]} "
        f"{verified.subject_id}",
        f"  chain {verified.genesis.chain_id}, genesis {verified.genesis.genesis_hash.hex()}, "
        f"format {verified.format}",
        f"  checkpoint: block {header.height} (id {verified.block_id.hex()}), block time "
        f"{_time(header.time_ms)}, log size {header.log_size}, "
        f"log root {header.log_root.hex()}",
        f"  signed by {len(verified.signers)} of {len(validators.validators)} validators "
        f"(quorum {validators.quorum_size}): {', '.join(verified.signers)}",
        *_governance_lines(verified),
        "it proves:",
    ]
    if verified.kind == "event":
        ((log_index, event),) = verified.events
        lines.append(
            f"  event {claims['event_id']} ({claims['kind']}) was signed by "
            f"{claims['author']} (key {claims['key_id']}) and is entry {log_index} of the "
            f"ledger log; author's clock {_time(event.event.timestamp_ms)}"
        )
        lines.append(f"  {claims['kind']}: {_describe(getattr(event.event, event.kind))}")
    elif verified.kind == "lineage":
        lines += _lineage_lines(claims)
    elif verified.kind == "case":
        lines += _case_lines(verified)
    else:
        lines += _trade_lines(verified)
    lines.append(
        "a bundle proves that its events are in the ledger; it cannot prove that no other "
        "events exist"
    )
    if verified.kind == "case":
        lines.append(
            f"verified against the genesis {verified.genesis.genesis_hash.hex()} of chain "
            f"{verified.genesis.chain_id}: each of the {len(verified.events)} events above is "
            "signed by its author, a member with that key and role when it signed, and is in "
            f"the ledger log under block {header.height}, which {len(verified.signers)} of "
            f"{len(validators.validators)} validators signed"
        )
    return lines


def fork_lines(fork: VerifiedFork) -> list[str]:
    """What `provledger verify` prints for a verified proof of a fork."""
    lines = [
        f"VERIFIED fork: {fork.proof.reason} ({fork.proof.kind})",
        f"  chain {fork.genesis.chain_id}, genesis {fork.genesis.genesis_hash.hex()}",
    ]
    sides = (
        (fork.proof.first, fork.first_header, fork.first_block_id, fork.first_signers,
         fork.first_validators),
        (fork.proof.second, fork.second_header, fork.second_block_id, fork.second_signers,
         fork.second_validators),
    )  # fmt: skip
    for sighting, header, identifier, signers, validators in sides:
        lines.append(
            f"  block {header.height} (id {identifier.hex()}, round "
            f"{sighting.checkpoint.certificate.round}, log size {header.log_size}) signed by "
            f"{len(signers)} of {len(validators.validators)} validators (quorum "
            f"{validators.quorum_size}): {', '.join(signers)}; seen at {sighting.source}"
        )
    both = ", ".join(fork.signed_both) or "(none)"
    if fork.equivocators:
        lines.append(
            f"validators that signed both, provably Byzantine (each precommitted two blocks at "
            f"height {fork.first_header.height} in round "
            f"{fork.proof.first.checkpoint.certificate.round}): {both}"
        )
    else:
        lines.append(
            f"validators that signed both: {both}; two quorums cannot both be honest, but "
            "certificates of different rounds or heights do not alone show which of them lied"
        )
    lines.append("where each checkpoint was seen is not signed; the signatures are what is proven")
    return lines


def _governance_lines(verified: VerifiedBundle) -> list[str]:
    """The governance events replayed from the genesis, and where the authors stand."""
    replayed = verified.governance_json()
    if not replayed:
        return ["  membership: the genesis members (no governance event needed)"]
    lines = [
        f"  membership: replayed from the genesis through {len(replayed)} governance events, "
        "each proven under the checkpoint and approved by the members in force before it:"
    ]
    for change in replayed:
        where = f"log index {change['log_index']}"
        if change["height"] is not None:
            where += f", height {change['height']}"
        what = f"{change['change']} {change['member_id']}".rstrip()
        if change["event"] == "governance":
            how = f"(by {change['author']}; approved by {', '.join(change['approvers'])})"
        else:
            verb = "proposed" if change["event"] == "governance_proposed" else "approved"
            how = f"{verb} by {change['author']}" + (" (applies)" if change["applies"] else "")
        lines.append(f"    {where}: {what} {how}")
    for author in verified.authors_json():
        standing = "removed" if author["removed"] else author["role"]
        keys = [
            key + (f" (revoked after height {revoked})" if revoked is not None else "")
            for key, revoked in zip(author["key_ids"], author["revoked_after_height"], strict=True)
        ]
        lines.append(
            f"  {author['member_id']} at the checkpoint: {standing}, keys {', '.join(keys)}"
        )
    return lines


def _lineage_lines(claims: dict[str, Any]) -> list[str]:
    parents: dict[str, list[str]] = {}
    for edge in claims["edges"]:
        parents.setdefault(edge["child"], []).append(edge["parent"])
    lines = [
        f"  the upstream lineage of {claims['asset_id']}: {len(claims['assets'])} "
        f"assets, {len(claims['edges'])} derivation edges, each path back to a registration"
    ]
    for asset in claims["assets"]:
        how = (
            f"derived by {asset['activity']} from {', '.join(parents[asset['asset_id']])}"
            if asset["activity"]
            else "registered"
        )
        lines.append(
            f"  {asset['asset_id']}: {how}; by {asset['creator']}; "
            f"{asset['classification']}; content sha256 {asset['content_digest']}"
        )
    return lines


def _trade_lines(verified: VerifiedBundle) -> list[str]:
    claims = verified.claims
    lines = [
        f"  order {claims['order_id']} on offer {claims['offer_id']} (asset "
        f"{claims['asset_id']}, {claims['price']} {claims['currency']}): seller "
        f"{claims['seller']}, buyer {claims['buyer']}, exchange {claims['exchange']}",
        f"  life cycle: {' -> '.join(claims['statuses'])}",
    ]
    if claims["delivery_digest"]:
        lines.append(f"  delivered content sha256 {claims['delivery_digest']}")
    for _, event in verified.events:
        if event.kind in ("dispute_opened", "dispute_resolved"):
            payload = getattr(event.event, event.kind)
            lines.append(f"  {event.kind} by {event.author_id}: {_describe(payload)}")
    refund = claims.get("refund")
    if refund is not None:
        reference = f", reference {refund['reference']}" if refund["reference"] else ""
        lines.append(
            f"  refunded {refund['amount']} {refund['currency']} (minor units){reference} by "
            f"{refund['by']}'s {refund['event']} in case {refund['case_id']} (event "
            f"{refund['event_id']})"
        )
    return lines


def _case_lines(verified: VerifiedBundle) -> list[str]:
    """A case file for a judge: the case, its timeline, the ruling with its remedies, and the
    appeal with its decision. The words are protocol/case_timeline.py's, rendered here from
    the verified events (the claims hold structured data only)."""
    claims = verified.claims
    payloads = {e.event_id.hex(): getattr(e.event, e.kind) for _, e in verified.events}
    complaints = ", ".join(c["complaint_id"] for c in claims["complaints"])
    lines = [
        f"  case {claims['case_id']}, opened by {claims['opened_by']} on complaint"
        f"{'s' if len(claims['complaints']) > 1 else ''} {complaints}; parties "
        f"{', '.join(claims['parties'])}; status {claims['statuses'][-1]}",
        "  timeline (block time UTC, height, author, what happened):",
    ]
    if verified.proven is None:  # a case file is of format 3 only; verify_bundle says so
        raise CommandError("a case file is a bundle of format 3 only")
    for entry in case_timeline(list(verified.events), verified.proven):
        lines.append(
            f"    {_time(entry.time_ms)}  height {entry.height}  {entry.author_id}  {entry.summary}"
        )
    for complaint in claims["complaints"]:
        lines.append(
            f"  complaint {complaint['complaint_id']}: statement sha256 "
            f"{complaint['statement_digest']}"
            + "".join(f", evidence sha256 {d}" for d in complaint["evidence_digests"])
        )
    ruling = claims["ruling"]
    if ruling is None:
        lines.append("  ruling: none yet")
        return lines
    lines.append(
        f"  ruling: {ruling['outcome']} by {ruling['regulator']} at "
        f"{_time(_entry_time(claims, ruling['event_id']))}; decision sha256 "
        f"{ruling['decision_digest']}; findings: {ruling['findings']}"
    )
    for remedy in payloads[ruling["event_id"]].remedies:
        lines.append(f"  remedy: {remedy_words(remedy)}")
    appeal = claims["appeal"]
    if appeal is None:
        lines.append(
            f"  appeal: none shown; the window to appeal closes at "
            f"{_time(claims['appeal_deadline_ms'])}"
        )
        return lines
    grounds = f": {appeal['grounds']}" if appeal["grounds"] else ""
    lines.append(
        f"  appeal by {appeal['appellant']} (grounds sha256 {appeal['grounds_digest']}){grounds}"
    )
    for vote in claims["appeal_votes"]:
        lines.append(f"  appeal vote by {vote['regulator']}: {vote['decision']}")
    decision = claims["appeal_decision"]
    if decision is None:
        lines.append("  appeal decided: not yet")
        return lines
    lines.append(
        f"  appeal decided: ruling {decision['decision']}, by {', '.join(decision['regulators'])}"
    )
    for remedy in payloads[decision["event_id"]].remedies:
        lines.append(f"  remedy added on appeal: {remedy_words(remedy)}")
    return lines


def _entry_time(claims: dict[str, Any], event_id: str) -> int:
    return next(e["time_ms"] for e in claims["timeline"] if e["event_id"] == event_id)  # type: ignore[no-any-return]


def _time(ms: int) -> str:
    """A time in milliseconds since 1970 as ISO 8601 UTC, or as the number if out of range."""
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms after 1970"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(message: Any) -> str:
    """A payload's set fields on one line, for people: bytes as hex, enums by name."""
    parts = []
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            text = json.dumps(dict(value), sort_keys=True, ensure_ascii=False)
        elif descriptor.message_type is not None:
            text = f"({len(value)} entries)" if hasattr(value, "__len__") else "(message)"
        else:
            items = (
                list(value)
                if hasattr(value, "__len__") and not isinstance(value, str | bytes)
                else [value]
            )
            if descriptor.enum_type is not None:
                names = descriptor.enum_type.values_by_number
                items = [names[v].name if v in names else v for v in items]
            text = ", ".join(v.hex() if isinstance(v, bytes) else str(v) for v in items)
        parts.append(f"{descriptor.name}={text}")
    return "; ".join(parts)
