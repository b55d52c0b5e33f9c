"""POST /generate-avatar: speech said by an avatar, as an MP4; POST /api/avatars: an avatar prepared ahead of it.

Short speech is rendered while the client waits and answered with the MP4 itself; longer speech becomes a job
(202, the same job API as voice training) whose MP4 is at /api/jobs/{id}/result once it is done.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from appliance.gateway.deps import Config, Link
from appliance.gateway.errors import STATUS_BY_CODE, ApiError
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.schemas import ApiErrorOut, JobStartedOut
from ipc.errors import BusTimeout
from ipc.messages import (
    AvatarPrepared,
    AvatarVideo,
    ErrorReply,
    GenerateAvatar,
    GetJobResult,
    JobAccepted,
    JobResult,
    PrepareAvatar,
)

router = APIRouter(tags=["avatars"])

RESOLUTIONS = (512, 768, 1024)
# How long a render may be silent (the coordinator's own wait is SadTalker's timeout plus a minute).
RENDER_SLACK_S = 120.0
RESULT_TIMEOUT_S = 60.0
FRAMES_HEADER = "X-Mynah-Frames"
DURATION_HEADER = "X-Mynah-Duration"
BACKEND_HEADER = "X-Mynah-Lipsync-Backend"
ADJUSTED_HEADER = "X-Mynah-Avatar-Adjusted"  # what was done to the uploaded image (scaled, cropped), when anything
RENDER_HEADER = "X-Mynah-Render-Seconds"
# The face's codes; the rest are in appliance/gateway/errors.py (docs/errors.md lists them all).
STATUS_BY_AVATAR_CODE: dict[str, int] = {
    "avatar-too-large": 413,
    "avatar-unreadable": 422,
    "avatar-no-face": 422,
    "avatar-several-faces": 422,
    "avatar-too-small": 422,
    "avatar-face-too-small": 422,
    "avatar-unsupported-format": 422,
    "avatar-id-invalid": 422,
    "avatar-not-found": 404,
    "lipsync-not-ready": 503,
    "lipsync-unreachable": 503,
    "lipsync-worker-crashed": 503,
    "lipsync-worker-hung": 503,
    "lipsync-timeout": 504,
    "job-not-done": 409,
    "job-failed": 409,
    "job-no-result": 404,
}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorOut, "description": "avatar-not-found, voice-not-found"},
    413: {"model": ApiErrorOut, "description": "request-too-large, audio-too-large, avatar-too-large"},
    422: {
        "model": ApiErrorOut,
        "description": "invalid-request, empty-text, text-too-long, audio-empty, audio-undecodable, audio-too-short, "
        "audio-too-long, avatar-unreadable, avatar-no-face, avatar-several-faces, avatar-too-small, "
        "avatar-face-too-small, nothing-to-say",
    },
    503: {"model": ApiErrorOut, "description": "lipsync-not-ready, tts-not-ready, ..."},
}


def coded(code: str, message: str) -> ApiError:
    return ApiError(code, message, STATUS_BY_AVATAR_CODE.get(code) or STATUS_BY_CODE.get(code))


class AvatarOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    avatar_id: str = Field(description="Pass it to /generate-avatar as avatar_id to reuse this avatar")
    width: int = Field(description="The prepared (square) image the renderer draws")
    height: int
    face_box: tuple[int, int, int, int] = Field(description="x, y, width, height of the face in the prepared image")
    mouth_width_px: float
    lips: list[tuple[float, float]] = Field(description="The outer lip contour in the prepared image")
    adjusted: str = Field(description="What was done to the image (scaled, cropped); empty when nothing")
    cached: bool = Field(description="The same image was prepared before")


async def read_upload(upload: UploadFile | None, limit: int, code: str, what: str) -> bytes | None:
    """An uploaded file's bytes, read no further than one byte past `limit`."""
    if upload is None:
        return None
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise coded(code, f"{what} are limited to {limit} bytes")
    return data


