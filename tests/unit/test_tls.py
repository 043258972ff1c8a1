"""The consortium PKI: CA and node certificates, their identities, saving and loading."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provledger.node import tls


@pytest.fixture(scope="module")
def ca() -> tuple[bytes, bytes]:
    return tls.create_ca("provledger-test")


@pytest.fixture(scope="module")
def node_a(ca: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    return tls.issue_node_certificate(*ca, "node-a")


class FakeContext:
    def __init__(self, auth_context: dict[str, list[bytes]]) -> None:
        self._auth_context = auth_context

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth_context


def test_ca_certificate_is_a_p256_ca_valid_for_ten_years(ca: tuple[bytes, bytes]) -> None:
    certificate = x509.load_pem_x509_certificate(ca[0])
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert datetime.timedelta(days=3_649) < lifetime < datetime.timedelta(days=3_651)
    certificate.verify_directly_issued_by(certificate)  # self-signed
    key = serialization.load_pem_private_key(ca[1], password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == public_key


def test_node_certificate_names_the_node_and_the_loopback_host(
    ca: tuple[bytes, bytes], node_a: tuple[bytes, bytes]
) -> None:
    certificate = x509.load_pem_x509_certificate(node_a[0])
    certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(ca[0]))
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [name.value for name in common_names] == ["node-a"]
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["provledger:node:node-a"]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    ca_certificate = x509.load_pem_x509_certificate(ca[0])
    assert certificate.not_valid_after_utc <= ca_certificate.not_valid_after_utc
    assert tls.node_id_from_certificate(certificate) == "node-a"


def test_extra_hosts_are_added_to_the_alternative_names(ca: tuple[bytes, bytes]) -> None:
    certificate_pem, _ = tls.issue_node_certificate(
        *ca, "node-b", extra_hosts=["node-b.internal", "10.0.0.7", "localhost"]
    )
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "node-b.internal"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("10.0.0.7"),
    ]


@pytest.mark.parametrize("node_id", ["", "-starts-with-dash", "has space", "a/b", "x" * 65])
def test_bad_node_ids_are_refused(ca: tuple[bytes, bytes], node_id: str) -> None:
    with pytest.raises(ValueError, match="node id"):
        tls.issue_node_certificate(*ca, node_id)


def test_a_key_that_is_not_the_cas_cannot_issue(ca: tuple[bytes, bytes]) -> None:
    _, other_key = tls.create_ca("other")
    with pytest.raises(tls.TlsMaterialError, match="CA key"):
        tls.issue_node_certificate(ca[0], other_key, "node-a")


def _certificate(
    common_name: str | None, uris: list[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = (
        [] if common_name is None else [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if uris:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri) for uri in uris]),
            critical=False,
        )
    return builder.sign(key, hashes.SHA256()), key


def test_node_id_prefers_the_uri_and_falls_back_to_the_common_name() -> None:
    uri_and_cn, _ = _certificate("cn-name", ["https://example.org", "provledger:node:uri-name"])
    assert tls.node_id_from_certificate(uri_and_cn) == "uri-name"
    cn_only, _ = _certificate("cn-name", ["https://example.org"])
    assert tls.node_id_from_certificate(cn_only) == "cn-name"
    two_ids, _ = _certificate("cn-name", ["provledger:node:one", "provledger:node:two"])
    assert tls.node_id_from_certificate(two_ids) is None
    nothing, _ = _certificate(None, [])
    assert tls.node_id_from_certificate(nothing) is None


def test_peer_node_id_reads_the_authenticated_certificate(node_a: tuple[bytes, bytes]) -> None:
    assert tls.peer_node_id(FakeContext({"x509_pem_cert": [node_a[0]]})) == "node-a"
    assert tls.peer_node_id(FakeContext({"transport_security_type": [b"insecure"]})) is None
    assert tls.peer_node_id(FakeContext({"x509_pem_cert": [b"not a certificate"]})) is None
    assert tls.peer_node_id(FakeContext({"x509_pem_cert": [node_a[0], node_a[0]]})) is None


def test_save_and_load_round_trip_with_a_private_key_file(
    tmp_path, ca: tuple[bytes, bytes], node_a: tuple[bytes, bytes]
) -> None:
    saved = tls.save_tls_material(tmp_path / "tls", ca[0], *node_a)
    directory = tmp_path / "tls"
    assert sorted(path.name for path in directory.iterdir()) == [
        "ca.pem",
        "node-key.pem",
        "node.pem",
    ]
    assert stat.S_IMODE((directory / "node-key.pem").stat().st_mode) == 0o600
    loaded = tls.load_tls_material(directory)
    assert loaded == saved == tls.TlsMaterial.load(directory)
    assert loaded.node_id == "node-a"
    assert (directory / "ca.pem").read_bytes() == ca[0]  # the CA certificate; never its key
    assert b"PRIVATE KEY" in (directory / "node-key.pem").read_bytes()


def test_saving_over_open_files_and_folder_leaves_the_key_0600_and_the_folder_0700(
    tmp_path, ca: tuple[bytes, bytes], node_a: tuple[bytes, bytes]
) -> None:
    directory = tmp_path / "tls"
    directory.mkdir()
    directory.chmod(0o755)
    for name in ("ca.pem", "node.pem", "node-key.pem"):
        (directory / name).write_bytes(b"old")
        (directory / name).chmod(0o644)
    previous_umask = os.umask(0)
    try:
        tls.save_tls_material(directory, ca[0], *node_a)
    finally:
        os.umask(previous_umask)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()}
    assert modes == {"ca.pem": 0o644, "node.pem": 0o644, "node-key.pem": 0o600}
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert tls.load_tls_material(directory).key_pem == node_a[1]


def test_load_refuses_material_that_does_not_belong_together(
    tmp_path, ca: tuple[bytes, bytes], node_a: tuple[bytes, bytes]
) -> None:
    other_ca = tls.create_ca("other")
    stranger = tls.issue_node_certificate(*other_ca, "node-a")
    node_b = tls.issue_node_certificate(*ca, "node-b")
    with pytest.raises(tls.TlsMaterialError, match="not issued by the CA"):
        tls.save_tls_material(tmp_path / "x", ca[0], *stranger)
    with pytest.raises(tls.TlsMaterialError, match="does not match"):
        tls.save_tls_material(tmp_path / "y", ca[0], node_a[0], node_b[1])
    tls.save_tls_material(tmp_path / "z", ca[0], *node_a)
    (tmp_path / "z" / "node.pem").write_bytes(node_b[0])
    with pytest.raises(tls.TlsMaterialError, match="does not match"):
        tls.load_tls_material(tmp_path / "z")
    (tmp_path / "z" / "node.pem").write_bytes(b"garbage")
    with pytest.raises(tls.TlsMaterialError, match="malformed"):
        tls.load_tls_material(tmp_path / "z")
    with pytest.raises(tls.TlsMaterialError, match="cannot read"):
        tls.load_tls_material(tmp_path / "missing")


def test_credentials_are_built_from_the_material(
    ca: tuple[bytes, bytes], node_a: tuple[bytes, bytes]
) -> None:
    material = tls.TlsMaterial(ca[0], *node_a)
    assert isinstance(tls.server_credentials(material), grpc.ServerCredentials)
    assert isinstance(tls.channel_credentials(material), grpc.ChannelCredentials)


# --- each organisation's CA root in the genesis (ADR 015) ---------------------------------


@pytest.fixture(scope="module")
def organisations() -> dict[str, tuple[bytes, bytes]]:
    """Two organisations' own TLS CAs: X runs node-x, Y runs node-y."""
    return {org: tls.create_ca("provledger-test", organisation=org) for org in ("org-x", "org-y")}


