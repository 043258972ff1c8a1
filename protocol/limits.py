"""Every limit in provledger, in one place, named with the unit last.

A limit is a promise about resources: nothing the node accepts from the network, keeps in
memory or returns to a client may exceed these. Change one here and every user sees it.
"""

# Events
EVENT_BODY_SIZE_BYTES_MAX = 64 * 1024
SIGNATURE_SIZE_BYTES = 64
PUBLIC_KEY_SIZE_BYTES = 32
KEY_ID_SIZE_BYTES = 16
DIGEST_SIZE_BYTES = 32
IDENTIFIER_LENGTH_CHARS_MAX = 128
TEXT_LENGTH_CHARS_MAX = 1024
METADATA_ENTRIES_MAX = 32
PARENTS_PER_DERIVATION_MAX = 64
GRANTS_PER_DERIVATION_MAX = 64
PURPOSES_PER_GRANT_MAX = 16
APPROVALS_PER_GOVERNANCE_MAX = 64
# A governance proposal (ADR 016) takes approvals for this long after the block that recorded
# it; from then on it is expired, and the change must be proposed again (another nonce).
PROPOSAL_OPEN_MS_MAX = 7 * 24 * 3_600_000  # seven days
# A threshold is more than numerator/denominator of the active members; the denominator is
# 1..this, so no threshold is written with needless precision.
THRESHOLD_DENOMINATOR_MAX = 1_000
CHAIN_ID_LENGTH_CHARS_MAX = 64
# A validator's organisation's TLS CA root in the genesis (PEM; a P-256 root is ~700 bytes).
TLS_CA_PEM_SIZE_BYTES_MAX = 8 * 1024
# A nonce is 1..this: 0 is proto3's "unset", and a value above a signed 64-bit integer is lost
# by clients whose JSON or database numbers are int64.
NONCE_MAX = 2**63 - 1
# The author's clock, informational but bounded: 9999-12-31T23:59:59.999Z, the last instant
# RFC 3339 (and Python's datetime) can write, so every client can show every event's time.
EVENT_TIMESTAMP_MS_MAX = 253_402_300_799_999

# Blocks
BLOCK_EVENTS_MAX = 2_000
# How far a proposal's time may run ahead of a validator's clock for it to prevote the block:
# clocks of a consortium's hosts agree within seconds, and a late proposal is not refused.
BLOCK_TIME_DRIFT_MS_MAX = 30_000
# A block's serialised size (ledger_pb2.Block: header, events, last commit, evidence): a proposer
# never builds more, a validator refuses more, proposed or synced (ADR 011). Events are counted
# as they are taken, so 2,000 events of 6 KiB (12 MB) make several blocks, not one unsendable.
# Every message that carries a block must fit the shell's 8 MiB gRPC message cap
# (GRPC_MESSAGE_SIZE_BYTES_MAX, node/settings.py), and the block is the bulk of it:
#   inside the budget:  header < 1 KiB; last commit < 64 KiB (129 validators, the most a node
#                       peers with, × ~330 bytes: a 64-character id, a 64-byte signature);
#                       evidence <= EVIDENCE_POOL_MAX × ~400 bytes, ~400 KiB; the rest, events.
#   around the block:   a proposal (PeerMessage.proposal) adds < 1 KiB (heights, rounds, proposer
#                       id, signature); a SyncedBlock or a GetBlock answer adds the block's own
#                       certificate, < 64 KiB.
# So the largest message is under 3 MiB + 65 KiB: under half the 8 MiB cap (a peer's 64 MiB
# queue holds 20 of them; relaying a proposal each second costs less) and under gRPC's default
# 4 MiB receive limit, so a stock client reads any block with GetBlock or SubscribeBlocks.
BLOCK_SIZE_BYTES_MAX = 3 * 1024 * 1024

# Validator sets (protocol/validators.py, docs/adr/013)
# A validator-set change committed in the block at height H signs from H + this (CometBFT's
# rule): the set of the next height is always known when a height starts.
VALIDATOR_CHANGE_DELAY_BLOCKS = 2
# The most validators a set may hold: a node peers with at most 128 others (PEERS_MAX,
# node/settings.py), and the block budget above counts a last commit of 129 signatures.
VALIDATORS_MAX = 129
# The most blocks with validator-set changes a verifier walks (a ValidatorChain's steps): each
# step is a checkpoint and its changes, a few KiB, so a walk stays a few MiB.
VALIDATOR_CHAIN_STEPS_MAX = 512

# The ledger application's memory (protocol/application.py, protocol/mempool.py)
MEMPOOL_EVENTS_MAX = 100_000
VERIFIED_EVENTS_REMEMBERED_MAX = 200_000
EXECUTED_BLOCKS_CACHED_MAX = 16
EVIDENCE_POOL_MAX = 1_000
# An equivocator's record lists its first equivocations and counts all (ADR 014).
EQUIVOCATIONS_LISTED_MAX = 64

