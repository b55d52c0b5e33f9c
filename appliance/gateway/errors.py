"""API errors: every failure is JSON `{code, message}` with an HTTP status chosen by its code."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

# Codes not listed answer 502: a stage behind the gateway failed in a way the client cannot fix.
STATUS_BY_CODE: dict[str, int] = {
    "invalid-json": 400,
    "invalid-request": 422,
    "empty-text": 422,
    "text-too-long": 422,
    "request-too-large": 413,
    "not-found": 404,
    "method-not-allowed": 405,
    "session-not-found": 404,
    "cancelled": 409,
    "busy": 503,
    "coordinator-unavailable": 503,
    "coordinator-restarted": 503,
    "llm-not-ready": 503,
    "llm-unreachable": 503,
    "llm-worker-crashed": 503,
    "llm-worker-hung": 503,
    "llm-model-not-found": 503,
    "llm-overloaded": 503,
    "session-refused-budget": 503,  # the residency plan has no room for another live session
    "chat-timeout": 504,
    "audio-too-large": 413,
    "audio-empty": 422,
    "audio-undecodable": 422,
    "audio-no-audio-stream": 422,
    "audio-too-short": 422,
    "audio-too-long": 422,
    "no-speech": 422,
    "stt-bad-language": 422,
    "stt-not-ready": 503,
    "stt-unreachable": 503,
    "stt-worker-crashed": 503,
    "stt-worker-hung": 503,
    "stt-batch-worker-crashed": 503,
    "stt-batch-worker-hung": 503,
    "nothing-to-say": 422,
    "tts-empty-text": 422,
    "tts-not-ready": 503,
    "tts-unreachable": 503,
    "tts-worker-crashed": 503,
    "lipsync-not-ready": 503,
    "lipsync-worker-crashed": 503,
    "lipsync-worker-hung": 503,
    "tts-worker-hung": 503,
    "tts-timeout": 504,
    "voice-not-found": 404,
    "voice-needs-gpt-sovits": 409,
    "voice-unsupported": 409,
    "voice-name-invalid": 422,
    "voice-name-taken": 409,
    "voice-language-invalid": 422,
    "consent-required": 422,
    "voice-sample-too-short": 422,
    "voice-sample-too-long": 422,
    "voice-sample-silent": 422,
    "voice-sample-no-speech": 422,
    "voice-sample-unvoiced": 422,
    "voice-sample-too-few-clips": 422,
    "job-not-found": 404,
    "trainer-not-ready": 503,
    "trainer-unreachable": 503,
    "trainer-worker-crashed": 503,
    "trainer-worker-hung": 503,
    "disk-quota-exceeded": 507,
    "disk-full": 507,  # the data directory's disk: nothing more can be stored until space is freed
    "metrics-local-only": 403,
    "webrtc-offer-invalid": 422,
    "settings-invalid": 422,
    "setting-unknown": 422,
    "certificate-missing": 404,
    "webrtc-unavailable": 503,
    "webrtc-failed": 502,
}


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_BY_CODE.get(code, 502)


def error_response(code: str, message: str, status: int | None = None) -> JSONResponse:
    err = ApiError(code, message, status)
    return JSONResponse({"code": err.code, "message": err.message}, status_code=err.status)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.code, exc.message, exc.status)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response("invalid-json", "the request body is not valid JSON")
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return error_response("invalid-request", "; ".join(parts))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return error_response(code, str(exc.detail), exc.status_code)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
