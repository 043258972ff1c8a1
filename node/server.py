"""The node process: load config, genesis and keys, open the store, serve gRPC, produce blocks.

`run(config)` blocks until SIGINT or SIGTERM, then stops the server gracefully and closes the
store. A `kill -9` at any moment is also safe: every block is one synced LevelDB batch.

`serve` reads top-down: build the parts (ledger, peer network, consensus driver, servers),
start them, wait, stop them. The one circular need, between the peer network (which hands
peers' messages to consensus) and the consensus driver (which sends through the network), is
broken by making the network first, giving it to the driver, then `attach`ing the driver to
the network before the network can receive anything (see node/peers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import socket
from collections.abc import Iterator

import grpc
import uvicorn
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from provledger.node.admin import AdminServer
from provledger.node.backup import backup_to_socket
from provledger.node.config import NodeConfig, is_loopback, split_host_port
from provledger.node.consensus_driver import ConsensusDriver
from provledger.node.grpc_api import LedgerService, add_to_server
from provledger.node.grpc_connections import ConnectionGuard
from provledger.node.keyfile import load_key
from provledger.node.ledger import LedgerNode
from provledger.node.logs import configure_logging
from provledger.node.operations import NodeProbe, ReadinessFollower, create_operations_app
from provledger.node.peers import PeerNetwork, create_peer_server
from provledger.node.private_files import make_private_directory
from provledger.node.reflection import enable_reflection
from provledger.node.rest import create_app
from provledger.node.rest_connections import AsgiApp, RestLimits, uvicorn_config
from provledger.node.settings import (
    FILE_DESCRIPTORS_MIN,
    GRPC_CONCURRENT_STREAMS_MAX,
    GRPC_CONNECTION_IDLE_MS_MAX,
    GRPC_MESSAGE_SIZE_BYTES_MAX,
)
from provledger.node.store import Store
from provledger.node.tls import client_api_server_credentials, load_tls_material, peer_trust
from provledger.node.verifier import SignatureVerifier
from provledger.protocol.crypto import SigningKey
from provledger.protocol.genesis import Genesis, parse_genesis
from provledger.protocol.validators import validator_history
from provledger.v1 import api_pb2

log = logging.getLogger("provledger.node")

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_send_message_length", GRPC_MESSAGE_SIZE_BYTES_MAX),
    ("grpc.max_concurrent_streams", GRPC_CONCURRENT_STREAMS_MAX),
    ("grpc.max_connection_idle_ms", GRPC_CONNECTION_IDLE_MS_MAX),
    ("grpc.so_reuseport", 0),
]
SERVICE_NAME = api_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


class RestServer(uvicorn.Server):
    """uvicorn on the node's own event loop. The node owns SIGINT and SIGTERM: it stops this
    server itself (`should_exit`), so uvicorn must not take the signals over."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn before 0.29
        pass


