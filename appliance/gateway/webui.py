"""The web UI (webui/, built by Vite into webui/dist): its page at `/`, its files under `/assets/`, and the CA
certificate a device installs to trust the appliance's HTTPS (`/ca.pem`). All open without a token: the page is
what asks for the pairing code (appliance/gateway/auth.py lists these paths)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles

from appliance.config import MynahConfig
from appliance.gateway.errors import ApiError
from appliance.security.certs import cert_paths

DIST = Path(__file__).resolve().parents[2] / "webui" / "dist"
NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>Mynah</title>
<h1>The web UI is not built</h1>
<p>Build it with <code>cd webui &amp;&amp; npm ci &amp;&amp; npm run build</code> (the installer does this),
then reload. The API is up: see <a href="/docs">/docs</a>.</p>"""
# Not revalidated per request: Vite names the files by their content hash, so a new build has new names.
ASSET_CACHE = "public, max-age=31536000, immutable"


def mount_webui(app: FastAPI, config: MynahConfig, dist: Path = DIST) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_model=None)
    async def index() -> FileResponse | HTMLResponse:
        page = dist / "index.html"
        if not page.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503)
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/ca.pem")
    async def ca_certificate() -> FileResponse:
        ca = cert_paths(config).ca_cert
        if not ca.is_file():
            raise ApiError("certificate-missing", "this appliance serves plain HTTP and has no certificate yet", 404)
        return FileResponse(ca, media_type="application/x-pem-file", filename="mynah-ca.pem")

    app.include_router(router)
    app.mount("/assets", CachedStatic(directory=dist / "assets", check_dir=False), name="webui-assets")


class CachedStatic(StaticFiles):
    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = ASSET_CACHE
        return response
