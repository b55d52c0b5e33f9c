"""POST /train-voice starts a voice-training job; /api/jobs/{id} reports it, its event stream follows it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import Response, StreamingResponse

from appliance.gateway.deps import Config, Link
from appliance.gateway.errors import ApiError
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.metrics import count_stream_error
from appliance.gateway.routes.avatars import fetch_result
from appliance.gateway.schemas import ApiErrorOut, JobEventOut, JobOut, JobStartedOut
from ipc.messages import CancelJob, ErrorReply, GetJob, JobAccepted, JobCancelRequested, JobDetail, TrainVoiceRequest

router = APIRouter(tags=["voices"])

# The answer waits for the trainer to check the sample (decode, speech in it): seconds, not the whole job.
ACCEPT_TIMEOUT_S = 120.0
EVENT_POLL_S = 0.25
ENDED = ("done", "failed", "cancelled")
# A form value that says no rather than stating what was agreed to.
_REFUSALS = frozenset({"", "0", "false", "no", "off", "none", "null"})
_AGREED = frozenset({"1", "true", "yes", "on"})
CONSENT_STATEMENT = (
    "The speaker agreed that this recording of their voice may be used to make a voice that speaks for them."
)
ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ApiErrorOut, "description": "voice-name-taken"},
    413: {"model": ApiErrorOut, "description": "request-too-large, audio-too-large"},
    422: {
        "model": ApiErrorOut,
        "description": "consent-required, voice-name-invalid, voice-sample-too-short, "
        "voice-sample-too-long, voice-sample-silent, voice-sample-no-speech, audio-undecodable, ...",
    },
    503: {"model": ApiErrorOut, "description": "trainer-not-ready, ..."},
}


def consent_statement(consent: str | None) -> str:
    """The statement stored with the voice: the form's own words, or a standard one for a plain 'yes'."""
    value = (consent or "").strip()
    if value.lower() in _REFUSALS:
        raise ApiError("consent-required", "training a voice needs the speaker's consent: send consent=yes or the "
                       "statement they agreed to")  # fmt: skip
    return CONSENT_STATEMENT if value.lower() in _AGREED else value


@router.post(
    "/train-voice", status_code=202, response_model=JobStartedOut, responses=ERRORS,
    summary="Make a voice from about a minute of the speaker's speech (any common audio format)",
)  # fmt: skip
async def train_voice(
    link: Link,
    config: Config,
    file: Annotated[UploadFile, File(description="About one minute of one person speaking")],
    name: Annotated[str, Form(description="What to call the voice")],
    consent: Annotated[
        str | None, Form(description="The speaker's consent: 'yes' or the statement they agreed to")
    ] = None,
    language: Annotated[str, Form(description="The language spoken, e.g. en")] = "en",
) -> JobStartedOut:
    statement = consent_statement(consent)
    limit = config.trainer.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError("audio-too-large", f"samples are limited to {limit} bytes")
    request = TrainVoiceRequest(name=name, language=language, consent=statement, filename=file.filename or "sample")
    reply = await link.last_reply(request, idle_timeout_s=ACCEPT_TIMEOUT_S, payload=[data])
    if isinstance(reply, ErrorReply):
        raise ApiError(reply.code, reply.message)
    if not isinstance(reply, JobAccepted):
        raise ApiError("trainer-failed", "the training request got no answer")
    status = "running" if reply.status == "running" else "queued"
    return JobStartedOut(job_id=reply.job_id, status=status, events_url=f"/api/jobs/{reply.job_id}/events")


async def job_detail(link: CoordinatorLink, job_id: str, events_after: int = -1) -> JobDetail:
    return await link.ask_for(GetJob(job_id, events_after), JobDetail)


def job_out(detail: JobDetail) -> JobOut:
    job = detail.job
    events = [JobEventOut.model_validate(e, from_attributes=True) for e in detail.events]
    return JobOut(job_id=job.job_id, kind=job.kind, status=job.status, step=job.step,
                  progress=round(job.progress, 4), error_code=job.error_code, error_message=job.error_message,
                  voice_id=job.voice_id, created_at=job.created_at, updated_at=job.updated_at,
                  events=events)  # fmt: skip


@router.get("/api/jobs/{job_id}", response_model=JobOut, responses={404: {"model": ApiErrorOut}}, summary="A job")
async def get_job(job_id: str, link: Link) -> JobOut:
    return job_out(await job_detail(link, job_id, events_after=-1))


@router.get(
    "/api/jobs/{job_id}/result",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The file the job made (a generate-avatar job's MP4)"},
        404: {"model": ApiErrorOut, "description": "job-not-found, job-no-result"},
        409: {"model": ApiErrorOut, "description": "job-not-done (still running), job-failed"},
    },
    summary="The file a finished job made",
)
async def job_result(job_id: str, link: Link) -> Response:
    data, media_type = await fetch_result(link, job_id)
    return Response(data, media_type=media_type)


@router.post("/api/jobs/{job_id}/cancel", response_model=JobOut, responses={404: {"model": ApiErrorOut}},
             summary="Cancel a job; what it made so far is removed")  # fmt: skip
async def cancel_job(job_id: str, link: Link) -> JobOut:
    await link.ask_for(CancelJob(job_id), JobCancelRequested)
    return job_out(await job_detail(link, job_id, events_after=-1))


@router.get(
    "/api/jobs/{job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, 404: {"model": ApiErrorOut}},
    summary="A job's events as server-sent events, from the first (or after Last-Event-ID) until it ends",
)
async def job_events(
    job_id: str, request: Request, link: Link, last_event_id: Annotated[str | None, Header()] = None
) -> StreamingResponse:
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else -1
    first = await job_detail(link, job_id, after)  # a missing job is a 404, not an empty stream
    return StreamingResponse(_follow(link, first, after, request), media_type="text/event-stream")


async def _follow(link: CoordinatorLink, detail: JobDetail, after: int, request: Request) -> AsyncIterator[str]:
    while True:
        for event in detail.events:
            after = event.seq
            data = JobEventOut.model_validate(event, from_attributes=True).model_dump()
            yield f"id: {event.seq}\nevent: {event.kind}\ndata: {json.dumps(data)}\n\n"
        if detail.job.status in ENDED and not detail.events:
            return
        await asyncio.sleep(EVENT_POLL_S)
        try:
            detail = await job_detail(link, detail.job.job_id, after)
        except ApiError as err:
            # The stream's own failure; a job's `failed` event is the job's outcome, not an API error.
            count_stream_error(request, err.code)
            yield f"event: error\ndata: {json.dumps({'code': err.code, 'message': err.message})}\n\n"
            return
