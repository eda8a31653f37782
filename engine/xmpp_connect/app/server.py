"""Serving the service: its store as configured, the ASGI app with its lifespan, the metrics port, and
``run`` (one process, or a core with API worker processes)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from starlette.applications import Starlette

from xmpp_connect.api.app import create_app
from xmpp_connect.api.metrics_route import metrics_route
from xmpp_connect.app.api_worker import HEALTH_FILE, INTAKE_FILE, WorkerPool
from xmpp_connect.app.heap import freeze_start_up_heap
from xmpp_connect.app.logging_setup import setup_logging
from xmpp_connect.app.metrics import prepare_worker_metrics
from xmpp_connect.app.openapi import openapi_document
from xmpp_connect.app.policy_reload import reload_on_sighup
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import default_config, load_config
from xmpp_connect.config.settings import LoggingConfig, ServiceConfig
from xmpp_connect.sending.intake import Intake
from xmpp_connect.store import chain
from xmpp_connect.store.postgres import PostgresStore
from xmpp_connect.store.sql import SqlStore, StoreOptions
from xmpp_connect.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

CORE_SOCKET = "core.sock"


def open_store(config: ServiceConfig) -> SqlStore:
    """The configured evidence store, migrated."""
    options = StoreOptions(metadata_only=config.privacy.metadata_only, redact_raw=config.privacy.redact_raw)
    if config.storage.kind == "postgres":
        assert config.storage.dsn is not None
        return PostgresStore(config.storage.dsn.reveal(), options, schema=config.storage.schema)
    assert config.storage.path is not None
    Path(config.storage.path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(config.storage.path, options)


class MetricsPort:
    """``GET /metrics`` on its own port (``metrics.port``), served from a thread with its own loop."""

    def __init__(self, service: AdapterService) -> None:
        import uvicorn

        config = service.config
        assert config.metrics.port is not None
        app = Starlette(routes=[metrics_route(service.render_metrics, config.metrics.token)])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=config.host, port=config.metrics.port, log_config=None, access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, name="xmpp-connect metrics", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def build_app(service: AdapterService, freeze_heap: bool = False) -> Starlette:
    """The app; its lifespan starts and stops the providers (then, with ``freeze_heap``, freezes the heap
    start-up built: only for a process that serves nothing else, not for tests sharing theirs)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await service.start(wait_for_accounts=False)
        if freeze_heap:
            freeze_start_up_heap()
        metrics = MetricsPort(service) if service.config.metrics.port is not None else None
        try:
            yield
        finally:
            if metrics is not None:
                metrics.stop()
            await service.stop()

    app = create_app(
        service.config,
        service,
        openapi_document(),
        lifespan=lifespan,
        webhooks=service.webhooks,
        render_metrics=service.render_metrics if service.config.metrics.port is None else None,
    )
    app.state.service = service
    return app


def warn_if_chain_interpreted() -> None:
    """Say so when the chain entry's compiled module is missing (a checkout run without an install)."""
    if not chain.COMPILED:
        log.warning(
            "the compiled chain entry module is not built (`pip install -e .` builds it): evidence appends"
            " take the slower interpreted path"
        )


def run(
    config_path: Path | None,
    data_dir: Path,
    host: str | None = None,
    port: int | None = None,
    api_workers: int = 0,
    log_format: str | None = None,
) -> None:
    """Run the HTTP service: the config file's accounts and tenants, or the embedded sandbox default.

    With ``api_workers``, this process is the core (XMPP sessions, evidence store, an HTTP server on a Unix
    socket in the data directory) and that many worker processes serve the public port (api_worker.py)."""
    import uvicorn

    config = load_config(config_path) if config_path else default_config(data_dir)
    if log_format is not None:
        config = replace(config, logging=LoggingConfig(format=log_format))
    setup_logging(log_format or config.logging.format)
    warn_if_chain_interpreted()
    if not config_path:
        log.info("embedded sandbox service; bearer token in %s", config.data_dir / "default-tenant.token")
    service = AdapterService(config, open_store(config))
    reload_on_sighup(service)
    host, port = host or config.host, port or config.port
    app = build_app(service, freeze_heap=True)
    if not api_workers:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
        return
    config.data_dir.mkdir(parents=True, exist_ok=True)
    prepare_worker_metrics(config.data_dir)
    service.take_intake(Intake(config.data_dir / INTAKE_FILE), config.data_dir / HEALTH_FILE)
    core_socket = config.data_dir / CORE_SOCKET
    core_socket.unlink(missing_ok=True)
    listener = socket.create_server((host, port))
    workers = WorkerPool(config, listener, str(core_socket), api_workers)
    workers.start()
    log.info("core on %s; %d API worker(s) on %s:%d", core_socket, api_workers, host, port)
    try:
        uvicorn.run(app, uds=str(core_socket), log_config=None, access_log=False)
    finally:
        workers.stop()
        listener.close()
