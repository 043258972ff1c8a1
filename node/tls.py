"""The consortium's PKI: its CA, node certificates, and the gRPC credentials made of them.

A node's certificate serves twice: for mutual TLS with its peers (PeerService), and as the
server certificate of its client API (LedgerService), which clients check against the
consortium CA (`ca.pem`) and the name they dial (a `--host` name of `consortium init`).

This module owns how a validator's transport identity is made, stored and read back:

- `create_ca(chain_id)` makes the consortium CA (ECDSA P-256, CA:true, path length 0,
  10 years). Whoever holds its key decides who may open a peer connection.
- `issue_node_certificate(...)` makes a node's certificate (ECDSA P-256) signed by that CA:
  subject CN = node id; SAN = DNS:localhost, IP:127.0.0.1, URI:provledger:node:<node id>
  (plus any extra host names or addresses the node is reached at); extended key usage
  serverAuth and clientAuth, because every node is both a server and a client of its peers.
- `save_tls_material` / `load_tls_material` write and read a node's ca.pem, node.pem and
  node-key.pem (the key file is left 0600 whatever was there before, and the folder 0700:
  node/private_files.py).
- `server_credentials` / `channel_credentials` turn the material into gRPC credentials for
  the peer port. The server requires a client certificate, and gRPC checks its chain against
  the CA before any handler runs: a certificate from any other issuer never gets a connection.
- `client_api_server_credentials` serves the client API over TLS with the node's certificate
  (clients authenticate with bearer tokens, not certificates); `client_channel_credentials`
  is a client's side of it, trusting the consortium CA (or the system's roots).
- `peer_node_id(context)` reads the authenticated peer's certificate from a servicer
  context and returns its node id; `peer_certificate_pem(context)` the certificate itself.
- `PeerTrust` (made by `peer_trust(material, genesis.validator_tls_cas)`) says which CA may
  issue which validator's certificate (ADR 015). With one consortium CA (a genesis without
  `tls_ca`), that CA for all, exactly as before. With each organisation's CA root in the
  genesis, the peer port's handshake trusts the union of the roots, a channel to validator V
  trusts V's organisation's root alone, and `issuer_problem(V, certificate)` says why a
  certificate naming V was not issued by V's organisation's CA: the union lets any
  organisation's CA through the handshake, and the server checks the binding before any
  PeerService handler runs (node/peers.py). The roots follow the validator sets
  (`ValidatorAdded.tls_ca`, `TlsCaReplaced`); `dynamic_server_credentials` lets a running
  port's handshake take a root added later (ADR 015, amendment 2026-12-02).

Invariants:
- A node id in a certificate is always in the URI SAN `provledger:node:<node id>` and in the
  CN; `node_id_from_certificate` prefers the URI SAN and falls back to the CN only for a
  certificate without one. A certificate naming two different node ids names none.
- `load_tls_material` refuses material whose certificate was not issued by its CA or whose
  key does not match its certificate, so a misconfiguration fails at start, not at the
  first handshake.
- Every node certificate names localhost and 127.0.0.1, so on the peer port TLS host name
  checks say nothing about *which* node answered; identity is the node id, which the
  server side checks against the validator set (see `provledger.node.peers`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provledger.node.private_files import make_private_directory, write_private_file
from provledger.node.settings import CA_CERTIFICATE_VALIDITY_DAYS, NODE_CERTIFICATE_VALIDITY_DAYS
from provledger.protocol.genesis import tls_ca_problem
from provledger.protocol.limits import CERTIFICATE_CLOCK_SKEW_S_MAX, NODE_ID_LENGTH_CHARS_MAX

CA_CERTIFICATE_FILE = "ca.pem"
NODE_CERTIFICATE_FILE = "node.pem"
NODE_KEY_FILE = "node-key.pem"
NODE_ID_URI_PREFIX = "provledger:node:"
AUTH_CONTEXT_CERTIFICATE_KEY = "x509_pem_cert"

# Letters, digits and . _ -, starting with a letter or digit: safe in a URI, a CN and a path.
_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CURVE = ec.SECP256R1()


class TlsMaterialError(ValueError):
    """A node's TLS files are missing, malformed or do not belong together."""


