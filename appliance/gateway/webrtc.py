"""The WebRTC transport of a live voice call (aiortc), beside WS /voice-chat (docs/voice-chat.md, "WebRTC").

- In: the client's microphone track. aiortc decodes its Opus to 48 kHz s16 (often stereo, 960-sample frames);
  it is resampled to 16 kHz mono for VoiceCall.mic.
- Out: an audio track (20 ms frames of 48 kHz mono s16, pts in samples) and a video track (30 fps, pts at
  90 kHz), both paced in real time from one start, so equal pts in seconds are the same moment on both. Audio
  is the master clock: the video shows the face frame whose sample index covers what the audio track is
  playing, and the idle loop between turns.
- Events: every JSON event of the protocol goes over the client's data channel `events` (created before its
  offer), plus WebRTC's own: `playout` (where a turn's speech starts on the audio track) and `av_sync` (how
  well its frames kept to it, when its speech has played out). `{"type": "bye"}` from the client ends the call.

A peer whose connection fails or closes, stays disconnected, never connects, or stops sending microphone
packets is closed together with its call: a vanished browser leaves no work and no task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import aioice.ice
import av
import cv2
import numpy as np
import numpy.typing as npt
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame as AvFrame

from appliance.config import WebRtcConfig
from appliance.gateway.errors import ApiError
from appliance.gateway.link import CoordinatorLink
from appliance.gateway.mic import MicRing
from appliance.gateway.voice import FRAME_SAMPLES, OUTPUT_RATE, Frame, VoiceCall
from ipc.messages import VoiceStarted
from ipc.rings import RingReader

log = logging.getLogger(__name__)

AUDIO_FRAME = 960  # 20 ms at 48 kHz
VIDEO_CLOCK = 90_000
FPS = 30
VIDEO_STEP = VIDEO_CLOCK // FPS
MIC_RATE = 16_000
REPORT_EVERY = OUTPUT_RATE // 10  # the playback position goes to the coordinator every 100 ms of speech
FIRST_FRAME_WAIT_S = 0.12  # a turn's speech waits at most this long for its first face frame
MARKS = 32  # audio frames remembered per turn (640 ms): where the video finds the sound of its moment
FRAMES_AHEAD = 60  # face frames held per turn (2 s at 30 fps); more are dropped and counted
IDLE_CACHE_BYTES = 32 * 1024 * 1024  # decoded idle-loop frames kept per call; the rest are decoded each time
CONNECT_TIMEOUT_S = 20.0
GONE_AFTER_S = 5.0  # disconnected, or no microphone packet, for this long: the client is gone
WATCH_EVERY_S = 0.25
EVENTS_WAITING = 512  # events held until the data channel opens; more are dropped and counted
EVENTS_CHANNEL = "events"
OFFER_INVALID = "webrtc-offer-invalid"

Yuv = npt.NDArray[np.uint8]  # an I420 (yuv420p) picture: (height * 3 / 2, width)
Played = Callable[[int, int], Awaitable[None]]


# --- loopback confinement ---------------------------------------------------------------------------------


def confine_host_addresses(addresses: Sequence[str]) -> None:
    """Make aioice offer only `addresses` as host candidates (none of them: its own discovery of the box's).

    aioice gathers host candidates from a module-level function, called by every Connection; replacing it is
    the one way to choose them, and it is per process (the gateway has one configuration). It also never
    offers 127.0.0.1, which tests need (docs/voice-chat.md, "WebRTC")."""
    if not addresses:
        aioice.ice.get_host_addresses = _DISCOVER
        return
    chosen = [ipaddress.ip_address(a) for a in addresses]

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [str(a) for a in chosen if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)]

    aioice.ice.get_host_addresses = configured


_DISCOVER = aioice.ice.get_host_addresses


def candidate_address(line: str) -> str | None:
    """The address of an SDP `a=candidate:` line (`foundation component transport priority address port ...`)."""
    if not line.startswith("a=candidate:"):
        return None
    parts = line.split()
    return parts[4] if len(parts) > 5 else ""


def keep_candidates(sdp: str, addresses: Sequence[str]) -> str:
    """The SDP without ICE candidates on other addresses (mDNS names included); all of them if none is set."""
    if not addresses:
        return sdp
    lines = [line for line in sdp.splitlines() if candidate_address(line) in (None, *addresses)]
    return "\r\n".join(lines) + "\r\n"


def checked_offer(sdp: str, addresses: Sequence[str]) -> str:
    """The offer as it will be used, or ApiError(webrtc-offer-invalid) saying why it cannot be."""
    if not sdp.lstrip().startswith("v=0"):
        raise ApiError(OFFER_INVALID, "sdp is not an SDP description (it starts with v=0)")
    if not any(line.startswith("m=audio") for line in sdp.splitlines()):
        raise ApiError(OFFER_INVALID, "the offer has no audio m-line: the microphone track is needed")
    kept = keep_candidates(sdp, addresses)
    if not any(candidate_address(line) for line in kept.splitlines()):
        where = f" on {', '.join(addresses)} (webrtc.host_addresses)" if addresses else ""
        raise ApiError(OFFER_INVALID, f"the offer has no ICE candidate{where}: send it after ICE gathering "
                                      "completes (no trickle)")  # fmt: skip
    return kept


# --- what the tracks play ---------------------------------------------------------------------------------


class MediaClock:
    """The start both outgoing tracks count from: pts 0 of each is when the first of them was asked for a frame."""

    def __init__(self) -> None:
        self.start: float | None = None

    def audio_pts(self, now: float) -> int:
        """The audio pts being played at `now`."""
        return 0 if self.start is None else max(0, int((now - self.start) * OUTPUT_RATE))

    async def wait(self, seconds: float) -> None:
        """Until `seconds` after the start (at once if that has passed: a late track catches up, pts stay even)."""
        if self.start is None:
            self.start = time.monotonic()
        delay = self.start + seconds - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class TurnPlayout:
    """One turn's speech and face on their way out, and how well they kept together."""

    turn_no: int
    pcm: bytearray = field(default_factory=bytearray)  # contiguous speech from sample 0
    early: dict[int, bytes] = field(default_factory=dict)  # chunks that came before a gap was filled
    first_audio_at: float = 0.0
    frames: dict[int, Yuv] = field(default_factory=dict)  # sample index -> face frame not yet passed
    emitted: int = 0  # samples the audio track has sent
    start_pts: int | None = None  # the audio pts of sample 0, once it plays
    marks: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=MARKS))  # pts, first, n
    total: int | None = None  # the turn's samples, known at its turn_end
    reported: int = 0
    shown: int = 0
    showing: int = -1
    late_frames: int = 0
    overflow_frames: int = 0
    max_offset: int = 0
    missed: int = 0  # video ticks whose covering frame was not here (the nearest one was shown)
    min_lead: int | None = None  # the least a face frame came ahead of its sound, in samples

    @property
    def available(self) -> int:
        return len(self.pcm) // 2

    def add(self, first_sample: int, pcm: bytes) -> None:
        if first_sample > self.available:
            self.early[first_sample] = pcm
            return
        if first_sample == self.available:
            self.pcm += pcm
        while (chunk := self.early.pop(self.available, None)) is not None:
            self.pcm += chunk

    def take(self, samples: int) -> bytes:
        chunk = bytes(self.pcm[self.emitted * 2 : (self.emitted + samples) * 2])
        self.emitted += len(chunk) // 2
        return chunk

    @property
    def finished(self) -> bool:
        return self.total is not None and self.emitted >= self.available

    def position(self, pts: int) -> int:
        """The sample of this turn playing at audio pts `pts`: from the audio frame sent for that moment, or
        past the last one while the speech lasts (the audio track may not have been asked for it yet)."""
        if not self.marks:
            return 0
        mark_pts, first, speech = self.marks[0]
        for mark in reversed(self.marks):
            if mark[0] <= pts:
                mark_pts, first, speech = mark
                break
        ahead = pts - mark_pts
        if ahead <= AUDIO_FRAME:
            return first + max(0, min(ahead, speech))
        return min(first + speech + ahead - AUDIO_FRAME, self.available)

    def pick(self, position: int) -> int:
        """The face frame to show at `position`: the one covering it, else the nearest; older ones are let go."""
        covering = [index for index in self.frames if index <= position]
        key = max(covering) if covering and position - max(covering) < FRAME_SAMPLES else None
        if key is None:
            self.missed += 1
            key = min(self.frames, key=lambda index: abs(index - position))
        for index in [index for index in self.frames if index < key]:
            del self.frames[index]
        return key


