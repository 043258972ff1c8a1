"""Key files and data folders are private; signers for one identity never share a nonce.

- Every key file (a member identity, a validator key, `keys new`, the CA's key; node TLS keys
  are in test_tls.py) is left 0600 whatever was there before, under any umask; every folder
  the node or `consortium init` makes for secrets or data is left 0700, an existing one
  narrowed.
- `EventSigner` starts at a random nonce within 1..2^62 and counts up; two signers for one
  identity, each given its own seeded random source, issue disjoint nonces.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from provledger.cli import consortium
from provledger.cli.client import NONCE_START_MAX, EventSigner, Identity
from provledger.cli.main import main
from provledger.node.keyfile import load_key, new_signing_key, save_key
from provledger.node.private_files import make_private_directory, write_private_file
from provledger.protocol.limits import NONCE_MAX
from provledger.v1 import ledger_pb2


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o000, 0o077])
def test_a_private_file_is_0600_over_a_world_readable_one_under_any_umask(
    tmp_path: Path, mask: int
) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"old")
    path.chmod(0o644)
    with umask(mask):
        write_private_file(path, b"new")
    assert (mode(path), path.read_bytes()) == (0o600, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]  # no temporary left


def test_a_private_file_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"untouched")
    target.chmod(0o644)
    link = tmp_path / "key.json"
    link.symlink_to(target)
    write_private_file(link, b"secret")
    assert not link.is_symlink()
    assert (mode(link), link.read_bytes()) == (0o600, b"secret")
    assert (mode(target), target.read_bytes()) == (0o644, b"untouched")


def test_save_key_over_an_existing_0644_file_leaves_it_0600(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text("{}")
    path.chmod(0o644)
    key = new_signing_key()
    save_key(path, key, member_id="agency-a")
    assert mode(path) == 0o600
    loaded, document = load_key(path)
    assert (loaded.public_key, document["member_id"]) == (key.public_key, "agency-a")


def test_keys_new_force_over_an_existing_0644_file_leaves_it_0600(tmp_path: Path) -> None:
    path = tmp_path / "my-key.json"
    path.write_text("{}")
    path.chmod(0o644)
    with umask(0o022), contextlib.redirect_stdout(io.StringIO()):
        assert main(["keys", "new", "--out", str(path), "--force"]) == 0
    assert mode(path) == 0o600
    assert "seed" in json.loads(path.read_text())


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_a_private_directory_is_made_0700_and_an_open_one_narrowed(
    tmp_path: Path, mask: int
) -> None:
    with umask(mask):
        made = tmp_path / "a" / "data"
        make_private_directory(made)
        existing = tmp_path / "existing"
        existing.mkdir()
        existing.chmod(0o755)
        (existing / "kept").write_text("x")
        make_private_directory(existing)
    assert (mode(made), mode(existing)) == (0o700, 0o700)
    assert (existing / "kept").read_text() == "x"


def test_consortium_init_leaves_keys_0600_and_folders_0700(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    directory.mkdir()
    directory.chmod(0o755)
    with umask(0o022):
        layout = consortium.init_consortium(directory, nodes=2, base_port=40_000)
    assert mode(directory) == 0o700
    folders = [directory / "ca", directory / "identities"]
    folders += [directory / f"node-{index}" for index in range(2)]
    folders += [directory / f"node-{index}" / "tls" for index in range(2)]
    assert {folder.name: mode(folder) for folder in folders} == {
        folder.name: 0o700 for folder in folders
    }
    keys = [directory / "ca" / "ca-key.pem", *layout.identities.values()]
    keys += [directory / f"node-{index}" / "validator-key.json" for index in range(2)]
    keys += [directory / f"node-{index}" / "tls" / "node-key.pem" for index in range(2)]
    assert {str(key): mode(key) for key in keys} == {str(key): 0o600 for key in keys}


# --- nonces ---------------------------------------------------------------------------------

EVENTS_PER_SIGNER = 20_000


def identity() -> Identity:
    return Identity("agency-a", "agency", "provledger-test", new_signing_key())


def nonce_of(signed: ledger_pb2.SignedEvent) -> int:
    return ledger_pb2.Event.FromString(signed.body).nonce


def test_two_signers_for_one_identity_share_no_nonce() -> None:
    member = identity()
    first = EventSigner(member, random_source=random.Random(1))
    second = EventSigner(member, random_source=random.Random(2))
    first_nonces = {first.next_nonce() for _ in range(EVENTS_PER_SIGNER)}
    second_nonces = {second.next_nonce() for _ in range(EVENTS_PER_SIGNER)}
    assert len(first_nonces) == len(second_nonces) == EVENTS_PER_SIGNER
    assert not first_nonces & second_nonces
    assert all(1 <= nonce <= NONCE_MAX for nonce in first_nonces | second_nonces)


def test_signed_events_carry_the_signers_nonces_in_order() -> None:
    signer = EventSigner(identity(), random_source=random.Random(3))
    nonces = [
        nonce_of(signer.event("asset_used", asset_id="a", purpose="p", operation=1))
        for _ in range(3)
    ]
    assert nonces == [signer.first_nonce, signer.first_nonce + 1, signer.first_nonce + 2]


def test_starts_are_random_within_the_range_that_leaves_room_to_count_up() -> None:
    source = random.Random(4)
    starts = [EventSigner(identity(), random_source=source).first_nonce for _ in range(1_000)]
    assert all(1 <= start <= NONCE_START_MAX for start in starts)
    assert NONCE_START_MAX + 2**62 - 1 <= NONCE_MAX  # 2^62 more nonces from any start
    assert len(set(starts)) == len(starts)
    assert min(starts) < NONCE_START_MAX // 4 and max(starts) > 3 * NONCE_START_MAX // 4


def test_without_a_source_signers_draw_from_the_system() -> None:
    starts = {EventSigner(identity()).first_nonce for _ in range(100)}
    assert len(starts) == 100


def test_a_fixed_start_is_kept_and_counting_past_the_range_is_refused() -> None:
    assert EventSigner(identity(), first_nonce=7).next_nonce() == 7
    assert EventSigner(identity(), first_nonce=0).next_nonce() == 0  # for the node to refuse
    last = EventSigner(identity(), first_nonce=NONCE_MAX)
    assert last.next_nonce() == NONCE_MAX
    with pytest.raises(ValueError):
        last.next_nonce()