# Queries
# The largest log index a paging cursor may name: a signed 64-bit integer, as on REST; the
# ledger's log holds far fewer events, and the store's 8-byte keys need room for index + 1.
LOG_INDEX_MAX = 2**63 - 1
HISTORY_PAGE_EVENTS_DEFAULT = 100
HISTORY_PAGE_EVENTS_MAX = 1_000
# A history page also ends before its events pass this many bytes (at least one event is
# always listed): 1,000 events of up to 64 KiB would not fit a gRPC answer (8 MiB).
HISTORY_PAGE_BYTES_MAX = 4 * 1024 * 1024
LINEAGE_DEPTH_DEFAULT = 16
LINEAGE_DEPTH_MAX = 64
LINEAGE_NODES_DEFAULT = 500
LINEAGE_NODES_MAX = 1_000
# Events of the assets' histories a PROV export reads for complaints, rulings and appeal
# decisions about them; past it the export is marked truncated.
PROV_HISTORY_EVENTS_SCANNED_MAX = 20_000
PROPOSALS_PAGE_ITEMS_DEFAULT = 100
PROPOSALS_PAGE_ITEMS_MAX = 500
OFFERS_PAGE_ITEMS_DEFAULT = 100
OFFERS_PAGE_ITEMS_MAX = 500
# Offers read from the store for one catalogue page, matching or not, before the page ends
# early (its cursor says where to go on): a search that matches little stays bounded.
OFFERS_SCANNED_PER_PAGE_MAX = 10_000
# Words a catalogue search may ask the title for (each must occur in it).
TITLE_WORDS_PER_SEARCH_MAX = 16
CASES_PAGE_ITEMS_DEFAULT = 100
CASES_PAGE_ITEMS_MAX = 500
# Cases read for one ListCases page, matching its filters or not, before the page ends early
# (its next_after_case_id says where to go on).
CASES_SCANNED_PER_PAGE_MAX = 10_000

# Market supervision
ASSETS_PER_MANDATE_MAX = 64
COMPLAINTS_PER_CASE_MAX = 16
EVIDENCE_DIGESTS_MAX = 32  # per complaint or investigation step
REMEDIES_PER_RULING_MAX = 16
# A case's events (complaints, opening, steps, ruling, appeal, votes), so that its case file
# fits a bundle with its orders' life cycles: steps past this are refused (case_full).
CASE_EVENTS_MAX = 256
# Votes on one appeal (one per regulator; a panel of k decides when k vote alike): a case's
# steps stop early enough to leave room for its ruling, its appeal and this many votes.
APPEAL_VOTES_PER_CASE_MAX = 64
APPEAL_WINDOW_MS_DEFAULT = 30 * 24 * 3_600_000  # thirty days, when the genesis names none
APPEAL_WINDOW_MS_MAX = 365 * 24 * 3_600_000
APPEAL_PANEL_SIZE_DEFAULT = 1
APPEAL_PANEL_SIZE_MAX = 15
# Data customs
ASSETS_PER_ASSESSMENT_MAX = 64
PURPOSES_PER_ASSESSMENT_MAX = 16
# Ancestors looked at when judging whether an assessment's scope covers an asset: a scope
# reached only beyond them does not cover it (the move is refused, never allowed wrongly).
ASSESSMENT_ANCESTORS_MAX = 1_000
# The shortest report interval: periods longer than a few blocks, so that a report can land in
# the period it is due. What bounds an assessment's record is REPORT_PERIODS_MAX (ADR 019).
REPORT_INTERVAL_MS_MIN = 5_000
# Reports an assessment can require: the periods from its signing to its expiry. An assessment
# owing more is refused (too_many_periods); this bounds its record and its overdue list.
REPORT_PERIODS_MAX = 1_000
# Shares and transfers recorded on one assessment; one more is refused (assessment_full).
TRANSFERS_PER_ASSESSMENT_MAX = 1_000
# Assessments a node reads when listing those with overdue reports (GET /v1/assessments).
ASSESSMENTS_SCANNED_PER_PAGE_MAX = 10_000

# X.509's upper bound on a common name (RFC 5280 ub-common-name); the node id is the CN.
NODE_ID_LENGTH_CHARS_MAX = 64
# Tolerated clock difference between issuer and verifier: certificates start this much early.
CERTIFICATE_CLOCK_SKEW_S_MAX = 300

# Consensus state
FUTURE_MESSAGES_MAX = 4_096
FUTURE_ROUNDS_MAX = 64  # proposals kept for rounds at most this far ahead of the current
VOTES_PER_VALIDATOR_MAX = 2  # per type and round: the first, and one conflicting (evidence)
ROUND_MAX = 10_000

# Auditor API
TOKEN_TTL_MS_DEFAULT = 3_600_000  # one hour
TOKEN_TTL_MS_MAX = 30 * 24 * 3_600_000  # thirty days
TOKEN_SIZE_BYTES_MAX = 1_024  # the whole `payload.signature` text
TOKEN_CLOCK_SKEW_MS_MAX = 60_000  # a token issued this much "in the future" is still valid
# Evidence bundles
BUNDLE_EVENTS_MAX = 2_000
# The governance events a bundle may carry besides its own events (the membership changes its
# verifier replays from the genesis, protocol/evidence_governance.py): far more than a
# consortium's membership changes in decades (a change takes at most 64 approvals).
BUNDLE_GOVERNANCE_EVENTS_MAX = 500
# Above the largest bundle BUNDLE_EVENTS_MAX + BUNDLE_GOVERNANCE_EVENTS_MAX events of the
# largest body can make (about 226 MiB: 87 KiB of base64 body, a signature and a 65-hash proof
# per event).
BUNDLE_SIZE_BYTES_MAX = 256 * 1024 * 1024
# A fork proof (protocol/fork_proof.py): two checkpoints of at most 129 signatures each, a
# consistency proof, and two walks of the validator sets (each a few MiB at most, see
# VALIDATOR_CHAIN_STEPS_MAX; a few KiB per validator change in practice).
FORK_PROOF_SIZE_BYTES_MAX = 32 * 1024 * 1024