class IdleLoop:
    """The avatar's idle loop as the video track shows it: JPEGs decoded (to I420) when first shown, kept up to
    a byte budget, decoded again each time beyond it, so a call's memory stays bounded whatever the avatar's size."""

    def __init__(self, jpegs: list[bytes], budget: int = IDLE_CACHE_BYTES) -> None:
        self._jpegs = jpegs
        self._budget = budget
        self._decoded: dict[int, Yuv] = {}
        self._bytes = 0

    async def frame(self, number: int) -> Yuv | None:
        if not self._jpegs:
            return None
        index = number % len(self._jpegs)
        found = self._decoded.get(index)
        if found is None:
            found = await asyncio.to_thread(_decode_i420, self._jpegs[index])
            if found is not None and self._bytes + found.nbytes <= self._budget:
                self._decoded[index] = found
                self._bytes += found.nbytes
        return found


def _decode_i420(jpeg: bytes) -> Yuv | None:
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), np.uint8)


def _blank(width: int, height: int) -> Yuv:
    picture = np.full((height * 3 // 2, width), 128, np.uint8)
    picture[:height] = 16  # black, in the limited range the encoder assumes
    return picture


class SpeechTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, sink: WebRtcSink) -> None:
        super().__init__()
        self._sink = sink
        self._pts = 0

    async def recv(self) -> AvFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._sink.clock.wait(self._pts / OUTPUT_RATE)
        pcm, report = self._sink.next_speech(self._pts)
        samples = np.zeros((1, AUDIO_FRAME), np.int16)
        samples[0, : len(pcm) // 2] = np.frombuffer(pcm, np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = OUTPUT_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, OUTPUT_RATE)
        self._pts += AUDIO_FRAME
        if report is not None:
            await self._sink.report(*report)
        return frame


class FaceTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, sink: WebRtcSink) -> None:
        super().__init__()
        self._sink = sink
        self._index = 0

    async def recv(self) -> AvFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._sink.clock.wait(self._index / FPS)
        pts = self._index * VIDEO_STEP
        frame = av.VideoFrame.from_ndarray(await self._sink.picture(pts), format="yuv420p")
        frame.pts = pts
        frame.time_base = Fraction(1, VIDEO_CLOCK)
        self._index += 1
        return frame


class WebRtcSink:
    """The call's media onto the two outgoing tracks and its events onto the data channel (VoiceCall's
    MediaSink). Speech waits in per-turn buffers keyed by sample index until the audio track's clock reaches
    it; face frames wait beside it until the video track shows the one covering the audio's position."""

    def __init__(self) -> None:
        self.clock = MediaClock()
        self.speech = SpeechTrack(self)
        self.face = FaceTrack(self)
        self._turns: dict[int, TurnPlayout] = {}
        self._playing: TurnPlayout | None = None
        self._past = 0  # turns up to this number have played out or were cut: their late media is dropped
        self._idle = IdleLoop([])
        self._still = _blank(2, 2)
        self._played: Played | None = None
        self._channel: RTCDataChannel | None = None
        self._waiting: deque[str] = deque()
        self.late_frames = 0
        self.dropped_events = 0

    def start(self, started: VoiceStarted, idle_frames: list[bytes], played: Played) -> None:
        self._idle = IdleLoop(idle_frames)
        self._still = _blank(started.width, started.height)
        self._played = played

    def attach(self, channel: RTCDataChannel) -> None:
        """The client's `events` channel: what waited goes out when it opens."""
        self._channel = channel
        channel.on("open", self._flush)
        self._flush()

    def stop(self) -> None:
        self.speech.stop()
        self.face.stop()
        self._turns.clear()
        self._playing = None

    async def drain(self, within_s: float) -> None:
        """Until the data channel has sent what was given to it (the last events before a close), or `within_s`."""
        deadline = time.monotonic() + within_s
        channel = self._channel
        while channel is not None and channel.readyState == "open" and channel.bufferedAmount:
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.02)

    # --- MediaSink --------------------------------------------------------------------------------------

    async def event(self, payload: dict[str, Any]) -> None:
        if payload.get("type") == "turn_end" and (turn := self._turns.get(payload["turn"])) is not None:
            turn.total = int(payload.get("samples") or 0)
            if not turn.available:
                self._turns.pop(turn.turn_no)  # no speech came: nothing will play
                self._past = max(self._past, turn.turn_no)
        self.send(payload)

    async def audio(self, turn_no: int, first_sample: int, pcm: bytes) -> None:
        if turn_no <= self._past:
            return
        turn = self._turn(turn_no)
        if not turn.available and not turn.early:
            turn.first_audio_at = time.monotonic()
        turn.add(first_sample, pcm)

    async def frame(self, turn_no: int, sample_index: int, rgb: Frame) -> None:
        if turn_no <= self._past:
            self.late_frames += 1  # its speech has played out
            return
        turn = self._turn(turn_no)
        lead = sample_index - self._position(turn) if turn.start_pts is not None else None
        if lead is not None:
            turn.min_lead = lead if turn.min_lead is None else min(turn.min_lead, lead)
        if lead is not None and lead <= -FRAME_SAMPLES:
            self.late_frames += 1  # its sound has played already
            turn.late_frames += 1
            return
        if len(turn.frames) >= FRAMES_AHEAD:
            turn.overflow_frames += 1
            return
        turn.frames[sample_index] = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), np.uint8)

    async def interrupt(self, turn_no: int) -> None:
        turn = self._turns.get(turn_no)
        if turn is not None:
            sent = turn.marks[-1][0] + turn.marks[-1][2] if turn.marks else self.clock.audio_pts(time.monotonic())
            self._end(turn, sent, interrupted=True)
        self._past = max(self._past, turn_no)

    # --- the tracks' side ---------------------------------------------------------------------------------

    def next_speech(self, pts: int) -> tuple[bytes, tuple[int, int] | None]:
        """The speech for the audio frame at `pts` (b"": silence) and, when due, a playback position to report."""
        now = time.monotonic()
        turn = self._playing or self._ready(now)
        if turn is None:
            return b"", None
        if turn.start_pts is None:
            turn.start_pts = pts
            self._playing = turn
            waited = round(now - turn.first_audio_at, 4)  # for its first face frame, and the next 20 ms tick
            self.send({"type": "playout", "turn": turn.turn_no, "pts": pts, "waited_s": waited})
        first = turn.emitted
        pcm = turn.take(AUDIO_FRAME)
        turn.marks.append((pts, first, len(pcm) // 2))
        if turn.finished:
            self._end(turn, pts + len(pcm) // 2, interrupted=False)
            return pcm, (turn.turn_no, turn.emitted)
        if turn.emitted - turn.reported >= REPORT_EVERY:
            turn.reported = turn.emitted
            return pcm, (turn.turn_no, turn.emitted)
        return pcm, None

    async def report(self, turn_no: int, samples: int) -> None:
        """What the audio track has sent of a turn. The browser plays it after its jitter buffer (about 50-100
        ms more), which is not subtracted: the echo gate and barge-in's "heard" lean early by that much."""
        if self._played is not None:
            await self._played(turn_no, samples)

    async def picture(self, pts: int) -> Yuv:
        """The video frame at video pts `pts`: the playing turn's face frame at the audio's position, else idle."""
        turn = self._playing
        if turn is not None and turn.frames:
            position = turn.position(pts * OUTPUT_RATE // VIDEO_CLOCK)
            key = turn.pick(position)
            turn.max_offset = max(turn.max_offset, abs(key - position))
            if key != turn.showing:
                turn.showing = key
                turn.shown += 1
            return turn.frames[key]
        idle = await self._idle.frame(pts // VIDEO_STEP)
        return self._still if idle is None else idle

    # --- inside ---------------------------------------------------------------------------------------------

    def _turn(self, turn_no: int) -> TurnPlayout:
        found = self._turns.get(turn_no)
        if found is None:
            found = self._turns[turn_no] = TurnPlayout(turn_no)
        return found

    def _ready(self, now: float) -> TurnPlayout | None:
        """The next turn to play: the oldest with speech, once its first face frame is here (or was waited for)."""
        waiting = [t for t in self._turns.values() if t.available and t.start_pts is None]
        if not waiting:
            return None
        turn = min(waiting, key=lambda t: t.turn_no)
        if turn.frames or turn.total is not None or now - turn.first_audio_at >= FIRST_FRAME_WAIT_S:
            return turn
        return None

    def _position(self, turn: TurnPlayout) -> int:
        return turn.position(self.clock.audio_pts(time.monotonic()))

    def _end(self, turn: TurnPlayout, end_pts: int, *, interrupted: bool) -> None:
        self._turns.pop(turn.turn_no, None)
        if self._playing is turn:
            self._playing = None
        self._past = max(self._past, turn.turn_no)
        self.send({"type": "av_sync", "turn": turn.turn_no, "interrupted": interrupted, "samples": turn.emitted,
                    "start_pts": turn.start_pts, "end_pts": end_pts, "frames": turn.shown,
                    "late_frames": turn.late_frames, "overflow_frames": turn.overflow_frames,
                    "max_offset_samples": turn.max_offset, "missed_ticks": turn.missed,
                    "min_lead_samples": turn.min_lead})  # fmt: skip

    def send(self, payload: dict[str, Any]) -> None:
        """An event onto the data channel, or into the bounded wait for it to open."""
        if len(self._waiting) >= EVENTS_WAITING:
            self._waiting.popleft()
            self.dropped_events += 1
        self._waiting.append(json.dumps(payload))
        self._flush()

    def _flush(self) -> None:
        channel = self._channel
        while channel is not None and channel.readyState == "open" and self._waiting:
            channel.send(self._waiting.popleft())


# --- the peer ---------------------------------------------------------------------------------------------


@dataclass
class Liveness:
    """Whether a peer's client is still there, judged from what the peer shows over time (the clock passed in)."""

    opened_at: float
    connected: bool = False
    disconnected_since: float | None = None

    def gone(self, state: str, heard_at: float, now: float) -> str | None:
        """Why the client is gone, or None while it may still be there."""
        if state in ("failed", "closed"):
            return f"connection {state}"
        self.connected = self.connected or state == "connected"
        if not self.connected and now - self.opened_at > CONNECT_TIMEOUT_S:
            return f"not connected within {CONNECT_TIMEOUT_S:.0f} s"
        self.disconnected_since = (self.disconnected_since or now) if state == "disconnected" else None
        if self.disconnected_since is not None and now - self.disconnected_since > GONE_AFTER_S:
            return f"disconnected for {GONE_AFTER_S:.0f} s"
        # aiortc notices a silently vanished client only after ICE consent fails (about 30 s); its
        # microphone, which sends a packet every 20 ms, says so sooner.
        if heard_at and now - heard_at > GONE_AFTER_S:
            return f"no microphone packet for {GONE_AFTER_S:.0f} s"
        return None


class WebRtcPeer:
    """One client's WebRTC connection and the VoiceCall it carries, from its offer to its close."""

    def __init__(self, link: CoordinatorLink, mic: MicRing, rings: RingReader, config: WebRtcConfig, *,
                 on_error: Callable[[str], None], on_closed: Callable[[WebRtcPeer], None]) -> None:  # fmt: skip
        self._config = config
        self._on_error = on_error
        self._on_closed = on_closed
        self.sink = WebRtcSink()
        self.call = VoiceCall(link, mic, rings, self.sink)
        self.session_id = ""
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: nothing leaves the LAN
        self._mic: MediaStreamTrack | None = None
        self._heard_at = 0.0
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, offer: str, session_id: str | None, voice: str | None, avatar: str | None,
                   language: str | None) -> str:  # fmt: skip
        """Start the call and answer the offer (the answer's SDP); an ApiError says why not, leaving nothing open."""
        try:
            return await self._open(offer, session_id, voice, avatar, language)
        except BaseException:
            await self.close("refused")
            raise

    async def close(self, reason: str) -> None:
        """End the call (the coordinator frees its slot; its `closed` event goes out first) and the connection."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._started:
            await self.call.close(reason)
            await self.sink.drain(1.0)
        self.sink.stop()
        await self._pc.close()
        self._on_closed(self)
        self._closed.set()
        if self._started:
            log.info("webrtc peer of session %s closed: %s (late frames %d)", self.session_id, reason,
                     self.sink.late_frames + self.call.late_frames)  # fmt: skip

    async def _open(self, offer: str, session_id: str | None, voice: str | None, avatar: str | None,
                    language: str | None) -> str:  # fmt: skip
        confine_host_addresses(self._config.host_addresses)
        sdp = checked_offer(offer, self._config.host_addresses)
        self._pc.on("datachannel", self._on_channel)
        self._pc.on("track", self._on_track)
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as err:  # aiortc's SDP parser raises ValueError, KeyError, IndexError... on bad input
            raise ApiError(OFFER_INVALID, f"the offer cannot be used: {err!r}") from err
        self._pc.addTrack(self.sink.speech)
        if any(t.kind == "video" for t in self._pc.getTransceivers()):
            self._pc.addTrack(self.sink.face)
        started = await self.call.start(session_id, voice, avatar, language)
        self._started = True
        self.session_id = started.session_id
        self.sink.start(started, self.call.idle_frames, self.call.played)
        await self.sink.event({"type": "session", "session_id": started.session_id, "resumed": started.resumed,
                               "turns": started.turns, "sessions": started.sessions,
                               "max_sessions": started.max_sessions, "transport": "webrtc",
                               "avatar": {"id": started.avatar_id, "width": started.width, "height": started.height},
                               "sample_rate_in": MIC_RATE, "sample_rate_out": OUTPUT_RATE, "fps": FPS,
                               "audio_clock": OUTPUT_RATE, "video_clock": VIDEO_CLOCK})  # fmt: skip
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._watch()))
        if self._mic is not None:
            self._tasks.append(loop.create_task(self._listen(self._mic)))
        answer = self._pc.localDescription
        if answer is None:
            raise ApiError("webrtc-failed", "aiortc made no answer")
        log.info("webrtc peer of session %s answered", self.session_id)
        return answer.sdp

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._mic is None:
            self._mic = track

    def _on_channel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL:
            return
        self.sink.attach(channel)
        channel.on("message", self._on_message)

    def _on_message(self, message: str | bytes) -> None:
        control: Any = None
        with contextlib.suppress(ValueError):
            control = json.loads(message)
        if isinstance(control, dict) and control.get("type") == "bye":
            self._tasks.append(asyncio.get_running_loop().create_task(self.close("bye")))
            return
        self._on_error("invalid-message")
        self.sink.send({"type": "error", "code": "invalid-message",
                         "message": "the events channel takes only bye (docs/voice-chat.md)"})  # fmt: skip

    async def _listen(self, track: MediaStreamTrack) -> None:
        """The microphone: aiortc's decoded frames (48 kHz s16, often stereo) as 16 kHz mono PCM16 for the call."""
        resampler = av.AudioResampler(format="s16", layout="mono", rate=MIC_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self._heard_at = time.monotonic()
            if isinstance(frame, av.AudioFrame):
                for out in resampler.resample(frame):
                    await self.call.mic(out.to_ndarray().tobytes())

    async def _watch(self) -> None:
        """Close the peer when its client is gone, or its session ended."""
        liveness = Liveness(time.monotonic())
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            if self.call.done:
                why, reason = f"the session ended ({self.call.closed_reason})", "session-ended"
                break
            found = liveness.gone(self._pc.connectionState, self._heard_at, time.monotonic())
            if found is not None:
                why, reason = found, "client-gone"
                break
        log.info("webrtc peer of session %s: %s", self.session_id, why)
        await self.close(reason)