class AuthContextSource(Protocol):
    """What `peer_node_id` needs from a gRPC (sync or aio) servicer context."""

    def auth_context(self) -> Mapping[str, Iterable[bytes]]: ...


@dataclass(frozen=True)
class TlsMaterial:
    """A node's PEM-encoded TLS material: the consortium CA, its certificate and its key."""

    ca_certificate_pem: bytes
    certificate_pem: bytes
    key_pem: bytes

    @property
    def node_id(self) -> str:
        node_id = node_id_from_certificate(x509.load_pem_x509_certificate(self.certificate_pem))
        if node_id is None:
            raise TlsMaterialError("the node certificate names no node id")
        return node_id

    @classmethod
    def load(cls, directory: Path | str) -> TlsMaterial:
        return load_tls_material(directory)


def validate_node_id(node_id: str) -> None:
    if not node_id or len(node_id) > NODE_ID_LENGTH_CHARS_MAX or not _NODE_ID.match(node_id):
        raise ValueError(
            f"node id {node_id[:40]!r} must be 1-{NODE_ID_LENGTH_CHARS_MAX} characters of "
            "letters, digits and . _ -, starting with a letter or digit"
        )


_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
HOST_NAME_LENGTH_CHARS_MAX = 253


def validate_host(host: str) -> None:
    """Raise ValueError unless `host` is an IP address or a DNS name (labels of letters,
    digits and hyphens, at most 253 characters), as a certificate may name it."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if (
        not host
        or len(host) > HOST_NAME_LENGTH_CHARS_MAX
        or not all(_DNS_LABEL.match(label) for label in labels)
    ):
        raise ValueError(
            f"host {host[:60]!r} is neither an IP address nor a DNS name (letters, digits and "
            f"hyphens in dot-separated labels, at most {HOST_NAME_LENGTH_CHARS_MAX} characters)"
        )


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _encode_private_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _decode_private_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _CURVE.name:
        raise TlsMaterialError("expected an ECDSA P-256 private key")
    return key


def _san_entry(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def create_ca(
    chain_id: str, *, organisation: str | None = None, now: datetime.datetime | None = None
) -> tuple[bytes, bytes]:
    """Make the consortium CA, or with `organisation` that organisation's own TLS CA (the
    founding ceremony, ADR 015). Returns (certificate PEM, private key PEM)."""
    if not chain_id:
        raise ValueError("chain id is required")
    issued_at = now or _utc_now()
    key = ec.generate_private_key(_CURVE)
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provledger")]
    if organisation is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, chain_id[:40]))
    # The CN is bounded to 64 characters; the chain id is at most as long.
    common_name = f"{organisation[:40]} TLS CA" if organisation else f"{chain_id[:40]} CA"
    name = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public_key = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued_at - datetime.timedelta(seconds=CERTIFICATE_CLOCK_SKEW_S_MAX))
        .not_valid_after(issued_at + datetime.timedelta(days=CA_CERTIFICATE_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM), _encode_private_key(key)


def issue_node_certificate(
    ca_certificate_pem: bytes,
    ca_key_pem: bytes,
    node_id: str,
    *,
    extra_hosts: Iterable[str] = (),
    now: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """Issue a node's certificate signed by the CA. Returns (certificate PEM, key PEM).

    `extra_hosts` are further DNS names or IP addresses the node is reached at (for example a
    container's host name); localhost and 127.0.0.1 are always included. The certificate
    never outlives the CA.
    """
    validate_node_id(node_id)
    issued_at = now or _utc_now()
    ca_certificate = x509.load_pem_x509_certificate(ca_certificate_pem)
    ca_key = _decode_private_key(ca_key_pem)
    if ca_key.public_key() != ca_certificate.public_key():
        raise TlsMaterialError("the CA key does not match the CA certificate")
    key = ec.generate_private_key(_CURVE)
    public_key = key.public_key()
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    for host in extra_hosts:
        validate_host(host)
        entry = _san_entry(host)
        if entry not in names:
            names.append(entry)
    names.append(x509.UniformResourceIdentifier(NODE_ID_URI_PREFIX + node_id))
    not_after = min(
        issued_at + datetime.timedelta(days=NODE_CERTIFICATE_VALIDITY_DAYS),
        ca_certificate.not_valid_after_utc,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provledger"),
                    x509.NameAttribute(NameOID.COMMON_NAME, node_id),
                ]
            )
        )
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued_at - datetime.timedelta(seconds=CERTIFICATE_CLOCK_SKEW_S_MAX))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM), _encode_private_key(key)


def check_ca_root(certificate_pem: bytes) -> x509.Certificate:
    """The CA root in `certificate_pem`, as a genesis or a governance change names one per
    organisation (`protocol.genesis.tls_ca_problem` judges it: one bounded PEM block, a
    self-signed CA certificate allowed to sign certificates); TlsMaterialError otherwise."""
    problem = tls_ca_problem(certificate_pem)
    if problem is not None:
        raise TlsMaterialError(problem)
    return x509.load_pem_x509_certificate(certificate_pem)


def ca_fingerprint(certificate_pem: bytes) -> str:
    """The hex SHA-256 of a certificate's DER bytes, to compare a CA root out of band."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return certificate.fingerprint(hashes.SHA256()).hex()


def node_id_from_certificate(certificate: x509.Certificate) -> str | None:
    """The node id a certificate names: its `provledger:node:` URI SAN, else its CN."""
    try:
        alternative_names = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
    except x509.ExtensionNotFound:
        uris: list[str] = []
    else:
        uris = alternative_names.get_values_for_type(x509.UniformResourceIdentifier)
    node_ids = {
        uri[len(NODE_ID_URI_PREFIX) :] for uri in uris if uri.startswith(NODE_ID_URI_PREFIX)
    }
    if len(node_ids) > 1:
        return None
    if not node_ids:
        common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(common_names) != 1:
            return None
        value = common_names[0].value
        node_ids = {value if isinstance(value, str) else value.decode("utf-8", "replace")}
    (node_id,) = node_ids
    return node_id or None


def peer_certificate_pem(context: AuthContextSource) -> bytes | None:
    """The PEM of the client certificate a mutual-TLS call came with, or None (an insecure
    port, or not exactly one certificate). gRPC has checked its chain against the port's
    roots already."""
    auth_context = context.auth_context()
    certificates = list(auth_context.get(AUTH_CONTEXT_CERTIFICATE_KEY) or ())
    if len(certificates) != 1:
        return None
    certificate_pem = certificates[0]
    return certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem


def peer_node_id(context: AuthContextSource) -> str | None:
    """The node id of the peer on the other end of a mutual-TLS call, or None.

    None means the call did not come with a client certificate (an insecure port) or the
    certificate names no single node id. The certificate's chain was already checked by gRPC
    against the port's roots; this only reads the identity out of it (which organisation's CA
    issued it is `PeerTrust.issuer_problem`'s question).
    """
    certificate_pem = peer_certificate_pem(context)
    if certificate_pem is None:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem)
    except ValueError:
        return None
    return node_id_from_certificate(certificate)


