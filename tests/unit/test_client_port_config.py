"""The client API's [grpc] settings (node/config.py): TLS by default, plaintext only when a
development flag asks for it on a loopback address, and bounds per connection; and the names
`consortium init --host` puts in node certificates."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from provledger.cli.consortium import init_consortium, parse_hosts
from provledger.node.config import ConfigError, NodeConfig
from provledger.node.grpc_connections import ConnectionLimits
from provledger.node.tls import load_tls_material


def write_config(tmp_path: Path, grpc_section: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[node]\nid = "node-0"\ngenesis = "genesis.json"\nvalidator_key = "key.json"\n\n'
        f"[grpc]\n{grpc_section}"
    )
    return path


def test_the_client_api_is_served_over_tls_from_the_configured_folder(tmp_path: Path) -> None:
    config = NodeConfig.load(write_config(tmp_path, 'listen = "0.0.0.0:7050"\ntls_dir = "tls"\n'))
    assert config.grpc_tls_dir == tmp_path / "tls"
    assert not config.grpc_plaintext
    assert config.grpc_limits == ConnectionLimits()


def test_a_config_without_tls_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs tls_dir"):
        NodeConfig.load(write_config(tmp_path, 'listen = "127.0.0.1:7050"\n'))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "[::1]", "localhost"])
def test_plaintext_is_allowed_on_loopback_with_the_development_flag(
    tmp_path: Path, host: str
) -> None:
    config = NodeConfig.load(
        write_config(tmp_path, f'listen = "{host}:7050"\ninsecure_plaintext = true\n')
    )
    assert config.grpc_plaintext and config.grpc_tls_dir is None


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.7", "[::]", "ledger.example.org"])
def test_plaintext_is_refused_on_any_other_address(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="insecure_plaintext is refused"):
        NodeConfig.load(
            write_config(tmp_path, f'listen = "{host}:7050"\ninsecure_plaintext = true\n')
        )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('listen = "127.0.0.1:7050"\ntls_dir = "tls"\ninsecure_plaintext = true\n', "choose one"),
        ('listen = "127.0.0.1:7050"\ninsecure_plaintext = "yes"\n', "true or false"),
        ('listen = "127.0.0.1:7050"\ntls_dir = "tls"\nplaintext = true\n', "unknown"),
        ('listen = "nowhere"\ntls_dir = "tls"\n', "host:port"),
        ('listen = "127.0.0.1:7050"\ntls_dir = "tls"\nconnection_call_burst_max = 0\n', "limits"),
    ],
)
def test_bad_client_api_settings_are_refused_by_name(
    tmp_path: Path, section: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        NodeConfig.load(write_config(tmp_path, section))


def test_connection_bounds_are_read_from_the_config(tmp_path: Path) -> None:
    config = NodeConfig.load(
        write_config(
            tmp_path,
            'listen = "127.0.0.1:7050"\ntls_dir = "tls"\nconnection_calls_per_s_max = 0.5\n'
            "connection_call_burst_max = 3\nconnection_in_flight_bytes_max = 4096\n",
        )
    )
    assert config.grpc_limits.calls_per_s_max == 0.5
    assert config.grpc_limits.call_burst_max == 3
    assert config.grpc_limits.in_flight_bytes_max == 4096


def _names(certificate_pem: bytes) -> set[str]:
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return {str(name.value) for name in alternative.value}


def test_consortium_init_names_every_node_and_each_nodes_own_hosts(tmp_path: Path) -> None:
    hosts = parse_hosts(["ledger.example.org", "node-1=10.1.2.3", "node-0=a.example"], 2)
    layout = init_consortium(tmp_path / "c", 2, hosts=hosts)
    first, second = (load_tls_material(c.parent / "tls") for c in layout.node_configs)
    assert {"localhost", "127.0.0.1", "ledger.example.org", "a.example"} <= _names(
        first.certificate_pem
    )
    assert "10.1.2.3" not in _names(first.certificate_pem)
    assert {"ledger.example.org", "10.1.2.3"} <= _names(second.certificate_pem)
    assert "a.example" not in _names(second.certificate_pem)
    # Every config serves its client API over TLS, under the CA clients are told to trust.
    for config_path in layout.node_configs:
        config = NodeConfig.load(config_path)
        assert config.grpc_tls_dir is not None and not config.grpc_plaintext
    assert layout.ca_certificate.read_bytes() == first.ca_certificate_pem


def test_a_single_node_consortium_serves_tls_too(tmp_path: Path) -> None:
    layout = init_consortium(tmp_path / "c", 1)
    config = NodeConfig.load(layout.node_configs[0])
    assert config.grpc_tls_dir is not None and config.peers == {}
    load_tls_material(config.grpc_tls_dir)  # issued by the CA, with a matching key


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("node-7=a.example", "no node 'node-7'"),
        ("bad host", "neither an IP address nor a DNS name"),
        ("-leading.example", "neither"),
        ("a" * 64 + ".example", "neither"),
    ],
)
def test_bad_host_names_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hosts([value], 2)
