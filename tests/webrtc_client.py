"""A script client of `POST /api/webrtc/offer` (docs/voice-chat.md, "WebRTC") that behaves like a browser.

Real aiortc on this side too: a microphone track that speaks queued utterances in real time (20 ms frames of
48 kHz, silence between them), a receive-only video transceiver and the `events` data channel, offered after
ICE gathering. It keeps what comes back with arrival times: the reply audio and the video frames by their
pts, and every event. The server's `playout` and `av_sync` events say which audio pts belong to which turn.
Like the gateway in tests, it offers and accepts only loopback candidates and uses no STUN server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import numpy.typing as npt
import soxr
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from appliance.gateway.webrtc import confine_host_addresses, keep_candidates
from tests.voice_client import EventLog

MIC_RATE = 16_000
OUTPUT_RATE = 48_000
AUDIO_FRAME = 960
VIDEO_CLOCK = 90_000
LOOPBACK = ("127.0.0.1",)
THUMB = 128  # received video frames are kept as THUMB x THUMB grey thumbnails

Samples = npt.NDArray[np.float32]
Thumb = npt.NDArray[np.uint8]


@dataclass
class Spoken:
    """An utterance queued into the microphone: where its speech truly ends on the client's clock."""

    start_sample: int  # on the microphone's 48 kHz timeline
    speech_end_at: float  # monotonic


@dataclass
class VideoIn:
    pts: int
    arrival: float
    thumb: Thumb


