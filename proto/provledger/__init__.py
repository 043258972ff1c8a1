"""provledger: a permissioned blockchain ledger node for data provenance.

The import packages live in the repository's top-level folders (see pyproject.toml):
``provledger.protocol`` (pure logic), ``provledger.node`` (the I/O shell),
``provledger.cli`` (the command) and ``provledger.v1`` (generated protobuf code).
"""

__version__ = "0.1.0"