@dataclass(frozen=True)
class PeerTrust:
    """Which CA may issue which validator's node certificate (ADR 015).

    `roots`: (validator id, its organisation's CA root PEM) for the validators of the sets
    from the current height on (`ValidatorHistory.tls_cas_from`); an id has two roots while a
    decided `TlsCaReplaced` is not yet active. Empty means one consortium CA,
    `consortium_ca_pem`, for every node. `every_root`: every root the chain of sets ever named
    (`ValidatorHistory.every_tls_ca`), which the handshake trusts besides: the application
    check (`issuer_problem`) decides, never the handshake alone."""

    consortium_ca_pem: bytes
    roots: tuple[tuple[str, bytes], ...] = ()
    every_root: tuple[bytes, ...] = ()

    @property
    def per_organisation(self) -> bool:
        return bool(self.roots)

    def handshake_roots(self) -> bytes:
        """What the peer port's TLS handshake trusts: every organisation's root (once each),
        or the consortium CA."""
        if not self.roots:
            return self.consortium_ca_pem
        return _pem_bundle([root for _, root in self.roots] + list(self.every_root))

    def roots_of(self, node_id: str) -> list[bytes]:
        """The roots a certificate naming `node_id` may come from now (none: unknown)."""
        return [root for validator_id, root in self.roots if validator_id == node_id]

    def root_for(self, node_id: str) -> bytes:
        """The CA a channel to `node_id` trusts: its organisation's root alone (with a decided
        replacement, the old and the new), the consortium CA in consortium-CA mode; for a node
        no set names a root for (a configured peer not yet added), every root."""
        if not self.roots:
            return self.consortium_ca_pem
        return _pem_bundle(self.roots_of(node_id)) or self.handshake_roots()

    def issuer_problem(self, node_id: str, certificate_pem: bytes) -> str | None:
        """None if the certificate naming `node_id` was issued by `node_id`'s organisation's
        CA, as the sets from the current height on name it (always None with one consortium
        CA, whose handshake already said so); else why not, for the log and the refusal."""
        if not self.roots:
            return None
        roots = self.roots_of(node_id)
        if not roots:
            return f"no validator set names a TLS CA for {node_id!r}"
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem)
        except ValueError:
            return f"the certificate for {node_id!r} is not a certificate"
        for root in roots:
            try:
                certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(root))
            except (ValueError, TypeError, InvalidSignature):
                continue
            return None
        return f"the certificate for {node_id!r} was not issued by its organisation's CA"


