"""Run the console with uvicorn, over HTTPS: the console carries personal data, and its
session cookie is Secure."""

from __future__ import annotations

import uvicorn

from mash.console.app import create_app
from mash.console.config import ConsoleConfig
from mash.logs import get_logger

log = get_logger(__name__)


def serve(cfg: ConsoleConfig) -> None:
    app = create_app(cfg)
    server = uvicorn.Server(uvicorn.Config(
        app, host=cfg.listen_host, port=cfg.listen_port,
        ssl_certfile=str(cfg.server_tls.cert), ssl_keyfile=str(cfg.server_tls.key),
        # uvicorn's own logging is off: its access log would print every URL, and our log
        # lines are structlog JSON (no personal data).
        log_config=None, access_log=False, log_level="warning", server_header=False,
        proxy_headers=False, timeout_graceful_shutdown=5))
    log.info("console_listening", url=f"https://{cfg.listen_host}:{cfg.listen_port}",
             broker=cfg.broker_address, policy=cfg.policy is not None,
             audit=cfg.audit is not None)
    server.run()
    log.info("console_stopped")
