"""The avatar's own voice taken out of the microphone, so that it does not interrupt itself (barge-in).

Hands-free, the reply comes back through the client's microphone. The browser's echo cancellation removes most
of it; what remains, and all of it from a client without one, is handled here. The gateway knows exactly what
it sent (the reply's speech, on the turn's 48 kHz timeline) and what the client has played of it (its playback
reports), so the echo in a block of microphone audio is that speech, delayed by the room and the client, and
scaled. Each block is matched against the speech played around that moment (normalised cross-correlation over
lags from LEAD_S ahead to MAX_DELAY_S behind the playback position); where it matches (CORRELATED), the echo's
gain is fitted and the echo subtracted. A block that was all echo (the rest under RESIDUAL_SHARE of its energy)
becomes silence; one with a voice over the echo keeps the voice, so the user can still interrupt.

Pure and synchronous: numpy only, a few hundred microseconds a block.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

MIC_RATE = 16_000
OUTPUT_RATE = 48_000
BLOCK = 800  # 50 ms at 16 kHz: what the gate judges at once
MAX_DELAY_S = 0.6  # from the speech being played to its echo in the microphone (client buffers, the room)
LEAD_S = 0.15  # the playback position may lag the truth by this much (reports are ~100 ms apart)
TAIL_S = 0.8  # after the last sample played, the echo may still arrive
CORRELATED = 0.55
RESIDUAL_SHARE = 0.12
MIN_ENERGY = 1e-7  # below this (about -70 dBFS), a block is silence and is left alone

Samples = npt.NDArray[np.float32]


class EchoGate:
    def __init__(self) -> None:
        self._turn = -1
        self._reference: Samples = np.zeros(0, np.float32)  # the turn's speech at 16 kHz, from its sample 0
        self._resampler: soxr.ResampleStream | None = None
        self._played = 0  # 16 kHz samples, as of `_played_at`
        self._played_at = 0.0
        self._pending: Samples = np.zeros(0, np.float32)
        self.echo_blocks = 0  # blocks silenced as pure echo
        self.cleaned_blocks = 0  # blocks with echo taken out and a voice left

    def speech(self, turn_no: int, first_sample: int, pcm: bytes, now: float) -> None:
        """Speech sent to the client for turn `turn_no` (PCM16 48 kHz at `first_sample`) at `now`; until the client
        reports, it is taken to play from when its first speech went out."""
        if turn_no != self._turn:
            self._turn, self._played, self._played_at = turn_no, 0, now
            self._reference = np.zeros(0, np.float32)
            self._resampler = soxr.ResampleStream(OUTPUT_RATE, MIC_RATE, 1, dtype="float32")
        assert self._resampler is not None
        audio = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0
        start = first_sample // 3
        if start > len(self._reference) + MIC_RATE:  # a gap (speech lost on the way): keep the timeline
            self._reference = np.concatenate([self._reference, np.zeros(start - len(self._reference), np.float32)])
        self._reference = np.concatenate([self._reference, self._resampler.resample_chunk(audio)])

    def played(self, turn_no: int, samples: int, now: float) -> None:
        """The client has played `samples` (48 kHz) of turn `turn_no` by `now` (monotonic seconds)."""
        if turn_no == self._turn and samples > 0:
            self._played, self._played_at = samples // 3, now

    def stop(self, turn_no: int, now: float) -> None:
        """The client stopped playing turn `turn_no` (barge-in): only its tail can still come back."""
        if turn_no == self._turn and self._played_at:
            self._played = min(self._played, self._position(now))
            self._reference = self._reference[: self._played]

    def _position(self, now: float) -> int:
        return min(len(self._reference), self._played + int((now - self._played_at) * MIC_RATE))

    def _active(self, now: float) -> bool:
        """Whether speech is playing, or stopped less than TAIL_S ago."""
        if not self._played_at or not len(self._reference):
            return False
        ends_at = self._played_at + (len(self._reference) - self._played) / MIC_RATE
        return now < ends_at + TAIL_S

    def clean(self, pcm: bytes, now: float) -> bytes:
        """Microphone PCM16 16 kHz in; the same length out, with the avatar's echo taken out where found. While
        no speech is playing it passes as it is; while it plays, it passes in whole blocks (up to 50 ms later)."""
        audio = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0
        if not self._active(now) and not len(self._pending):
            return pcm
        self._pending = np.concatenate([self._pending, audio])
        whole = len(self._pending) - len(self._pending) % BLOCK
        if not self._active(now):
            whole = len(self._pending)  # playback is over: flush what was held
        out = [self._clean_block(self._pending[k : k + BLOCK], now) for k in range(0, whole, BLOCK)]
        self._pending = self._pending[whole:]
        if not out:
            return b""
        return (np.clip(np.concatenate(out), -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()

    def _clean_block(self, block: Samples, now: float) -> Samples:
        energy = float(np.mean(block**2))
        if energy < MIN_ENERGY or len(block) < BLOCK // 4:
            return block
        position = self._position(now)
        lo = max(0, position - int(MAX_DELAY_S * MIC_RATE) - len(block))
        hi = min(len(self._reference), position + int(LEAD_S * MIC_RATE))
        window = self._reference[lo:hi]
        if len(window) < len(block):
            return block
        found = best_match(block, window)
        if found is None:
            return block
        offset, correlation = found
        if correlation < CORRELATED:
            return block
        echo = window[offset : offset + len(block)]
        gain = float(np.dot(block, echo) / max(float(np.dot(echo, echo)), 1e-12))
        residual = block - gain * echo
        if float(np.mean(residual**2)) < RESIDUAL_SHARE * energy:
            self.echo_blocks += 1
            return np.zeros_like(block)
        self.cleaned_blocks += 1
        return residual.astype(np.float32)


def best_match(block: Samples, window: Samples) -> tuple[int, float] | None:
    """The offset in `window` where `block` correlates best, and that normalised correlation (-1..1)."""
    n, m = len(block), len(window)
    if m < n:
        return None
    size = 1 << int(np.ceil(np.log2(n + m)))
    spectrum = np.fft.rfft(window, size) * np.conj(np.fft.rfft(block, size))
    dots = np.fft.irfft(spectrum, size)[: m - n + 1]
    squares = np.concatenate([[0.0], np.cumsum(window.astype(np.float64) ** 2)])
    window_norms = np.sqrt(np.maximum(squares[n:] - squares[: m - n + 1], 1e-12))
    scores = dots / (window_norms * max(float(np.linalg.norm(block)), 1e-9))
    best = int(np.argmax(scores))
    return best, float(scores[best])
