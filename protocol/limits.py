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
CHAIN_ID_LENGTH_CHARS_MAX = 64

# Blocks
BLOCK_EVENTS_MAX = 2_000

# Node resources
MEMPOOL_EVENTS_MAX = 100_000
GRPC_MESSAGE_SIZE_BYTES_MAX = 8 * 1024 * 1024
SUBMIT_BATCH_EVENTS_MAX = 1_000
SUBMIT_WAIT_TIMEOUT_MS_DEFAULT = 10_000
SUBMIT_WAIT_TIMEOUT_MS_MAX = 60_000
SUBMIT_WAITERS_MAX = 50_000
SUBSCRIBERS_MAX = 256
GRPC_CONCURRENT_STREAMS_MAX = 1_024

# Queries
HISTORY_PAGE_EVENTS_DEFAULT = 100
HISTORY_PAGE_EVENTS_MAX = 1_000
LINEAGE_DEPTH_DEFAULT = 16
LINEAGE_DEPTH_MAX = 64
LINEAGE_NODES_DEFAULT = 500
LINEAGE_NODES_MAX = 1_000

# Peer transport
PEERS_MAX = 128
PEER_QUEUE_MESSAGES_MAX = 10_000
PEER_QUEUE_BYTES_MAX = 64 * 1024 * 1024
PEER_INBOUND_STREAMS_MAX = 4  # concurrent Gossip streams from one sender
SYNC_BLOCKS_MAX = 256  # blocks per SyncBlocks call
SYNC_BLOCKS_CHUNK_MAX = 16  # blocks read from the store at a time while serving SyncBlocks
PEER_RECONNECT_BACKOFF_MS_MIN = 50
PEER_RECONNECT_BACKOFF_MS_MAX = 2_000
PEER_CONNECT_TIMEOUT_MS = 5_000
PEER_SYNC_TIMEOUT_MS = 30_000
PEER_STATUS_TIMEOUT_MS = 2_000
PEER_KEEPALIVE_INTERVAL_MS = 10_000
PEER_KEEPALIVE_TIMEOUT_MS = 5_000

# Node certificates (mutual TLS between validators)
CA_CERTIFICATE_VALIDITY_DAYS = 3_650
NODE_CERTIFICATE_VALIDITY_DAYS = 1_095
# X.509's upper bound on a common name (RFC 5280 ub-common-name); the node id is the CN.
NODE_ID_LENGTH_CHARS_MAX = 64
# Tolerated clock difference between issuer and verifier: certificates start this much early.
CERTIFICATE_CLOCK_SKEW_S_MAX = 300

# The ledger application's memory
VERIFIED_EVENTS_REMEMBERED_MAX = 200_000
EXECUTED_BLOCKS_CACHED_MAX = 16
EVIDENCE_POOL_MAX = 1_000

# The consensus shell
REBROADCAST_INTERVAL_MS = 1_000
STATUS_POLL_INTERVAL_MS = 2_000
STARTUP_STATUS_POLL_INTERVAL_MS = 50
STARTUP_STATUS_POLLS_MAX = 100
COMMIT_PAUSE_MS = 10
GOSSIP_FLUSH_MS = 5
GOSSIP_BATCH_EVENTS_MAX = 500
SYNC_BATCH_BLOCKS_MAX = 64

# Consensus state
FUTURE_MESSAGES_MAX = 4_096
FUTURE_ROUNDS_MAX = 64  # proposals kept for rounds at most this far ahead of the current
VOTES_PER_VALIDATOR_MAX = 2  # per type and round: the first, and one conflicting (evidence)
ROUND_MAX = 10_000

# Signature checks in worker processes
SIGNATURE_POOL_WORKERS_MAX = 4
SIGNATURE_POOL_BATCH_EVENTS_MIN = 16  # smaller batches are checked inline

# Store
STATE_CACHE_RECORDS_MAX = 200_000
LEVELDB_WRITE_BUFFER_BYTES = 64 * 1024 * 1024
LEVELDB_BLOCK_CACHE_BYTES = 64 * 1024 * 1024
LEVELDB_BLOOM_FILTER_BITS = 10

# Auditor API
TOKEN_TTL_MS_DEFAULT = 3_600_000  # one hour
TOKEN_TTL_MS_MAX = 30 * 24 * 3_600_000  # thirty days
TOKEN_SIZE_BYTES_MAX = 1_024  # the whole `payload.signature` text
TOKEN_CLOCK_SKEW_MS_MAX = 60_000  # a token issued this much "in the future" is still valid
REST_PAGE_ITEMS_DEFAULT = 50
REST_PAGE_ITEMS_MAX = 500
REST_CURSOR_LENGTH_CHARS_MAX = 256
REST_LINEAGE_NODES_TOTAL_MAX = 100_000  # a paged lineage lists at most this many nodes
REST_GRACEFUL_SHUTDOWN_S = 2
REST_CONNECTIONS_MAX = 512  # concurrent connections and requests; more are answered 503

# Evidence bundles
BUNDLE_EVENTS_MAX = 2_000
# Above the largest bundle BUNDLE_EVENTS_MAX events of the largest body can make (about 181 MiB:
# 87 KiB of base64 body, a signature and a 65-hash proof per event).
BUNDLE_SIZE_BYTES_MAX = 256 * 1024 * 1024