class Microphone(MediaStreamTrack):
    """Queued utterances (48 kHz float), then silence, paced in real time from its first frame."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: deque[Samples] = deque()
        self.sent = 0
        self.started_at = 0.0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if not self.started_at:
            self.started_at = time.monotonic()
        delay = self.started_at + self.sent / OUTPUT_RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = (np.clip(self._take(AUDIO_FRAME), -1, 1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OUTPUT_RATE
        frame.pts = self.sent
        frame.time_base = Fraction(1, OUTPUT_RATE)
        self.sent += AUDIO_FRAME
        return frame

    def queued(self) -> int:
        return sum(len(clip) for clip in self.queue)

    def _take(self, n: int) -> Samples:
        out = np.zeros(n, np.float32)
        filled = 0
        while filled < n and self.queue:
            head = self.queue[0]
            k = min(n - filled, len(head))
            out[filled : filled + k] = head[:k]
            filled += k
            if k == len(head):
                self.queue.popleft()
            else:
                self.queue[0] = head[k:]
        return out


class WebRtcClient(EventLog):
    def __init__(self, url: str, token: str, *, ca: Path | None = None, session_id: str | None = None) -> None:
        self.url = url
        self._token = token
        self._ca = ca
        self._session_id = session_id
        self.mic = Microphone()
        self.pc: RTCPeerConnection | None = None
        super().__init__()
        self.audio: list[tuple[int, float, npt.NDArray[np.int16]]] = []  # pts, arrival, mono PCM16
        self.video: list[VideoIn] = []
        self.session: dict[str, Any] = {}
        self.answer: dict[str, Any] = {}
        self.closed: dict[str, Any] | None = None
        self.timings: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._channel: Any = None

    async def __aenter__(self) -> WebRtcClient:
        confine_host_addresses(LOOPBACK)
        began = time.monotonic()
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(self.mic)
        pc.addTransceiver("video", direction="recvonly")
        self._channel = pc.createDataChannel("events")
        self._channel.on("message", self._on_event)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)
        await pc.setLocalDescription(await pc.createOffer())  # gathers the (loopback) candidates
        offered = time.monotonic()
        self.answer = await self._post_offer(pc.localDescription.sdp)
        answered = time.monotonic()
        answer = keep_candidates(self.answer["sdp"], LOOPBACK)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        try:
            self.session = await self.wait_for(lambda: next((e for e in self.of("session")), None), 30)
            await self.wait_for(lambda: self.mic.started_at, 10)
        except TimeoutError:
            await self.close(bye=False)
            raise
        self.timings = {"offer_s": offered - began, "answer_s": answered - offered,
                        "connected_s": self.timings.get("connected_at", answered) - answered}  # fmt: skip
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _post_offer(self, sdp: str) -> dict[str, Any]:
        body: dict[str, Any] = {"sdp": sdp, "type": "offer"}
        if self._session_id:
            body["session_id"] = self._session_id
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(self._ca)) if self._ca else True
        headers = {"Authorization": f"Bearer {self._token}"}
        async with httpx.AsyncClient(base_url=self.url, verify=verify, headers=headers, timeout=120) as http:
            response = await http.post("/api/webrtc/offer", json=body)
        if response.status_code != 200:
            assert self.pc is not None
            await self.pc.close()
            raise OfferRefused(response.status_code, response.json())
        found: dict[str, Any] = response.json()
        return found

    async def close(self, *, bye: bool = True) -> None:
        if self.pc is None:
            return
        if bye and self._channel is not None and self._channel.readyState == "open":
            self._channel.send(json.dumps({"type": "bye"}))
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda: self.closed, 10)
        await self._stop()
        await self.pc.close()
        self.pc = None

    async def drop(self, how: str) -> None:
        """Vanish without a goodbye. "close": the connection closes (a closed tab: DTLS and SCTP say so).
        "vanish": its sockets just close, nothing is said (a lost network); this reaches into aiortc's and
        aioice's internals, as no public API makes a peer vanish."""
        assert self.pc is not None
        await self._stop()
        if how == "close":
            await self.pc.close()
        else:
            transports = [t.sender.transport for t in self.pc.getTransceivers()]
            if self.pc.sctp is not None:
                transports.append(self.pc.sctp.transport)
            for dtls in transports:
                for protocol in dtls.transport.iceGatherer._connection._protocols:
                    protocol.transport.close()
        self.pc = None

    async def _stop(self) -> None:
        self.mic.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await task
        self._tasks = []

    # --- the microphone -------------------------------------------------------------------------------------

    def say(self, clip: Samples, speech_end_s: float) -> Spoken:
        """Queue a 16 kHz utterance; it plays into the microphone after what is queued, in real time."""
        start = self.mic.sent + self.mic.queued()
        self.mic.queue.append(soxr.resample(clip.astype(np.float32), MIC_RATE, OUTPUT_RATE).astype(np.float32))
        return Spoken(start, self.mic.started_at + start / OUTPUT_RATE + speech_end_s)

    # --- what comes back ----------------------------------------------------------------------------------

    def _on_state(self) -> None:
        if self.pc is not None and self.pc.connectionState == "connected":
            self.timings.setdefault("connected_at", time.monotonic())

    def _on_track(self, track: MediaStreamTrack) -> None:
        record = self._record_audio if track.kind == "audio" else self._record_video
        self._tasks.append(asyncio.get_running_loop().create_task(record(track)))

    async def _record_audio(self, track: MediaStreamTrack) -> None:
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame) and frame.pts is not None
            channels = len(frame.layout.channels)
            pcm = frame.to_ndarray().reshape(-1, channels)[:, 0].astype(np.int16)
            self.audio.append((frame.pts, time.monotonic(), pcm))
            self._changed.set()

    async def _record_video(self, track: MediaStreamTrack) -> None:
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.VideoFrame) and frame.pts is not None
            grey = frame.to_ndarray(format="gray")
            thumb = np.asarray(cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA), np.uint8)
            self.video.append(VideoIn(frame.pts, time.monotonic(), thumb))

    def _on_event(self, message: str | bytes) -> None:
        event = json.loads(message)
        self.events.append((time.monotonic(), event))
        if event["type"] == "closed":
            self.closed = event
        self._changed.set()

    def turn_event(self, kind: str, turn_no: int) -> dict[str, Any] | None:
        return next((e for e in self.of(kind) if e.get("turn") == turn_no), None)

    def turn_audio(self, turn_no: int) -> Samples:
        """Turn `turn_no`'s speech as received: the audio between its playout and its av_sync pts."""
        playout, sync = self.turn_event("playout", turn_no), self.turn_event("av_sync", turn_no)
        assert playout is not None and sync is not None, (playout, sync)
        start, end = playout["pts"], sync["end_pts"]
        out = np.zeros(end - start, np.float32)
        for pts, _, pcm in self.audio:
            lo, hi = max(pts, start), min(pts + len(pcm), end)
            if lo < hi:
                out[lo - start : hi - start] = pcm[lo - pts : hi - pts] / 32768.0
        return out

    def first_audio_at(self, turn_no: int) -> float:
        """When the audio frame holding the turn's first speech sample arrived."""
        playout = self.turn_event("playout", turn_no)
        assert playout is not None
        return min(t for pts, t, pcm in self.audio if pts + len(pcm) > playout["pts"])

    async def turn_heard(self, turn_no: int, within: float = 120.0) -> dict[str, Any]:
        """Until turn `turn_no` ended and its speech has arrived to its end (or it was cut): its turn_end."""

        def heard() -> dict[str, Any] | None:
            end = self.turn_event("turn_end", turn_no)
            if end is None or end["status"] != "done" or end["samples"] == 0:
                return end
            sync = self.turn_event("av_sync", turn_no)
            if sync is None or not self.audio:
                return None
            last_pts, _, pcm = self.audio[-1]
            return end if last_pts + len(pcm) >= sync["end_pts"] else None

        found: dict[str, Any] = await self.wait_for(heard, within)
        return found


class OfferRefused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('message')}")
        self.status = status
        self.body = body
