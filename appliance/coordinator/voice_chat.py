"""Live voice sessions: the streamed turn (DESIGN.md section 3, docs/voice-chat.md).

One VoiceSession per client connection (WS /voice-chat or a WebRTC peer, both in the gateway). Its microphone is
a live STT stream; each final transcript becomes a turn that streams through every stage at once: the LLM's
tokens go to speech synthesis as they come (the tts worker's splitter sends the first clause alone), each chunk
of speech goes to the face renderer and to the client, each frame to the client. The pipeline uses the same
routers a remote client would (chat, speech in, speech out, face) with the LOCAL peer (outbox.py).

Audio is the clock: the client plays the speech and reports how much it played; frames carry their sample index.
Barge-in: the user's voice starting (the VAD's start event) while an answer is being made or still playing
interrupts it: the LLM, TTS and face work stop, the client is told to stop playing at once, and the history keeps
only what was heard by then (heard.py). A pause in the middle of a question does not split it into two turns:
an utterance whose answer nobody heard a word of, or that was followed by the next before its transcript came
back, is asked together with the next one (question.py).

A connection that goes away (VoiceClose from the gateway) leaves nothing running: its turn is cut where it was
heard, its STT stream closed and its live-session slot given back. Resuming is opening again with the session id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from appliance.config import MynahConfig
from appliance.coordinator.avatars import AvatarRouter
from appliance.coordinator.chat import ChatRouter
from appliance.coordinator.face import FaceRouter
from appliance.coordinator.heard import OUTPUT_RATE, Spoken, heard_text
from appliance.coordinator.metrics import TurnMetrics
from appliance.coordinator.outbox import LOCAL, Outbox
from appliance.coordinator.question import Question
from appliance.coordinator.resources import Residency
from appliance.coordinator.speech_in import SpeechInRouter
from appliance.coordinator.speech_out import SpeechOutRouter
from appliance.logs import log_context
from appliance.store.conversations import ConversationStore
from appliance.store.db import StoreError
from ipc.codec import Buffer
from ipc.errors import PeerUnreachable
from ipc.messages import (
    AnimateDone,
    AnimateEnd,
    AnimateOpen,
    AnimateSpeech,
    AudioStreamClose,
    AudioStreamClosed,
    AudioStreamOpen,
    AvatarPrepared,
    ChatReply,
    ChatRequest,
    ChatStarted,
    ChatToken,
    ErrorReply,
    FinalTranscript,
    FrameReady,
    Message,
    PhonemeSpan,
    PlaybackPosition,
    ReplyText,
    SessionAdmitted,
    SpeakDone,
    SpeakEnd,
    SpeakOpen,
    SpeakText,
    SpeechAudio,
    SpeechPiece,
    StreamFault,
    VadEvent,
    VoiceAudio,
    VoiceClose,
    VoiceClosed,
    VoiceOpen,
    VoiceStarted,
    VoiceTurnEnded,
    VoiceTurnStarted,
)
from ipc.rings import RingReader

log = logging.getLogger(__name__)

STAGES = ("final", "first_token", "first_audio", "first_frame", "end")


@dataclass
class VoiceTurn:
    no: int
    user_text: str
    speech_end_at: float  # when the endpointer confirmed the end of the user's speech (monotonic, system-wide)
    chat_request: str
    turn_id: str = ""
    reply: str = ""
    status: str = ""  # "" while it runs, then done / interrupted / failed
    pieces: list[Spoken] = field(default_factory=list)
    unsent_phonemes: list[PhonemeSpan] = field(default_factory=list)  # for the face, with the next audio chunk
    samples: int = 0  # reply speech sent so far (its end on the turn's 48 kHz timeline)
    played: int = 0  # what the client said it played
    played_at: float = 0.0
    first_audio_at: float = 0.0
    llm_done: bool = False
    speech_done: bool = False
    face_done: bool = False
    frames: int = 0
    dropped_frames: int = 0
    lost_audio: int = 0
    trace: dict[str, float] = field(default_factory=dict)
    held_audio: list[tuple[int, bytes]] = field(default_factory=list)  # sequential: until all of it is spoken

    @property
    def speech_request(self) -> str:
        return f"{self.turn_id}:speech"

    @property
    def face_request(self) -> str:
        return f"{self.turn_id}:face"

    def mark(self, stage: str, now: float) -> None:
        self.trace.setdefault(stage, round(max(0.0, now - self.speech_end_at), 4))

    def position(self, now: float) -> int:
        """How much of the speech the client has played by `now`: its last report carried on at the speech's
        rate, or, before any report, the time since the first audio went out."""
        since = (self.played, self.played_at) if self.played_at else (0, self.first_audio_at)
        if not since[1]:
            return 0
        return min(self.samples, since[0] + int((now - since[1]) * OUTPUT_RATE))

    def playing(self, now: float) -> bool:
        """Whether the user may still be hearing this answer (so speaking over it is a barge-in)."""
        if not self.status:
            return True
        return self.status == "done" and self.position(now) < self.samples


@dataclass
class VoiceSession:
    stream_id: str
    session_id: str
    peer: bytes
    request_id: str
    voice_id: str | None
    avatar_id: str
    turns: int = 0
    sequential: bool = False
    turn: VoiceTurn | None = None
    question: Question = field(default_factory=Question)  # what the user is asking, while they go on asking it
    closing: bool = False


class VoiceChats:
    def __init__(
        self,
        config: MynahConfig,
        outbox: Outbox,
        store: ConversationStore,
        chat: ChatRouter,
        speech_in: SpeechInRouter,
        speech_out: SpeechOutRouter,
        face: FaceRouter,
        avatars: AvatarRouter,
        residency: Residency,
        metrics: TurnMetrics,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._store = store
        self._chat = chat
        self._speech_in = speech_in
        self._speech_out = speech_out
        self._face = face
        self._avatars = avatars
        self._residency = residency
        self._metrics = metrics
        self._sessions: dict[str, VoiceSession] = {}
        self._hung_up: deque[str] = deque(maxlen=64)  # streams closed while they were still being opened
        self._rings = RingReader()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    # --- opening and closing ------------------------------------------------------------------------------

    async def open(self, peer: bytes, request_id: str, request: VoiceOpen) -> None:
        with log_context(session_id=request.session_id):
            reply = await self._open(peer, request_id, request)
        if reply is not None:
            await self._outbox.answer(peer, reply, request_id)

    async def _open(self, peer: bytes, request_id: str, request: VoiceOpen) -> Message | None:
        """Start the session, or the ErrorReply that says why not."""
        if request.stream_id in self._sessions:
            return ErrorReply("invalid-request", f"stream {request.stream_id} is open")
        try:
            session_id = request.session_id or self._store.create_session()
            self._store.require(session_id)
            turns = sum(1 for line in self._store.history(session_id) if line.role == "user")
        except StoreError as err:
            return ErrorReply(err.code, err.message)
        for other in [s for s in self._sessions.values() if s.session_id == session_id]:
            await self._close(other, "resumed-elsewhere")
        admitted = await self._residency.admit(session_id)
        if not isinstance(admitted, SessionAdmitted):
            return admitted if isinstance(admitted, ErrorReply) else ErrorReply("session-refused", "not admitted")
        avatar = await self._avatars.describe(request.avatar_id)
        if not isinstance(avatar, AvatarPrepared):
            await self._residency.release_session(session_id)
            return avatar if isinstance(avatar, ErrorReply) else ErrorReply("avatar-not-found", "no such avatar")
        if request.stream_id in self._hung_up:  # the client gave up while this session was being admitted
            await self._residency.release_session(session_id)
            return ErrorReply("session-closed", "the client closed the session before it started")
        info = avatar.avatar
        session = VoiceSession(request.stream_id, session_id, peer, request_id, request.voice_id, info.avatar_id,
                               turns=turns, sequential=request.sequential)  # fmt: skip
        self._sessions[session.stream_id] = session
        self._outbox.register(session.stream_id, partial(self._on_stt, session))
        idle = idle_dir(self._config.paths.data_dir, info.avatar_id)
        started = VoiceStarted(session_id, session.stream_id, bool(request.session_id), turns, info.avatar_id,
                               info.width, info.height, str(idle), admitted.sessions,
                               admitted.max_sessions)  # fmt: skip
        await self._tell(session, started)
        await self._speech_in.open_stream(
            LOCAL,
            session.stream_id,
            AudioStreamOpen(session.stream_id, request.language, speculative=not request.sequential),
        )
        log.info("voice session %s open (%s of %s live)", session_id, admitted.sessions, admitted.max_sessions)
        return None

    async def hang_up(self, request: VoiceClose) -> None:
        session = self._sessions.get(request.stream_id)
        if session is not None:
            await self._close(session, request.reason or "closed")
        else:
            self._hung_up.append(request.stream_id)

    async def close_all(self, reason: str) -> None:
        for session in list(self._sessions.values()):
            await self._close(session, reason)

    async def _close(self, session: VoiceSession, reason: str) -> None:
        if session.closing:
            return
        session.closing = True
        with log_context(session_id=session.session_id):
            now = time.monotonic()
            if session.turn is not None and session.turn.playing(now):
                await self._interrupt(session, session.turn, now, hold=False)
            self._sessions.pop(session.stream_id, None)
            self._outbox.unregister(session.stream_id)
            await self._speech_in.close_stream(AudioStreamClose(session.stream_id))
            await self._residency.release_session(session.session_id)
            with contextlib.suppress(PeerUnreachable):
                await self._outbox.send(session.peer, VoiceClosed(session.stream_id, session.session_id, reason),
                                        session.request_id)  # fmt: skip
            log.info("voice session %s closed: %s", session.session_id, reason)

    def playback(self, report: PlaybackPosition) -> None:
        session = self._sessions.get(report.stream_id)
        turn = session.turn if session else None
        if session is None or turn is None or turn.no != report.turn_no:
            return
        if report.played <= 0:
            return  # not playing yet (its buffer is filling): the clock starts with its first report of sound
        now = time.monotonic()
        turn.played, turn.played_at = max(turn.played, min(report.played, turn.samples)), now
        if turn.status == "done" and turn.played >= turn.samples:
            session.turn = None  # heard to the end

    # --- speech in ----------------------------------------------------------------------------------------

    async def _on_stt(self, session: VoiceSession, message: Message, payload: Sequence[Buffer]) -> None:
        with log_context(session_id=session.session_id):
            match message:
                case VadEvent(kind="start"):
                    session.question.began(message.utterance)
                    now = time.monotonic()
                    if session.turn is not None and session.turn.playing(now):
                        log.info("barge-in on turn %s", session.turn.turn_id or session.turn.no)
                        await self._interrupt(session, session.turn, now, hold=True)
                    await self._tell(session, message)
                case FinalTranscript():
                    await self._tell(session, message)
                    now = time.monotonic()
                    if message.text.strip() and session.turn is not None and session.turn.playing(now):
                        await self._interrupt(session, session.turn, now, hold=True)  # words its start missed
                    if question := session.question.transcribed(message.utterance, message.text):
                        await self._start_turn(session, message, question)
                case AudioStreamClosed():
                    pass  # only after we closed it
                case _:
                    await self._tell(session, message)

    # --- a turn -------------------------------------------------------------------------------------------

    async def _start_turn(self, session: VoiceSession, final: FinalTranscript, text: str) -> None:
        session.turns += 1
        turn = VoiceTurn(session.turns, text, final.end_detected_at, f"voice:{uuid.uuid4().hex}")
        turn.trace["final"] = round(max(0.0, final.at - final.end_detected_at), 4)
        session.turn = turn
        self._outbox.register(turn.chat_request, partial(self._on_chat, session, turn))
        self._spawn(self._chat.chat(LOCAL, turn.chat_request, ChatRequest(text, session.session_id)))

    async def _on_chat(self, session: VoiceSession, turn: VoiceTurn, message: Message,
                       payload: Sequence[Buffer]) -> None:  # fmt: skip
        if turn.status and turn.status != "done":
            raise PeerUnreachable("the turn is over")  # the chat router stops the model
        with log_context(session_id=session.session_id, turn_id=turn.turn_id or None):
            match message:
                case ChatStarted(turn_id=turn_id):
                    turn.turn_id = turn_id
                    self._outbox.register(turn.speech_request, partial(self._on_speech, session, turn))
                    self._outbox.register(turn.face_request, partial(self._on_face, session, turn))
                    await self._speech_out.open(LOCAL, turn.speech_request, SpeakOpen(turn_id, session.voice_id))
                    await self._face.open(LOCAL, turn.face_request, AnimateOpen(turn_id, session.avatar_id))
                    await self._tell(session, VoiceTurnStarted(turn_id, turn.no, turn.user_text))
                case ChatToken(text=text):
                    turn.mark("first_token", time.monotonic())
                    turn.reply += text
                    if not session.sequential:
                        await self._speech_out.text(SpeakText(turn.turn_id, text))
                    await self._tell(session, ReplyText(turn.turn_id, text))
                case ChatReply():
                    turn.llm_done, turn.reply = True, message.reply
                    self._outbox.unregister(turn.chat_request)
                    if session.sequential:
                        await self._speech_out.text(SpeakText(turn.turn_id, message.reply))
                    await self._speech_out.text(SpeakEnd(turn.turn_id))
                    await self._maybe_end(session, turn)
                case ErrorReply():
                    turn.llm_done = True
                    self._outbox.unregister(turn.chat_request)
                    await self._fail(session, turn, message)

    async def _on_speech(self, session: VoiceSession, turn: VoiceTurn, message: Message,
                         payload: Sequence[Buffer]) -> None:  # fmt: skip
        if turn.status and turn.status != "done":
            raise PeerUnreachable("the turn is over")
        with log_context(session_id=session.session_id, turn_id=turn.turn_id):
            match message:
                case SpeechPiece():
                    turn.pieces.append(Spoken(message.text, message.first_sample, message.samples, message.phonemes))
                    turn.unsent_phonemes.extend(message.phonemes)
                case SpeechAudio(ref=ref, first_sample=first_sample):
                    pcm = self._rings.read(ref)
                    if pcm is None:
                        turn.lost_audio += 1
                        log.warning("speech at sample %s was overwritten in the ring before it was read", first_sample)
                    elif session.sequential:
                        turn.held_audio.append((first_sample, pcm))
                    else:
                        await self._pass_on(session, turn, first_sample, pcm)
                case SpeakDone():
                    turn.speech_done = True
                    self._outbox.unregister(turn.speech_request)
                    for first_sample, pcm in turn.held_audio:
                        await self._pass_on(session, turn, first_sample, pcm)
                    turn.held_audio.clear()
                    await self._face.speech(AnimateEnd(turn.turn_id), ())
                    await self._maybe_end(session, turn)
                case ErrorReply():
                    # No speech for (the rest of) this answer: its text still arrives (ReplyText) and is kept; the
                    # face stops on the still avatar. The turn ends `done` with what could be delivered.
                    turn.speech_done = True
                    self._outbox.unregister(turn.speech_request)
                    await self._face.speech(AnimateEnd(turn.turn_id), ())
                    self._metrics.outcomes["voice-no-speech"] += 1
                    await self._tell(session, StreamFault(session.stream_id, message.code,
                                                          f"no speech for this answer: {message.message}"))  # fmt: skip
                    await self._maybe_end(session, turn)

    async def _pass_on(self, session: VoiceSession, turn: VoiceTurn, first_sample: int, pcm: bytes) -> None:
        """A chunk of the answer's speech to the face renderer and to the client."""
        now = time.monotonic()
        turn.mark("first_audio", now)
        turn.first_audio_at = turn.first_audio_at or now
        turn.samples = max(turn.samples, first_sample + len(pcm) // 2)
        phonemes, turn.unsent_phonemes = tuple(turn.unsent_phonemes), []
        await self._face.speech(AnimateSpeech(turn.turn_id, first_sample, phonemes), [memoryview(pcm)])
        await self._tell(session, VoiceAudio(turn.turn_id, turn.no, first_sample), [pcm])

    async def _on_face(self, session: VoiceSession, turn: VoiceTurn, message: Message,
                       payload: Sequence[Buffer]) -> None:  # fmt: skip
        if turn.status and turn.status != "done":
            raise PeerUnreachable("the turn is over")
        with log_context(session_id=session.session_id, turn_id=turn.turn_id):
            match message:
                case FrameReady():
                    turn.mark("first_frame", time.monotonic())
                    turn.frames += 1
                    await self._tell(session, message)
                case AnimateDone():
                    turn.face_done, turn.dropped_frames = True, message.dropped
                    self._outbox.unregister(turn.face_request)
                    await self._maybe_end(session, turn)
                case ErrorReply():
                    # No video for this turn: the speech goes on with the still avatar (the client keeps its idle loop).
                    turn.face_done = True
                    self._outbox.unregister(turn.face_request)
                    await self._tell(session, StreamFault(session.stream_id, message.code,
                                                          f"no video for this answer: {message.message}"))  # fmt: skip
                    await self._maybe_end(session, turn)

    async def _maybe_end(self, session: VoiceSession, turn: VoiceTurn) -> None:
        if turn.status or not (turn.llm_done and turn.speech_done and turn.face_done):
            return
        turn.status = "done"
        turn.mark("end", time.monotonic())
        for stage, seconds in turn.trace.items():
            self._metrics.observe(f"voice_{stage}", seconds)
        self._metrics.outcomes["voice-done"] += 1
        log.info("voice turn %s done: %s", turn.no, _trace_text(turn.trace))
        if turn.turn_id:
            try:
                self._store.add_trace(turn.turn_id, dict(turn.trace))
            except StoreError as err:
                log.warning("turn %s: cannot store its stage times: %s", turn.turn_id, err)
        await self._tell(session, self._ended(turn, turn.reply))
        if turn.samples == 0 and session.turn is turn:
            session.turn = None

    async def _fail(self, session: VoiceSession, turn: VoiceTurn, error: ErrorReply) -> None:
        if turn.status:
            return
        turn.status = "failed"
        await self._stop_work(turn)
        self._metrics.outcomes["voice-failed"] += 1
        log.info("voice turn %s failed: %s (%s)", turn.no, error.message, error.code)
        await self._tell(session, self._ended(turn, turn.reply, code=error.code))
        await self._tell(session, StreamFault(session.stream_id, error.code, error.message))
        if session.turn is turn:
            session.turn = None

    async def _interrupt(self, session: VoiceSession, turn: VoiceTurn, now: float, *, hold: bool) -> None:
        """Barge-in (or the client went away): stop the turn's work and keep what was heard of it. With `hold`,
        a question whose answer nobody heard a word of is asked again with what the user says next."""
        heard = heard_text(turn.pieces, turn.position(now)) if turn.samples else ""
        was_running = not turn.status
        turn.status = "interrupted"
        turn.mark("interrupted", now)
        if session.turn is turn:
            session.turn = None
        if hold and not heard:
            session.question.hold(turn.user_text)
        if turn.turn_id:
            try:
                self._store.interrupt_turn(turn.turn_id, heard, {"trace": dict(turn.trace)})
            except StoreError as err:
                log.warning("turn %s: cannot store what was heard: %s", turn.turn_id, err)
        stages = (("llm", turn.llm_done), ("tts", turn.speech_done), ("lipsync", turn.face_done))
        stopped = tuple(stage for stage, done in stages if not done) if was_running else ()
        if was_running:
            await self._stop_work(turn)
        self._metrics.outcomes["voice-interrupted"] += 1
        log.info("voice turn %s interrupted after %s samples; heard %r", turn.no, turn.position(now), heard)
        await self._tell(session, self._ended(turn, turn.reply, heard=heard, stopped=stopped))

    async def _stop_work(self, turn: VoiceTurn) -> None:
        """Cancel whatever still runs for the turn; nothing of it reaches the client any more."""
        for request in (turn.chat_request, turn.speech_request, turn.face_request):
            self._outbox.unregister(request)
        if not turn.turn_id:
            return  # the chat router has not started it: its first reply finds no one and stops it
        if not turn.llm_done:
            await self._chat.cancel(turn.turn_id)
        if not turn.speech_done:
            await self._speech_out.cancel(turn.turn_id)
        if not turn.face_done:
            await self._face.cancel(turn.turn_id)

    def _ended(self, turn: VoiceTurn, reply: str, *, heard: str | None = None, code: str = "",
               stopped: tuple[str, ...] = ()) -> VoiceTurnEnded:  # fmt: skip
        return VoiceTurnEnded(turn.turn_id, turn.no, turn.status, reply, reply if heard is None else heard, code,
                              dict(turn.trace), turn.samples, turn.frames, turn.dropped_frames, stopped)  # fmt: skip

    # --- to the client ------------------------------------------------------------------------------------

    async def _tell(self, session: VoiceSession, message: Message, payload: Sequence[Buffer] = ()) -> None:
        if session.closing and not isinstance(message, VoiceClosed):
            return
        try:
            await self._outbox.send(session.peer, message, session.request_id, payload)
        except PeerUnreachable:
            log.info("voice session %s: the gateway went away", session.session_id)
            self._spawn(self._close(session, "gateway-gone"))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._rings.close()


def _trace_text(trace: dict[str, float]) -> str:
    return ", ".join(f"{stage} {seconds:.3f} s" for stage, seconds in trace.items())


def idle_dir(data_dir: Path, avatar_id: str) -> Path:
    """Where the lipsync worker keeps an avatar's idle loop (procs/lipsync/avatar.py's cache layout)."""
    return data_dir / "avatars" / avatar_id
