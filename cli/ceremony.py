"""The founding ceremony: a consortium of organisations in which nothing private leaves its
organisation (ADR 015). `consortium init` stays the one-machine shortcut.

Each organisation, in a folder of its own:

    provledger org init --org ID --name NAME --role ROLE --chain-id C --dir DIR \\
        [--node NODE_ID --host NAME ... --peer-address HOST:PORT]

A coordinator, holding only the organisations' public.json files:

    provledger genesis draft --chain-id C --org A/public.json ... --out draft.json \\
        [--peers-out peers.json]

Each organisation, on the draft it was sent (it sees what it signs, and its own entries are
checked against its public.json):

    provledger genesis sign --draft draft.json --identity DIR/identity.json \\
        --out DIR/approval.json

The coordinator, with every founding member's approval:

    provledger genesis seal --draft draft.json --approval A/approval.json ... --out genesis.json

Each organisation running a node, with the sealed genesis and the peers' addresses:

    provledger org node-config --dir DIR --genesis genesis.json --peers peers.json \\
        --listen HOST:PORT --peer-listen HOST:PORT [--rest-listen HOST:PORT]
    provledger node run --config DIR/node/config.toml

An organisation whose validator governance adds after the genesis (`governance propose
add-validator`) configures its node with `--joining` (the genesis must not name it) and
starts it once the addition is committed: before, its peers refuse its certificate (ADR 015).

A client of any node may trust every organisation's CA at once:
`provledger genesis ca-bundle --genesis genesis.json`.

DIR (private files 0600, folders 0700: node/private_files.py):

    DIR/identity.json            the member's key (what its client signs with): private
    DIR/public.json              the public parts, the only file that leaves DIR
    DIR/ca/ca.pem, ca-key.pem    the organisation's TLS CA (with --node); the key is private
    DIR/node/validator-key.json  the node's validator key: private
    DIR/node/tls/                ca.pem, node.pem, node-key.pem (private): the node's
                                 certificate from DIR/ca, for its peers and its clients
    DIR/genesis.json             the sealed genesis (`org node-config` copies it here)
    DIR/node/config.toml         the node's config (`org node-config`), paths relative to it

public.json: {"chain_id", "member": {"member_id", "name", "role", "public_keys"},
"validator": {"validator_id", "public_key", "tls_ca"}, "peer_address"}, the last two only
for an organisation with a node (the peer address only if given). Its member and validator
entries are the genesis's, as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from provledger.cli.client import Identity
from provledger.cli.consortium import default_personal_data_patterns
from provledger.cli.output import CommandError, emit, load_identity
from provledger.node import config as node_config
from provledger.node import tls
from provledger.node.keyfile import load_key, new_signing_key, save_key
from provledger.node.private_files import make_private_directory, write_private_file
from provledger.protocol.errors import Rejected
from provledger.protocol.genesis import (
    FOUNDING_SIGNATURES,
    ROLE_NAMES,
    Genesis,
    founding_message,
    parse_genesis,
    sign_founding,
)

IDENTITY_FILE = "identity.json"
PUBLIC_FILE = "public.json"
CA_DIR = "ca"
CA_KEY_FILE = "ca-key.pem"
NODE_DIR = "node"
VALIDATOR_KEY_FILE = "validator-key.json"
TLS_DIR = "tls"
GENESIS_FILE = "genesis.json"
CONFIG_FILE = "config.toml"
_PUBLIC_FIELDS = {"chain_id", "member", "validator", "peer_address"}
_MEMBER_FIELDS = {"member_id", "name", "role", "public_keys"}
_VALIDATOR_FIELDS = {"validator_id", "public_key", "tls_ca"}


# --- org init ---------------------------------------------------------------------------


def cmd_org_init(args: argparse.Namespace) -> None:
    directory = Path(args.dir)
    try:
        public = init_organisation(
            directory,
            org=args.org,
            name=args.name,
            role=args.role,
            chain_id=args.chain_id,
            node_id=args.node,
            hosts=args.host or (),
            peer_address=args.peer_address,
        )
    except (FileExistsError, ValueError) as error:
        raise CommandError(str(error)) from None
    lines = [
        f"identity   {directory / IDENTITY_FILE}  (private: stays here)",
        f"public     {directory / PUBLIC_FILE}  (send this to the coordinator)",
    ]
    if "validator" in public:
        lines += [
            f"TLS CA     {directory / CA_DIR / tls.CA_CERTIFICATE_FILE}  (its key stays here)",
            f"node       {public['validator']['validator_id']}: {directory / NODE_DIR}",
        ]
    emit(args, {"public": str(directory / PUBLIC_FILE), **public}, "\n".join(lines))


def init_organisation(
    directory: Path,
    *,
    org: str,
    name: str,
    role: str,
    chain_id: str,
    node_id: str | None = None,
    hosts: tuple[str, ...] | list[str] = (),
    peer_address: str | None = None,
) -> dict[str, Any]:
    """Write an organisation's folder (see the module's notes); return its public parts."""
    if not org:
        raise ValueError("--org must not be empty")
    if role not in ROLE_NAMES:
        raise ValueError(f"--role must be one of {sorted(ROLE_NAMES)}")
    if node_id is None and (hosts or peer_address):
        raise ValueError("--host and --peer-address describe a node: give --node too")
    if peer_address is not None:
        node_config.split_host_port(peer_address)
    if node_id is not None:
        tls.validate_node_id(node_id)
    for host in hosts:
        tls.validate_host(host)
    make_private_directory(directory)
    if (directory / IDENTITY_FILE).exists():
        raise FileExistsError(f"{directory / IDENTITY_FILE} exists; choose an empty folder")
    member_key = new_signing_key()
    save_key(directory / IDENTITY_FILE, member_key, member_id=org, role=role, chain_id=chain_id)
    public: dict[str, Any] = {
        "chain_id": chain_id,
        "member": {
            "member_id": org,
            "name": name,
            "role": role,
            "public_keys": [member_key.public_key.hex()],
        },
    }
    if node_id is not None:
        ca_certificate, ca_key = tls.create_ca(chain_id, organisation=org)
        make_private_directory(directory / CA_DIR)
        (directory / CA_DIR / tls.CA_CERTIFICATE_FILE).write_bytes(ca_certificate)
        write_private_file(directory / CA_DIR / CA_KEY_FILE, ca_key)
        node_dir = directory / NODE_DIR
        make_private_directory(node_dir)
        validator_key = new_signing_key()
        save_key(node_dir / VALIDATOR_KEY_FILE, validator_key, validator_id=node_id)
        certificate, certificate_key = tls.issue_node_certificate(
            ca_certificate, ca_key, node_id, extra_hosts=hosts
        )
        tls.save_tls_material(node_dir / TLS_DIR, ca_certificate, certificate, certificate_key)
        public["validator"] = {
            "validator_id": node_id,
            "public_key": validator_key.public_key.hex(),
            "tls_ca": ca_certificate.decode(),
        }
        if peer_address is not None:
            public["peer_address"] = peer_address
    (directory / PUBLIC_FILE).write_text(json.dumps(public, indent=2) + "\n")
    return public


# --- genesis draft ----------------------------------------------------------------------


def cmd_genesis_draft(args: argparse.Namespace) -> None:
    publics = [_read_public(Path(path)) for path in args.org]
    try:
        draft, peers = draft_genesis(args.chain_id, publics, time.time_ns() // 1_000_000)
    except ValueError as error:
        raise CommandError(str(error)) from None
    out = Path(args.out)
    out.write_text(json.dumps(draft, indent=2) + "\n")
    if args.peers_out:
        Path(args.peers_out).write_text(json.dumps(peers, indent=2) + "\n")
    emit(
        args,
        {"draft": str(out), "draft_hash": draft_hash(draft), "peers": peers},
        f"draft      {out}  (send it to every founding member to sign)\n"
        f"draft hash {draft_hash(draft)}\n"
        + (f"peers      {args.peers_out}\n" if args.peers_out else "")
        + _describe(draft),
    )


def draft_genesis(
    chain_id: str, publics: list[dict[str, Any]], genesis_time_ms: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """The draft genesis of these organisations' public parts, and {node id: peer address}.
    ValueError if they do not make a genesis."""
    for public in publics:
        if public["chain_id"] != chain_id:
            raise ValueError(
                f"{public['member']['member_id']} made its keys for chain "
                f"{public['chain_id']!r}, not {chain_id!r}"
            )
    validators = [public["validator"] for public in publics if "validator" in public]
    for validator in validators:
        try:
            tls.check_ca_root(validator["tls_ca"].encode())
        except (tls.TlsMaterialError, AttributeError, KeyError) as error:
            raise ValueError(f"{validator.get('validator_id')}: tls_ca: {error}") from None
    draft = {
        "chain_id": chain_id,
        "genesis_time_ms": genesis_time_ms,
        "members": [public["member"] for public in publics],
        "validators": validators,
        "personal_data_patterns": default_personal_data_patterns(),
    }
    _parse(draft, "the draft")
    if len({v["validator_id"] for v in validators}) != len(validators):
        raise ValueError("validator ids must be unique")
    peers = {
        public["validator"]["validator_id"]: public["peer_address"]
        for public in publics
        if "validator" in public and "peer_address" in public
    }
    return draft, peers


def draft_hash(draft: dict[str, Any]) -> str:
    """The hex SHA-256 of what every founding member signs (`founding_message`)."""
    return hashlib.sha256(founding_message(draft)).hexdigest()


# --- genesis sign -----------------------------------------------------------------------


def cmd_genesis_sign(args: argparse.Namespace) -> None:
    draft = _read_draft(Path(args.draft))
    identity = load_identity(args.identity)
    own_public = Path(args.identity).parent / PUBLIC_FILE
    try:
        approval = approve_draft(
            draft, identity, _read_public(own_public) if own_public.exists() else None
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    out = Path(args.out)
    out.write_text(json.dumps(approval, indent=2) + "\n")
    emit(
        args,
        approval,
        f"signing as {identity.member_id}:\n{_describe(draft)}"
        f"draft hash {approval['draft_hash']}\napproval   {out}  (send it to the coordinator)",
    )


def approve_draft(
    draft: dict[str, Any], identity: Identity, own_public: dict[str, Any] | None
) -> dict[str, Any]:
    """`identity`'s approval of `draft`: its founding signature and the draft's hash.
    ValueError if the draft is not for its chain, does not list it, or (given the
    organisation's public.json) carries its member or validator entry other than it made."""
    genesis = _parse(draft, "the draft")
    if genesis.chain_id != identity.chain_id:
        raise ValueError(f"the draft is for chain {genesis.chain_id!r}, not {identity.chain_id!r}")
    member = genesis.member(identity.member_id)
    if member is None or identity.key.key_id not in {k.key_id for k in member.keys}:
        raise ValueError(f"the draft does not list {identity.member_id} with this identity's key")
    if own_public is not None:
        if own_public["member"] not in draft["members"]:
            raise ValueError(
                f"the draft's entry for {identity.member_id} is not your public.json's"
            )
        if "validator" in own_public and own_public["validator"] not in draft["validators"]:
            raise ValueError(
                f"the draft's entry for validator {own_public['validator']['validator_id']} "
                "(its key or TLS CA) is not your public.json's"
            )
    return {
        **sign_founding(draft, identity.member_id, identity.key),
        "chain_id": genesis.chain_id,
        "draft_hash": draft_hash(draft),
    }


# --- genesis seal -----------------------------------------------------------------------


def cmd_genesis_seal(args: argparse.Namespace) -> None:
    draft = _read_draft(Path(args.draft))
    approvals = [_read_json(Path(path), "approval") for path in args.approval]
    try:
        document, genesis = seal_genesis(draft, approvals)
    except ValueError as error:
        raise CommandError(str(error)) from None
    out = Path(args.out)
    out.write_text(json.dumps(document, indent=2) + "\n")
    emit(
        args,
        {"genesis": str(out), "genesis_hash": genesis.genesis_hash.hex()},
        f"genesis    {out}  (signed by all {len(genesis.members)} founding members)\n"
        f"hash       {genesis.genesis_hash.hex()}",
    )


def seal_genesis(
    draft: dict[str, Any], approvals: list[dict[str, Any]]
) -> tuple[dict[str, Any], Genesis]:
    """The sealed genesis document: `draft` with every founding member's signature, and what
    it parses to. ValueError if an approval is of another draft, or a member's is missing,
    repeated or does not verify."""
    expected = draft_hash(draft)
    signatures: dict[str, dict[str, Any]] = {}
    for approval in approvals:
        member_id = approval.get("member_id")
        if approval.get("draft_hash") != expected:
            raise ValueError(
                f"{member_id}'s approval is of draft {approval.get('draft_hash')}, "
                f"not of this one ({expected})"
            )
        if member_id in signatures:
            raise ValueError(f"two approvals from {member_id}")
        signatures[str(member_id)] = {
            field: approval.get(field) for field in ("member_id", "key_id", "signature")
        }
    document = {
        **draft,
        FOUNDING_SIGNATURES: [signatures[member_id] for member_id in sorted(signatures)],
    }
    return document, _parse(document, "the sealed genesis")


# --- genesis ca-bundle ------------------------------------------------------------------


def cmd_genesis_ca_bundle(args: argparse.Namespace) -> None:
    genesis = _parse_file(Path(args.genesis))
    bundle = ca_bundle(genesis)
    if not bundle:
        raise CommandError(
            f"{args.genesis} names no organisation's TLS CA: its nodes' certificates come from "
            "one consortium CA (trust its ca.pem)"
        )
    print(bundle.decode(), end="")


def ca_bundle(genesis: Genesis) -> bytes:
    """Every organisation's TLS CA root the genesis names, once each, in validator order."""
    roots: list[bytes] = []
    for _, root in genesis.validator_tls_cas:
        if root not in roots:
            roots.append(root)
    return b"".join(root if root.endswith(b"\n") else root + b"\n" for root in roots)


# --- org node-config --------------------------------------------------------------------


def cmd_org_node_config(args: argparse.Namespace) -> None:
    directory = Path(args.dir)
    try:
        config_path = write_node_config(
            directory,
            genesis_bytes=_read_bytes(Path(args.genesis), "genesis"),
            peers=_read_json(Path(args.peers), "peers"),
            listen=args.listen,
            peer_listen=args.peer_listen,
            rest_listen=args.rest_listen,
            joining=args.joining,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    emit(
        args,
        {"config": str(config_path), "genesis": str(directory / GENESIS_FILE)},
        f"config     {config_path}\ngenesis    {directory / GENESIS_FILE}\n"
        f"start it:  provledger node run --config {config_path}",
    )


def write_node_config(
    directory: Path,
    *,
    genesis_bytes: bytes,
    peers: dict[str, str],
    listen: str,
    peer_listen: str,
    rest_listen: str | None = None,
    joining: bool = False,
) -> Path:
    """Copy the sealed genesis into `directory` and write the node's config beside its keys.
    ValueError unless the genesis names this organisation's node with its validator key and
    TLS CA (with `joining`: does not name it, for governance adds it later), and every peer is
    another of its validators."""
    public = _read_public(directory / PUBLIC_FILE)
    if "validator" not in public:
        raise ValueError(f"{directory} has no node (org init --node)")
    node_id = public["validator"]["validator_id"]
    genesis = _parse(_loads(genesis_bytes, "genesis"), "the genesis")
    node_dir = directory / NODE_DIR
    validator_key, _ = load_key(node_dir / VALIDATOR_KEY_FILE)
    named = genesis.validator_set.public_key(node_id)
    if joining and named is not None:
        raise ValueError(f"the genesis names {node_id} already: configure it without --joining")
    if not joining and named != validator_key.public_key:
        raise ValueError(
            f"the genesis does not name {node_id} with this folder's validator key"
            + ("" if named else " (a validator governance adds later: --joining)")
        )
    own_ca = tls.load_tls_material(node_dir / TLS_DIR).ca_certificate_pem
    if not joining and genesis.validator_tls_cas and genesis.tls_ca(node_id) != own_ca:
        raise ValueError(
            f"the genesis names another TLS CA for {node_id} than {directory / CA_DIR}"
        )
    validator_ids = {v.validator_id for v in genesis.validator_set.validators}
    others = {peer_id: str(address) for peer_id, address in peers.items() if peer_id != node_id}
    strangers = sorted(set(others) - validator_ids)
    if strangers:
        raise ValueError(f"peers {strangers} are not validators of this genesis")
    missing = sorted(validator_ids - set(others) - {node_id})
    if missing:
        raise ValueError(f"no peer address for validators {missing}")
    for address in (listen, peer_listen, *others.values(), *([rest_listen] if rest_listen else [])):
        node_config.split_host_port(address)
    (directory / GENESIS_FILE).write_bytes(genesis_bytes)
    config_path = node_dir / CONFIG_FILE
    config_path.write_text(
        node_config.render(
            node_id,
            f"../{GENESIS_FILE}",
            VALIDATOR_KEY_FILE,
            listen,
            peer_listen=peer_listen,
            peers=dict(sorted(others.items())),
            rest_listen=rest_listen,
            tls_dir=TLS_DIR,
        )
    )
    return config_path


# --- shared -----------------------------------------------------------------------------


def _describe(draft: dict[str, Any]) -> str:
    """What a founding member is asked to sign, for people."""
    lines = [f"chain      {draft['chain_id']} (genesis time {draft['genesis_time_ms']} ms)"]
    for member in draft["members"]:
        lines.append(f"member     {member['member_id']} ({member['role']}): {member['name']}")
    for validator in draft["validators"]:
        root = validator.get("tls_ca")
        fingerprint = (
            f"sha256 {tls.ca_fingerprint(root.encode())}"
            if isinstance(root, str)
            else "none (one consortium CA)"
        )
        lines.append(f"validator  {validator['validator_id']}: TLS CA {fingerprint}")
    return "\n".join(lines) + "\n"


def _parse(document: dict[str, Any], what: str) -> Genesis:
    try:
        return parse_genesis(json.dumps(document).encode())
    except Rejected as error:
        raise ValueError(f"{what} is refused: {error}") from None


def _parse_file(path: Path) -> Genesis:
    try:
        return _parse(_loads(_read_bytes(path, "genesis"), str(path)), str(path))
    except ValueError as error:
        raise CommandError(str(error)) from None


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror}") from None


def _loads(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} is not JSON: {error}") from None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        document = _loads(_read_bytes(path, what), f"{what} {path}")
    except ValueError as error:
        raise CommandError(str(error)) from None
    if not isinstance(document, dict):
        raise CommandError(f"{what} {path} must be a JSON object")
    return document


def _read_draft(path: Path) -> dict[str, Any]:
    draft = _read_json(path, "draft")
    if FOUNDING_SIGNATURES in draft:
        raise CommandError(f"{path} is sealed already: a draft carries no founding signatures")
    return draft


def _read_public(path: Path) -> dict[str, Any]:
    """An organisation's public.json: its public parts and nothing else."""
    public = _read_json(path, "public parts")
    member = public.get("member")
    validator = public.get("validator", {})
    if (
        not set(public) <= _PUBLIC_FIELDS
        or "chain_id" not in public
        or not isinstance(member, dict)
        or not set(member) <= _MEMBER_FIELDS
        or not isinstance(validator, dict)
        or not set(validator) <= _VALIDATOR_FIELDS
    ):
        raise CommandError(
            f"{path} is not an organisation's public.json: only {sorted(_PUBLIC_FIELDS)}, "
            f"with member {sorted(_MEMBER_FIELDS)} and validator {sorted(_VALIDATOR_FIELDS)}"
        )
    return public
