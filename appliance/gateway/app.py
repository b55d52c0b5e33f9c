"""The app factory: nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from appliance.config import MynahConfig
from appliance.gateway.errors import install_error_handlers
from appliance.gateway.limits import BodyLimit
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.mic import MicRing
from appliance.gateway.routes import avatars, chat, health, jobs, sessions, speak, transcribe, voices
from ipc.rings import RingReader

DESCRIPTION = """Mynah's front door. Errors are JSON `{code, message}`; the codes are listed in docs/errors.md."""


def create_app(config: MynahConfig, link: CoordinatorLink | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.link = link or CoordinatorLink(config)
        app.state.mic = MicRing(config.paths.runtime_dir)
        app.state.speech_rings = RingReader()
        await app.state.link.start()
        try:
            yield
        finally:
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
    for module in (chat, health, sessions, transcribe, speak, voices, jobs, avatars):
        app.include_router(module.router)
    return app
