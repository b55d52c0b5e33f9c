"""The prepared avatars: list them, show one's image, and choose the one the appliance speaks with.

The gateway reads the lipsync worker's avatar cache (procs/lipsync/layout.py) for the list and the images; it
writes nothing there. Choosing an avatar is a setting (`lipsync.avatar`), applied by restarting lipsync.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from appliance.config import MynahConfig
from appliance.gateway.deps import Config, Link
from appliance.gateway.errors import ApiError
from appliance.gateway.routes.avatars import ERRORS, RENDER_SLACK_S, AvatarOut, avatar_out, coded
from appliance.gateway.routes.settings import apply_settings
from appliance.gateway.schemas import AvatarListItemOut, AvatarsOut
from appliance.settings import SettingsError, read_settings
from ipc.messages import AvatarPrepared, ErrorReply, PrepareAvatar
from procs.lipsync.layout import AVATAR_ID, AVATARS_DIR, IMAGE_FILE, INFO_FILE

router = APIRouter(prefix="/api/avatars", tags=["avatars"])
ACTIVE_KEY = "lipsync.avatar"


def _folder(config: MynahConfig, avatar_id: str) -> Path:
    if not AVATAR_ID.match(avatar_id):
        raise ApiError("avatar-id-invalid", f"{avatar_id[:40]!r} is not an avatar id", 422)
    folder = config.paths.data_dir / AVATARS_DIR / avatar_id
    if not (folder / IMAGE_FILE).is_file():
        raise ApiError("avatar-not-found", f"no prepared avatar {avatar_id}: upload the image again", 404)
    return folder


def active_avatar_id(config: MynahConfig) -> str | None:
    """The avatar chosen in the UI; None: the configured portrait (mynah.toml or the project's own)."""
    try:
        chosen = read_settings(config.paths.data_dir).get(ACTIVE_KEY)
    except SettingsError:
        return None
    if not chosen:
        return None
    path = Path(chosen)
    return path.parent.name if path.name == IMAGE_FILE and AVATAR_ID.match(path.parent.name) else None


@router.get("", response_model=AvatarsOut, summary="The prepared avatars, newest first, and the active one")
async def list_avatars(config: Config) -> AvatarsOut:
    root = config.paths.data_dir / AVATARS_DIR
    active = active_avatar_id(config)
    found: list[tuple[float, AvatarListItemOut]] = []
    for folder in root.iterdir() if root.is_dir() else ():
        if not AVATAR_ID.match(folder.name):
            continue  # staging and removed folders start with a dot
        try:
            info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
            made = (folder / IMAGE_FILE).stat().st_mtime
        except (OSError, ValueError):
            continue
        found.append((made, AvatarListItemOut(
            avatar_id=folder.name, width=int(info.get("width", 0)), height=int(info.get("height", 0)),
            active=folder.name == active, image_url=f"/api/avatars/{folder.name}/image",
        )))  # fmt: skip
    found.sort(key=lambda pair: pair[0], reverse=True)
    return AvatarsOut(avatars=[item for _, item in found], active_avatar_id=active)


@router.get("/{avatar_id}", response_model=AvatarOut, responses=ERRORS,
            summary="A prepared avatar: its face box and lip contour ('default': the configured portrait)")  # fmt: skip
async def describe_avatar(avatar_id: str, link: Link) -> AvatarOut:
    if avatar_id != "default" and not AVATAR_ID.match(avatar_id):
        raise ApiError("avatar-id-invalid", f"{avatar_id[:40]!r} is not an avatar id", 422)
    reply = await link.last_reply(PrepareAvatar("", None if avatar_id == "default" else avatar_id),
                                  idle_timeout_s=RENDER_SLACK_S)  # fmt: skip
    if isinstance(reply, ErrorReply):
        raise coded(reply.code, reply.message)
    if not isinstance(reply, AvatarPrepared):
        raise coded("unexpected-reply", "the avatar request got no answer")
    return avatar_out(reply)


@router.get(
    "/{avatar_id}/image",
    response_class=FileResponse,
    responses={**ERRORS, 200: {"content": {"image/png": {}}, "description": "The prepared (square) image"}},
    summary="A prepared avatar's image, as the renderer draws it ('default': the avatar spoken with by default)",
)
async def avatar_image(avatar_id: str, config: Config, link: Link) -> FileResponse:
    if avatar_id == "default":
        avatar_id = (await describe_avatar("default", link)).avatar_id
    return FileResponse(_folder(config, avatar_id) / IMAGE_FILE, media_type="image/png")


@router.post("/{avatar_id}/activate", response_model=AvatarsOut, responses=ERRORS,
             summary="Speak with this avatar ('default': the configured portrait); restarts lipsync")  # fmt: skip
async def activate_avatar(avatar_id: str, request: Request, config: Config) -> AvatarsOut:
    path = None if avatar_id == "default" else str(_folder(config, avatar_id) / IMAGE_FILE)
    try:
        stored = read_settings(config.paths.data_dir)
    except SettingsError as err:
        raise ApiError(err.code, err.message) from err
    apply_settings(request, config, stored, {ACTIVE_KEY: path})
    return await list_avatars(config)
