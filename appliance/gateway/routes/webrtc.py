"""`POST /api/webrtc/offer`: a live voice call over WebRTC (appliance/gateway/webrtc.py; docs/voice-chat.md).

The client sends its SDP offer (a microphone track, a receive-only video transceiver and a data channel named
`events`, ICE gathering complete) and gets the answer; the call then runs on the connection. aiortc is imported
when an offer comes, so a gateway without it still serves `WS /voice-chat`, the fallback, and answers offers
with `webrtc-unavailable`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from fastapi import APIRouter, Request

from appliance.gateway.deps import Config
from appliance.gateway.errors import ApiError
from appliance.gateway.metrics import count_stream_error
from appliance.gateway.routes.sessions import checked_session_id
from appliance.gateway.schemas import ApiErrorOut, WebRtcAnswerOut, WebRtcOfferIn

router = APIRouter(tags=["voice"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ApiErrorOut, "description": "auth-required, auth-invalid"},
    404: {"model": ApiErrorOut, "description": "session-not-found, voice-not-found"},
    422: {"model": ApiErrorOut, "description": "webrtc-offer-invalid, invalid-request"},
    503: {"model": ApiErrorOut, "description": "webrtc-unavailable (use WS /voice-chat), session-refused-budget, ..."},
}


class Peer(Protocol):
    async def close(self, reason: str) -> None: ...


class LivePeers:
    """The gateway's live WebRTC peers (`app.state.webrtc_peers`): each leaves when it closes; the gateway's
    shutdown closes the rest, so their sessions end on the coordinator too."""

    def __init__(self) -> None:
        self._peers: set[Peer] = set()

    def __len__(self) -> int:
        return len(self._peers)

    def add(self, peer: Peer) -> None:
        self._peers.add(peer)

    def discard(self, peer: Peer) -> None:
        self._peers.discard(peer)

    async def close_all(self, reason: str = "gateway-stopping") -> None:
        await asyncio.gather(*(peer.close(reason) for peer in list(self._peers)), return_exceptions=True)


@router.post("/api/webrtc/offer", response_model=WebRtcAnswerOut, responses=ERRORS,
             summary="Start a live voice call over WebRTC: an SDP offer in, the answer out")  # fmt: skip
async def webrtc_offer(body: WebRtcOfferIn, request: Request, config: Config) -> WebRtcAnswerOut:
    if body.type != "offer":
        raise ApiError("webrtc-offer-invalid", f"type is {body.type!r}: send an SDP offer")
    session_id = checked_session_id(body.session_id) if body.session_id is not None else None
    try:
        from appliance.gateway.webrtc import WebRtcPeer
    except ImportError as err:
        raise ApiError("webrtc-unavailable", f"WebRTC is not available here ({err}): use WS /voice-chat") from err
    state = request.app.state
    peers: LivePeers = state.webrtc_peers
    peer = WebRtcPeer(state.link, state.mic, state.speech_rings, config.webrtc,
                      on_error=lambda code: count_stream_error(request, code), on_closed=peers.discard)  # fmt: skip
    peers.add(peer)
    answer = await peer.open(body.sdp, session_id, body.voice, body.avatar, body.language)
    return WebRtcAnswerOut(sdp=answer, type="answer", session_id=peer.session_id)
