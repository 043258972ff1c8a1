"""Ed25519 keys, key ids and domain-separated signatures.

Every signature in provledger is over `domain || message`, where each domain is a fixed
ASCII tag ending in a NUL byte. A signature made for one purpose (an event, a precommit, a
governance approval) can therefore never be replayed as another.

Key generation takes its 32-byte seed as an argument: randomness comes from the caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from nacl.bindings import (
    crypto_sign,
    crypto_sign_open,
    crypto_sign_seed_keypair,
)
from nacl.exceptions import BadSignatureError, CryptoError

from provledger.protocol.limits import (
    KEY_ID_SIZE_BYTES,
    PUBLIC_KEY_SIZE_BYTES,
    SIGNATURE_SIZE_BYTES,
)

DOMAIN_EVENT = b"provledger/v1/event\x00"
DOMAIN_PREVOTE = b"provledger/v1/prevote\x00"
DOMAIN_PRECOMMIT = b"provledger/v1/precommit\x00"
DOMAIN_PROPOSAL = b"provledger/v1/proposal\x00"
DOMAIN_GOVERNANCE = b"provledger/v1/governance\x00"
DOMAIN_GENESIS = b"provledger/v1/genesis\x00"  # a founding member's signature (ADR 015)
# Not a signature's domain: the hash that names a governance proposal (ADR 016).
DOMAIN_GOVERNANCE_PROPOSAL = b"provledger/v1/governance-proposal\x00"
SEED_SIZE_BYTES = 32


def key_id(public_key: bytes) -> bytes:
    """The key id: the first 16 bytes of SHA-256(public key)."""
    return hashlib.sha256(public_key).digest()[:KEY_ID_SIZE_BYTES]


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key, built from a 32-byte seed."""

    seed: bytes
    public_key: bytes
    _secret: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        if len(seed) != SEED_SIZE_BYTES:
            raise ValueError(f"an Ed25519 seed is {SEED_SIZE_BYTES} bytes, got {len(seed)}")
        public_key, secret = crypto_sign_seed_keypair(seed)
        return cls(seed=seed, public_key=public_key, _secret=secret)

    @property
    def key_id(self) -> bytes:
        return key_id(self.public_key)

    def sign(self, domain: bytes, message: bytes) -> bytes:
        return crypto_sign(domain + message, self._secret)[:SIGNATURE_SIZE_BYTES]


def verify(public_key: bytes, domain: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `public_key`'s signature over `domain || message`."""
    if len(public_key) != PUBLIC_KEY_SIZE_BYTES or len(signature) != SIGNATURE_SIZE_BYTES:
        return False
    try:
        crypto_sign_open(signature + domain + message, public_key)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True
