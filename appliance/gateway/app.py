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
from appliance.gateway.routes import chat, health, sessions, transcribe

DESCRIPTION = """Mynah's front door. Errors are JSON `{code, message}`; the codes are listed in docs/errors.md."""


def create_app(config: MynahConfig, link: CoordinatorLink | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.link = link or CoordinatorLink(config)
        app.state.mic = MicRing(config.paths.runtime_dir)
        await app.state.link.start()
        try:
            yield
        finally:
            await app.state.link.close()
            app.state.mic.close()

    app = FastAPI(title="Mynah", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.config = config
    install_error_handlers(app)
    # Multipart framing adds a little to the file itself.
    upload_limit = config.stt.limits.max_upload_bytes + 64 * 1024
    app.add_middleware(BodyLimit, max_bytes=config.gateway.max_body_bytes, per_path={"/api/transcribe": upload_limit})
    for module in (chat, health, sessions, transcribe):
        app.include_router(module.router)
    return app
