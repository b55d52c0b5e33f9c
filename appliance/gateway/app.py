"""The app factory: nothing is built at import time."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from appliance.config import MynahConfig
from appliance.gateway.auth import DeviceAccess, TokenAuth
from appliance.gateway.errors import install_error_handlers
from appliance.gateway.limits import BodyLimit
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.metrics import CountErrors, GatewayMetrics
from appliance.gateway.mic import MicRing
from appliance.gateway.routes import (
    avatar_gallery,
    avatars,
    chat,
    health,
    jobs,
    sessions,
    settings,
    speak,
    status,
    transcribe,
    voice_chat,
    voices,
)
from appliance.gateway.routes import devices as device_routes
from appliance.gateway.routes import metrics as metrics_routes
from appliance.gateway.routes import webrtc as webrtc_routes
from appliance.gateway.webui import mount_webui
from appliance.security.certs import own_origins
from appliance.security.pairing import current_code
from ipc.rings import RingReader

log = logging.getLogger(__name__)
DESCRIPTION = """Mynah's front door. Errors are JSON `{code, message}`; the codes are listed in docs/errors.md."""


def create_app(config: MynahConfig, link: CoordinatorLink | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.link = link or CoordinatorLink(config)
        app.state.mic = MicRing(config.paths.runtime_dir)
        app.state.speech_rings = RingReader()
        app.state.webrtc_peers = webrtc_routes.LivePeers()
        await app.state.link.start()
        _announce_pairing_code(config)
        try:
            yield
        finally:
            await app.state.webrtc_peers.close_all()  # their sessions end while the link is up
            await app.state.link.close()
            app.state.mic.close()
            app.state.speech_rings.close()

    app = FastAPI(title="Mynah", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.config = config
    install_error_handlers(app)
    # Multipart framing adds a little to the file itself.
    uploads = {"/api/transcribe": config.stt.limits.max_upload_bytes, "/train-voice": config.trainer.max_upload_bytes}
    # An avatar video's upload is an image, an audio file (as large as a voice sample), or both.
    uploads["/api/avatars"] = config.lipsync.max_upload_bytes
    uploads["/generate-avatar"] = config.lipsync.max_upload_bytes + config.trainer.max_upload_bytes
    per_path = {path: limit + 64 * 1024 for path, limit in uploads.items()}
    app.add_middleware(BodyLimit, max_bytes=config.gateway.max_body_bytes, per_path=per_path)
    modules = (chat, health, status, sessions, transcribe, speak, voices, jobs, avatars, avatar_gallery, settings,
               voice_chat, webrtc_routes)  # fmt: skip
    for module in modules:
        app.include_router(module.router)
    mount_webui(app, config)
    # LAN security (docs/architecture.md): a token on every route but the open ones, then CORS outermost, so
    # preflights are answered and refusals still carry CORS headers.
    app.include_router(device_routes.router)
    app.state.devices = DeviceAccess(config.paths.data_dir / "mynah.db")
    app.add_middleware(TokenAuth, devices=app.state.devices, enabled=config.security.require_token)
    origins = list(config.security.cors_origins) or own_origins(config)
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                       allow_headers=["Authorization", "Content-Type", "Last-Event-ID"])  # fmt: skip
    # Observability: /metrics, and every error answered counted by code, auth's and the body limit's included
    # (this middleware is outermost).
    app.state.metrics = GatewayMetrics()
    app.include_router(metrics_routes.router)
    app.add_middleware(CountErrors, metrics=app.state.metrics)
    return app


def _announce_pairing_code(config: MynahConfig) -> None:
    """Log the waiting pairing code, so `journalctl` and `mynah logs gateway` show it too."""
    waiting = current_code(config.paths.runtime_dir)
    if waiting is not None:
        left = max(0.0, waiting.expires_at - time.time())
        log.info("pairing code %s (valid %.0f s more): pair a device with it", waiting.code, left)