@router.post(
    "/generate-avatar",
    response_class=Response,
    responses={
        **ERRORS,
        200: {"content": {"video/mp4": {}}, "description": "The video (short speech): H.264 30 fps + AAC"},
        202: {"model": JobStartedOut, "description": "A job (long speech): its MP4 is at /api/jobs/{id}/result"},
    },
    summary="Make a video of an avatar saying a text or an audio file",
)
async def generate_avatar(
    link: Link,
    config: Config,
    text: Annotated[str | None, Form(description="What the avatar says (or send `audio`)")] = None,
    audio: Annotated[UploadFile | None, File(description="Speech for the avatar to say (or send `text`)")] = None,
    avatar: Annotated[UploadFile | None, File(description="A portrait; default: the configured avatar")] = None,
    avatar_id: Annotated[str | None, Form(description="An avatar prepared with POST /api/avatars")] = None,
    resolution: Annotated[int | None, Form(description="The video's size: 512, 768 or 1024 (square)")] = None,
    voice: Annotated[str | None, Form(description="A voice id for `text`; default: the active voice")] = None,
) -> Response:
    spoken = (text or "").strip()
    if (audio is None) == (not spoken):
        raise coded("empty-text" if audio is None else "invalid-request", "send either text or an audio file")
    if len(spoken) > config.gateway.max_text_chars:
        raise coded("text-too-long", f"text is limited to {config.gateway.max_text_chars} characters")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise coded("invalid-request", f"resolution is one of {', '.join(map(str, RESOLUTIONS))}")
    sound = await read_upload(audio, config.trainer.max_upload_bytes, "audio-too-large", "audio files")
    image = await read_upload(avatar, config.lipsync.max_upload_bytes, "avatar-too-large", "avatar images")
    request = GenerateAvatar(
        text=spoken,
        audio_filename=((audio.filename or "audio") if audio is not None else "")[-200:],
        avatar_filename=((avatar.filename or "avatar") if avatar is not None else "")[-200:],
        avatar_id=avatar_id or None,
        resolution=resolution,
        voice_id=voice or None,
    )
    payload = [data for data in (sound, image) if data is not None]
    idle_s = config.lipsync.sadtalker.timeout_s + RENDER_SLACK_S
    reply = await link.last_reply(request, idle_timeout_s=idle_s, payload=payload)
    if isinstance(reply, ErrorReply):
        raise coded(reply.code, reply.message)
    if isinstance(reply, JobAccepted):
        status = "running" if reply.status == "running" else "queued"
        started = JobStartedOut(job_id=reply.job_id, status=status, events_url=f"/api/jobs/{reply.job_id}/events")
        location = {"Location": f"/api/jobs/{reply.job_id}/result"}
        return JSONResponse(started.model_dump(), status_code=202, headers=location)
    if not isinstance(reply, AvatarVideo):
        raise coded("lipsync-failed", "the video request got no answer")
    video, media_type = await fetch_result(link, reply.render_id)
    headers = {
        FRAMES_HEADER: str(reply.frames),
        DURATION_HEADER: f"{reply.duration_s:.3f}",
        BACKEND_HEADER: reply.backend,
        RENDER_HEADER: f"{reply.render_s:.3f}",
    }
    if reply.adjusted:
        headers[ADJUSTED_HEADER] = reply.adjusted.encode("ascii", "replace").decode()
    return Response(video, media_type=media_type, headers=headers)


async def fetch_result(link: CoordinatorLink, job_id: str) -> tuple[bytes, str]:
    """The file a job (or a direct render) made, and its media type."""
    replies = await link.open(GetJobResult(job_id), idle_timeout_s=RESULT_TIMEOUT_S)
    try:
        packet = await anext(replies)
    except BusTimeout as err:
        raise coded("coordinator-unavailable", f"the result did not come: {err}") from err
    finally:
        replies.close()
    message = packet.message
    if isinstance(message, ErrorReply):
        raise coded(message.code, message.message)
    if not isinstance(message, JobResult) or len(packet.payload) != 1:
        raise coded("unexpected-reply", f"GetJobResult was answered by {type(message).__name__}")
    return bytes(packet.payload[0]), message.media_type


@router.post(
    "/api/avatars",
    response_model=AvatarOut,
    responses=ERRORS,
    summary="Prepare an avatar from a portrait: the face and lips found in it, and an id to render it by",
)
async def prepare_avatar(
    link: Link, config: Config, image: Annotated[UploadFile, File(description="A portrait: PNG, JPEG or WebP")]
) -> AvatarOut:
    data = await read_upload(image, config.lipsync.max_upload_bytes, "avatar-too-large", "avatar images")
    assert data is not None
    if not data:
        raise coded("avatar-unreadable", "the image is empty")
    request = PrepareAvatar((image.filename or "avatar")[-200:])
    reply = await link.last_reply(request, idle_timeout_s=RENDER_SLACK_S, payload=[data])
    if isinstance(reply, ErrorReply):
        raise coded(reply.code, reply.message)
    if not isinstance(reply, AvatarPrepared):
        raise coded("unexpected-reply", "the avatar request got no answer")
    return avatar_out(reply)


def avatar_out(reply: AvatarPrepared) -> AvatarOut:
    info = reply.avatar
    return AvatarOut(avatar_id=info.avatar_id, width=info.width, height=info.height, face_box=info.face_box,
                     mouth_width_px=info.mouth_width_px, lips=list(info.lips), adjusted=info.adjusted,
                     cached=reply.cached)  # fmt: skip