def test_one_consortium_ca_trusts_as_before(
    ca: tuple[bytes, bytes], node_a: tuple[bytes, bytes]
) -> None:
    trust = tls.peer_trust(tls.TlsMaterial(ca[0], *node_a), ())
    assert not trust.per_organisation
    assert trust.handshake_roots() == ca[0]
    assert trust.root_for("node-b") == ca[0]
    assert trust.issuer_problem("node-a", node_a[0]) is None


def test_a_certificate_naming_a_node_must_come_from_that_nodes_organisations_ca(
    organisations: dict[str, tuple[bytes, bytes]],
) -> None:
    root_x, root_y = organisations["org-x"][0], organisations["org-y"][0]
    node_x = tls.issue_node_certificate(*organisations["org-x"], "node-x")
    trust = tls.peer_trust(
        tls.TlsMaterial(root_x, *node_x), [("node-y", root_y), ("node-x", root_x)]
    )
    assert trust.per_organisation
    # The handshake trusts every organisation's root; a channel to node-y only Y's.
    handshake = x509.load_pem_x509_certificates(trust.handshake_roots())
    assert {c.subject.rfc4514_string() for c in handshake} == {
        "CN=org-x TLS CA,OU=provledger-test,O=provledger",
        "CN=org-y TLS CA,OU=provledger-test,O=provledger",
    }
    assert trust.root_for("node-y") == root_y
    assert trust.root_for("node-added-later") == trust.handshake_roots()
    genuine_y, _ = tls.issue_node_certificate(*organisations["org-y"], "node-y")
    assert trust.issuer_problem("node-y", genuine_y) is None
    assert trust.issuer_problem("node-x", node_x[0]) is None
    # X's CA issues a certificate claiming Y's node: it passes the handshake, not the binding.
    forged_y, _ = tls.issue_node_certificate(*organisations["org-x"], "node-y")
    assert trust.issuer_problem("node-y", forged_y) == (
        "the certificate for 'node-y' was not issued by its organisation's CA"
    )
    assert (
        trust.issuer_problem("node-z", genuine_y) == "no validator set names a TLS CA for 'node-z'"
    )


def test_the_genesis_roots_must_be_ca_roots_and_name_the_nodes_own_ca(
    organisations: dict[str, tuple[bytes, bytes]],
) -> None:
    root_x, root_y = organisations["org-x"][0], organisations["org-y"][0]
    material = tls.TlsMaterial(
        root_x, *tls.issue_node_certificate(*organisations["org-x"], "node-x")
    )
    with pytest.raises(tls.TlsMaterialError, match="another TLS CA for node-x"):
        tls.peer_trust(material, [("node-x", root_y), ("node-y", root_y)])
    leaf, _ = tls.issue_node_certificate(*organisations["org-y"], "node-y")
    with pytest.raises(
        tls.TlsMaterialError, match=r"TLS CA named for node-y: .* not a self-signed CA"
    ):
        tls.peer_trust(material, [("node-x", root_x), ("node-y", leaf)])


def test_peer_certificate_pem_is_the_one_client_certificate(node_a: tuple[bytes, bytes]) -> None:
    assert tls.peer_certificate_pem(FakeContext({"x509_pem_cert": [node_a[0]]})) == node_a[0]
    assert tls.peer_certificate_pem(FakeContext({})) is None
    assert tls.peer_certificate_pem(FakeContext({"x509_pem_cert": [node_a[0]] * 2})) is None
