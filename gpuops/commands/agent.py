"""`gpuops agent`: serve this node's GPUs at /metrics in dcgm-exporter's format."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gpuops.commands._options import BOOK, FLEET, Failed, UsageError, add_command, interval_s

if TYPE_CHECKING:
    from gpuops.core.lifecycle.states import State

_DEFAULT_LISTEN = "127.0.0.1:9400"  # kept in step with core.agent.server.DEFAULT_LISTEN (tested)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "agent", takes=(*FLEET, *BOOK), source_default="nvml",
        help="serve this node's GPUs as Prometheus metrics (dcgm-exporter compatible)",
        description=(
            "Poll the GPUs in the background and serve them at /metrics with dcgm-exporter's metric "
            "names and labels, plus gpuops_ extras (gpuops_node_lifecycle from the history at --db, if there is one). "
            "Listens on 127.0.0.1 unless told otherwise."
        ),
    )
    parser.add_argument(
        "--listen", default=_DEFAULT_LISTEN, metavar="ADDR:PORT",
        help=f"address to serve on (default {_DEFAULT_LISTEN}; write 0.0.0.0:9400 to listen on every interface)",
    )
    parser.add_argument(
        "--interval", type=interval_s, default=1.0, metavar="S",
        help="seconds between polls, 0.05 to 86400 (default 1)",
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate (needs --tls-key)")
    parser.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--basic-auth-file", metavar="FILE",
        help="require HTTP basic auth; FILE has user:sha256:<hex> lines (printf '%%s' PASSWORD | sha256sum)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gpuops.core.agent.basic_auth import BasicAuth, BasicAuthFileError
    from gpuops.core.agent.server import ListenAddress, ListenAddressError, server_tls_context
    from gpuops.core.agent.service import Agent
    from gpuops.core.sources.base import SourceError
    from gpuops.core.sources.factory import open_source

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    try:
        listen = ListenAddress.parse(args.listen)
        tls = server_tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
        auth = BasicAuth.from_file(args.basic_auth_file) if args.basic_auth_file else None
        source = open_source(args.source, seed=args.seed, topology=args.topology)
    except (ListenAddressError, BasicAuthFileError, ValueError, SourceError) as exc:
        raise Failed(str(exc)) from None
    try:
        agent = Agent(
            source, listen, interval_s=args.interval, tls=tls, basic_auth=auth, lifecycle=_lifecycle(args.db),
        )
    except OSError as exc:
        raise Failed(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    agent.start()
    print(f"gpuops agent: serving {agent.url} (source {source.name})", flush=True)
    try:
        stop.wait()
    finally:
        agent.stop()
    return 0


def _lifecycle(db: Path | None) -> Callable[[], Mapping[str, State] | None] | None:
    """The node states from the history at --db, or at the default path when one is there; None
    (every node in production, nothing recorded) on a node without a history."""
    from gpuops.core.lifecycle.metrics import LifecycleFollower
    from gpuops.core.store.paths import default_db_path

    path = db or default_db_path()
    return LifecycleFollower(path).states if db is not None or path.exists() else None