def _pem_bundle(roots: Iterable[bytes]) -> bytes:
    distinct: list[bytes] = []
    for root in roots:
        if root not in distinct:
            distinct.append(root)
    return b"".join(root if root.endswith(b"\n") else root + b"\n" for root in distinct)


def peer_trust(
    material: TlsMaterial,
    validator_tls_cas: Iterable[tuple[str, bytes]],
    *,
    every_root: Iterable[bytes] = (),
    check_own: bool = True,
) -> PeerTrust:
    """The peer port's trust for a node with `material`, given the roots of the validators
    (`validator_tls_cas`: the genesis's, or `ValidatorHistory.tls_cas_from(height)`; empty:
    one consortium CA, the node's ca.pem) and `every_root` the chain of sets ever named.
    TlsMaterialError if a root is not a CA root, or (with `check_own`) if the node's own CA is
    not a root named for it (its peers would refuse its certificate)."""
    roots = tuple(sorted(set(validator_tls_cas)))
    if not roots:
        return PeerTrust(material.ca_certificate_pem)
    every = tuple(sorted(set(every_root)))
    for validator_id, root in roots:
        try:
            check_ca_root(root)
        except TlsMaterialError as error:
            raise TlsMaterialError(f"the TLS CA named for {validator_id}: {error}") from None
    trust = PeerTrust(material.ca_certificate_pem, roots, every)
    own = trust.roots_of(material.node_id)
    if check_own and own and material.ca_certificate_pem not in own:
        raise TlsMaterialError(
            f"the validator sets name another TLS CA for {material.node_id} than this node's ca.pem"
        )
    return trust


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write public `data` (a certificate) to `path` atomically, with `mode`. Private keys go
    through `write_private_file`."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(descriptor, mode)  # O_CREAT's mode is masked by umask; the key must be 0600
        with os.fdopen(descriptor, "wb") as file:
            descriptor = -1
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    finally:
        if descriptor != -1:
            os.close(descriptor)
    os.replace(temporary, path)


def save_tls_material(
    directory: Path | str,
    ca_certificate_pem: bytes,
    certificate_pem: bytes,
    key_pem: bytes,
) -> TlsMaterial:
    """Write ca.pem, node.pem and node-key.pem (0600) into `directory` (0700) and return
    them."""
    material = TlsMaterial(ca_certificate_pem, certificate_pem, key_pem)
    _check_material(material)
    directory = Path(directory)
    make_private_directory(directory)
    _write_file(directory / CA_CERTIFICATE_FILE, ca_certificate_pem, 0o644)
    _write_file(directory / NODE_CERTIFICATE_FILE, certificate_pem, 0o644)
    write_private_file(directory / NODE_KEY_FILE, key_pem)
    return material