def bind_rest_socket(address: str, what: str = "REST") -> socket.socket:
    """The REST API's listening socket, bound now so that a taken port fails the start
    cleanly (uvicorn would exit the process)."""
    host, port = split_host_port(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen on {address} ({what}): {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


async def start_rest(
    app: AsgiApp, sock: socket.socket, limits: RestLimits | None = None
) -> tuple[RestServer, asyncio.Task]:
    """Serve `app` (the auditor REST API) on `sock` from this loop; return once it accepts.
    Its connections and requests are bounded by node/rest_connections.py, within `limits`
    (node/settings.py's by default)."""
    server = RestServer(uvicorn_config(app, limits))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise OSError("the REST server stopped while starting")
        await asyncio.sleep(0.01)
    return server, task


async def stop_rest(server: RestServer, task: asyncio.Task) -> None:
    server.should_exit = True
    with contextlib.suppress(Exception):
        await task


async def serve(config: NodeConfig, verifier: SignatureVerifier) -> None:
    """Run the node until SIGINT or SIGTERM (or until consensus fails), then stop it."""
    genesis = parse_genesis(config.genesis_path.read_bytes())
    validator_key, _ = load_key(config.validator_key_path)
    make_private_directory(config.data_dir)  # the ledger is readable by the node alone
    store = Store(config.data_dir, genesis)
    try:
        # The node's id in the latest validator set (the genesis set until governance changes
        # it) must come with this key; a node outside the set follows without voting.
        latest = validator_history(store, genesis.validator_set).latest
        if latest.validators.public_key(config.node_id) not in (None, validator_key.public_key):
            raise ValueError(
                f"the validator key does not match {config.node_id} in the validator set "
                f"from height {latest.from_height}"
            )
        await _run(config, genesis, validator_key, store, verifier)
    finally:
        store.close()


async def _run(
    config: NodeConfig,
    genesis: Genesis,
    validator_key: SigningKey,
    store: Store,
    verifier: SignatureVerifier,
) -> None:
    # The parts, inside out: the ledger; the peer network (none in a consortium of one);
    # consensus, which drives the ledger and talks through the network. The network delivers
    # what peers send to the driver, attached once here, before the network can receive.
    node = LedgerNode(genesis, store, config.node_id, verifier)
    network = _peer_network(config, node) if config.peers else None
    driver = ConsensusDriver(node, validator_key, network, config.consensus)
    if network is not None:
        network.attach(driver)
    # What monitoring reads: metrics and readiness (node/operations.py, node/readiness.py).
    probe = NodeProbe(node, driver, network, config.readiness)
    node.metrics.watch(probe.gauges)

    # The servers. Every port is taken now, so a port in use fails the start cleanly.
    server, health_servicer = _grpc_server(node, config)
    rest_socket = bind_rest_socket(config.rest_listen) if config.rest_listen else None
    operations_listen = config.operations_listen
    ops_socket = bind_rest_socket(operations_listen, "operations") if operations_listen else None
    peer_server = None
    if network is not None:
        peer_server = create_peer_server()
        network.add_to_server(peer_server, config.peer_listen)
    admin = _admin_server(config, genesis, node)  # the socket too: a refusal fails the start

    # Start: serve peers and clients, then dial the peers and start consensus. Health says
    # NOT_SERVING (its library starts at SERVING) until the node has started: then
    # LedgerService says SERVING (live) and "" follows readiness (node/operations.py).
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    if peer_server is not None:
        await peer_server.start()
    await server.start()
    rest = (
        await start_rest(create_app(node, probe.readiness), rest_socket)
        if rest_socket is not None
        else None
    )
    ops = (
        await start_rest(create_operations_app(node, probe), ops_socket)
        if ops_socket is not None
        else None
    )
    log.info(
        "node %s serving gRPC on %s (%s)%s%s; chain %s at height %d",
        config.node_id,
        config.grpc_listen,
        "TLS" if config.grpc_tls_dir is not None else "PLAINTEXT, for development only",
        f", REST on {config.rest_listen}" if rest is not None else "",
        f", operations on {operations_listen}" if ops is not None else "",
        genesis.chain_id,
        store.head_height,
    )
    if network is not None:
        await network.start()
    driver.start()
    probe.mark_started()
    # SERVING once the line above is written: whoever waits for SERVING may read it. The
    # readiness of "" is judged first, so that a started node's "" already says it.
    follower = ReadinessFollower(probe, health_servicer, ("",))
    await follower.update()
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    following = asyncio.create_task(follower.run())

    # Run until a signal, or until a consensus task fails.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    stopping = asyncio.create_task(stop.wait())
    failing = asyncio.create_task(driver.failed.wait())
    try:
        await asyncio.wait((stopping, failing), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Stop: clients first, then consensus (a commit in progress finishes), then peers.
        stopping.cancel()
        failing.cancel()
        following.cancel()
        log.info("node %s stopping", config.node_id)
        if admin is not None:
            admin.stop()  # a backup in progress stops between chunks, before the store closes
        await health_servicer.enter_graceful_shutdown()
        if rest is not None:
            await stop_rest(*rest)
        if ops is not None:
            await stop_rest(*ops)
        await driver.stop()
        if network is not None:
            await network.stop()
        await server.stop(grace=2)
        if peer_server is not None:
            await peer_server.stop(grace=1)
    if driver.failed.is_set():
        raise SystemExit("consensus failed; the node stopped (see the log above)")


def _peer_network(config: NodeConfig, node: LedgerNode) -> PeerNetwork:
    """The peers: those configured are dialled; the validators of the sets from the next
    height on may call (the consensus driver keeps that up to date after every commit); with
    each organisation's CA root in the genesis, a certificate must come from its node's
    organisation's CA (ADR 015)."""
    material = load_tls_material(config.tls_dir)
    history = node.app.validator_history()
    height = node.store.head_height + 1
    return PeerNetwork(
        config.node_id,
        config.peers,
        material,
        history.validator_ids_from(height),
        trust=peer_trust(material, history.tls_cas_from(height), every_root=history.every_tls_ca()),
    )


def _admin_server(config: NodeConfig, genesis: Genesis, node: LedgerNode) -> AdminServer | None:
    """The admin socket (node/admin.py), serving backups of this node's store (ADR 021)."""
    if config.admin_socket is None:
        return None
    admin = AdminServer(
        config.admin_socket,
        {
            "backup": lambda out, stopping: backup_to_socket(
                node.store, genesis, config, out, stopping
            )
        },
    )
    admin.start()
    return admin


def _grpc_server(
    node: LedgerNode, config: NodeConfig
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """The client API (LedgerService), with health checking and reflection (v1 and v1alpha),
    bound to `config.grpc_listen`, over TLS with the node's certificate (plaintext only as
    the config allows it: on loopback, for development); not started. Health and reflection
    answer anyone; LedgerService reads need a token and every call is bounded per connection
    (node/grpc_api.py)."""
    server = grpc.aio.server(options=GRPC_OPTIONS)
    add_to_server(LedgerService(node), server, ConnectionGuard(config.grpc_limits))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, (SERVICE_NAME, health.SERVICE_NAME))
    listen = config.grpc_listen
    if config.grpc_tls_dir is not None:
        credentials = client_api_server_credentials(load_tls_material(config.grpc_tls_dir))
        bound = server.add_secure_port(listen, credentials)
    else:
        if not config.grpc_plaintext or not is_loopback(split_host_port(listen)[0]):
            raise ValueError(f"plaintext gRPC on {listen} is not allowed (see node/config.py)")
        log.warning("the client API on %s is PLAINTEXT: for development only", listen)
        bound = server.add_insecure_port(listen)
    if bound == 0:
        raise OSError(f"cannot listen on {listen}")
    return server, health_servicer


def raise_file_descriptor_limit(minimum: int = FILE_DESCRIPTORS_MIN) -> int:
    """Raise this process's soft RLIMIT_NOFILE to at least `minimum`, within the hard limit
    (never lower it); return the soft limit now in force. Many systems start processes with a
    soft limit of 1,024, fewer than the REST connections and LevelDB's files alone; past it
    asyncio stops accepting for a second at a time and LevelDB fails to open a table."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= minimum:
        return soft
    wanted = minimum if hard == resource.RLIM_INFINITY else min(minimum, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < minimum:
        log.warning(
            "open files are limited to %d (hard limit); the node wants %d for its connections "
            "and LevelDB",
            wanted,
            minimum,
        )
    return max(soft, wanted)


def run(config: NodeConfig, log_format: str = "text") -> None:
    configure_logging(log_format)  # node/logs.py: text, or JSON lines
    raise_file_descriptor_limit()
    verifier = SignatureVerifier()  # worker processes first: before gRPC starts threads
    try:
        asyncio.run(serve(config, verifier))
    finally:
        verifier.close()
