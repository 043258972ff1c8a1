"""The node's settings: limits on the resources of the I/O shell (sockets, queues, LevelDB,
worker processes, timers), named with the unit last.

The protocol's own limits (what an event, a block, a token, a query or a bundle may hold, and
what the ledger application keeps in memory: the mempool, verified signatures, executed blocks,
the evidence pool) are in protocol/limits.py; these are the shell's, and protocol/ never reads
them.
"""

# Node resources
GRPC_MESSAGE_SIZE_BYTES_MAX = 8 * 1024 * 1024
SUBMIT_BATCH_EVENTS_MAX = 1_000
SUBMIT_WAIT_TIMEOUT_MS_DEFAULT = 10_000
SUBMIT_WAIT_TIMEOUT_MS_MAX = 60_000
SUBMIT_WAITERS_MAX = 50_000
SUBSCRIBERS_MAX = 256
GRPC_CONCURRENT_STREAMS_MAX = 1_024  # calls open at once on one client connection
# Each client connection's calls (node/grpc_connections.py), unless [grpc] in the config says
# otherwise: a token bucket of this rate and burst, and a cap on the request bytes its calls
# in progress hold (a single request may be up to GRPC_MESSAGE_SIZE_BYTES_MAX, so more).
GRPC_CONNECTION_CALLS_PER_S_MAX = 2_000.0
GRPC_CONNECTION_CALL_BURST_MAX = 4_000
GRPC_CONNECTION_IN_FLIGHT_BYTES_MAX = 4 * GRPC_MESSAGE_SIZE_BYTES_MAX
GRPC_CONNECTIONS_TRACKED_MAX = 10_000  # connections whose buckets are kept (oldest dropped)
GRPC_CONNECTION_IDLE_MS_MAX = 300_000  # a client connection with no call for this long: closed

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

# The consensus shell
REBROADCAST_INTERVAL_MS = 1_000
STATUS_POLL_INTERVAL_MS = 2_000
FORKS_KEPT_MAX = 64  # fork proofs a node keeps from its peers' checkpoints (node/forks.py)
REFUSED_CHECKPOINTS_MAX = 1_024  # ids of conflicting checkpoints not kept, not checked again
STARTUP_STATUS_POLL_INTERVAL_MS = 50
STARTUP_STATUS_POLLS_MAX = 100
COMMIT_PAUSE_MS = 10
GOSSIP_FLUSH_MS = 5
GOSSIP_BATCH_EVENTS_MAX = 500
# Half the message cap: 500 events of up to 64 KiB (EVENT_BODY_SIZE_BYTES_MAX) would not fit it.
GOSSIP_BATCH_BYTES_MAX = GRPC_MESSAGE_SIZE_BYTES_MAX // 2
SYNC_BATCH_BLOCKS_MAX = 64

# Signature checks in worker processes
SIGNATURE_POOL_WORKERS_MAX = 4
SIGNATURE_POOL_BATCH_EVENTS_MIN = 16  # smaller batches are checked inline

# Store
STATE_CACHE_RECORDS_MAX = 200_000
HEADERS_CACHED_MAX = 4_096  # decoded block headers kept by the store
LEVELDB_WRITE_BUFFER_BYTES = 64 * 1024 * 1024
LEVELDB_BLOCK_CACHE_BYTES = 64 * 1024 * 1024
LEVELDB_BLOOM_FILTER_BITS = 10

# Integrity (node/integrity.py). At open the store checks the newest blocks only, so that a
# restart stays fast at any chain length: at most this many blocks, and no more blocks once
# this many of their events were checked (the head block is always checked whole).
OPEN_CHECK_BLOCKS_MAX = 64
OPEN_CHECK_EVENTS_MAX = 20_000
CHECK_FINDINGS_MAX = 50  # what `node check` reports at most (it stops looking after these)
DAMAGE_MARKER_POLL_INTERVAL_MS = 500  # `node run` stops a node whose store found damage
REPAIR_PEER_ATTEMPTS_MAX = 3  # `node repair` asks each peer at most this often for a batch

# The REST server
REST_PAGE_ITEMS_DEFAULT = 50
REST_PAGE_ITEMS_MAX = 500
REST_CURSOR_LENGTH_CHARS_MAX = 256
REST_LINEAGE_NODES_TOTAL_MAX = 100_000  # a paged lineage lists at most this many nodes
REST_GRACEFUL_SHUTDOWN_S = 2
# Connections and requests (node/rest_connections.py). A connection beyond either connection
# limit displaces the oldest idle one (of its address, or of the server); with none idle, it is
# closed at once. Idle connections never count against the request limit.
REST_CONNECTIONS_MAX = 1_024  # open connections in all
REST_CONNECTIONS_PER_ADDRESS_MAX = 64  # open connections from one IP address
REST_REQUESTS_IN_PROGRESS_MAX = 512  # requests being answered at once; more are answered 503
REST_REQUEST_RECEIVE_TIMEOUT_S = 10  # from ready for a request to its head (and body) in full
REST_KEEP_ALIVE_TIMEOUT_S = 5  # no request in progress and no byte for this long: closed
REST_REQUEST_HEAD_SIZE_BYTES_MAX = 16 * 1024  # a head still incomplete at this size: 400

# The process
# At start the node raises its soft RLIMIT_NOFILE to at least this (within the hard limit): REST
# connections, LevelDB's open files (1,000 by default), gRPC clients and peers all need one.
FILE_DESCRIPTORS_MIN = 8_192

# Backups (node/backup.py, node/admin.py; docs/operations.md, Backups and restore)
BACKUP_CHUNK_BYTES_TARGET = 1024 * 1024  # a chunk is closed once its entries reach this size
BACKUP_CHUNK_BYTES_MAX = 64 * 1024 * 1024  # a chunk larger is refused (one entry never is)
BACKUP_HEADER_BYTES_MAX = 16 * 1024 * 1024  # the header holds the walk of the validator sets
ADMIN_REQUEST_BYTES_MAX = 1_024  # one request line on the admin socket
ADMIN_ACCEPT_POLL_S = 0.2  # how often the admin socket's thread looks whether the node stops
ADMIN_CLIENT_TIMEOUT_S = 600  # a backup client waits this long for the node's next bytes