def load_tls_material(directory: Path | str) -> TlsMaterial:
    """Read a node's TLS files from `directory` and check that they belong together."""
    directory = Path(directory)
    try:
        material = TlsMaterial(
            ca_certificate_pem=(directory / CA_CERTIFICATE_FILE).read_bytes(),
            certificate_pem=(directory / NODE_CERTIFICATE_FILE).read_bytes(),
            key_pem=(directory / NODE_KEY_FILE).read_bytes(),
        )
    except OSError as error:
        raise TlsMaterialError(f"cannot read TLS material in {directory}: {error}") from error
    _check_material(material)
    return material


def _check_material(material: TlsMaterial) -> None:
    try:
        ca_certificate = x509.load_pem_x509_certificate(material.ca_certificate_pem)
        certificate = x509.load_pem_x509_certificate(material.certificate_pem)
        key = _decode_private_key(material.key_pem)
    except ValueError as error:
        raise TlsMaterialError(f"malformed TLS material: {error}") from error
    if key.public_key() != certificate.public_key():
        raise TlsMaterialError("the node key does not match the node certificate")
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise TlsMaterialError("the node certificate was not issued by the CA") from error
    if node_id_from_certificate(certificate) is None:
        raise TlsMaterialError("the node certificate names no node id")


def server_credentials(
    material: TlsMaterial, root_certificates: bytes | None = None
) -> grpc.ServerCredentials:
    """Server credentials that demand a client certificate issued by the consortium CA, or by
    one of `root_certificates` (`PeerTrust.handshake_roots`)."""
    return grpc.ssl_server_credentials(
        ((material.key_pem, material.certificate_pem),),
        root_certificates=root_certificates or material.ca_certificate_pem,
        require_client_auth=True,
    )


def dynamic_server_credentials(
    material: TlsMaterial, root_certificates: Callable[[], bytes]
) -> grpc.ServerCredentials:
    """Server credentials like `server_credentials`, whose trusted roots are read again from
    `root_certificates()` at every new connection's handshake: gRPC asks the fetcher for a new
    configuration then (grpc.dynamic_ssl_server_credentials), so a port opened before a root
    joined the chain of validator sets still lets its node in (ADR 015)."""
    key_pairs = ((material.key_pem, material.certificate_pem),)
    served = [root_certificates()]

    def configuration(roots: bytes) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(key_pairs, root_certificates=roots)

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        roots = root_certificates()
        if roots == served[0]:
            return None  # unchanged: gRPC keeps the current configuration
        served[0] = roots
        return configuration(roots)

    return grpc.dynamic_ssl_server_credentials(
        configuration(served[0]), fetch, require_client_authentication=True
    )


def channel_credentials(
    material: TlsMaterial, root_certificates: bytes | None = None
) -> grpc.ChannelCredentials:
    """Client credentials: trust only the consortium CA (or `root_certificates`, the peer's
    organisation's root: `PeerTrust.root_for`), present this node's certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=root_certificates or material.ca_certificate_pem,
        private_key=material.key_pem,
        certificate_chain=material.certificate_pem,
    )


def client_api_server_credentials(material: TlsMaterial) -> grpc.ServerCredentials:
    """TLS for the client API, with the node's certificate. No client certificate is asked
    for: reads are authorised by a member's bearer token (node/grpc_api.py), submissions by
    their events' signatures."""
    return grpc.ssl_server_credentials(((material.key_pem, material.certificate_pem),))


def client_channel_credentials(ca_certificate_pem: bytes | None) -> grpc.ChannelCredentials:
    """A client's TLS to a node's client API: trust the consortium CA's certificate, or, with
    None, the system's roots (a node whose certificate a public CA issued)."""
    return grpc.ssl_channel_credentials(root_certificates=ca_certificate_pem)
