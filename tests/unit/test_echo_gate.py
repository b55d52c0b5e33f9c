"""The gateway's echo gate (appliance/gateway/echo.py): the avatar's own voice coming back through the microphone is
taken out; the user's voice over it is kept; nothing is touched while no answer plays."""

from __future__ import annotations

import numpy as np

from appliance.gateway.echo import BLOCK, MIC_RATE, OUTPUT_RATE, EchoGate, best_match

RNG = np.random.default_rng(7)


def voiced(seconds: float, rate: int, pitch: float, seed: int) -> np.ndarray:
    """A speech-like signal: a harmonic buzz with a wandering pitch and a syllable-rate envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = pitch * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    buzz: np.ndarray = np.sum([np.sin(k * phase) / k for k in range(1, 12)], axis=0)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)) ** 2
    signal = buzz * envelope
    out: np.ndarray = (0.3 * signal / np.max(np.abs(signal))).astype(np.float32)
    return out


def pcm(samples: np.ndarray) -> bytes:
    return bytes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def unpcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, np.int16).astype(np.float32) / 32768.0


def play(gate: EchoGate, mic: np.ndarray, start: float, *, report_every: float = 0.1) -> np.ndarray:
    """Feed `mic` (16 kHz) in 20 ms pieces on a simulated clock from `start`, reporting playback as a client would
    (turn 1, playing in real time from `start`); what the gate lets through."""
    out = []
    piece = MIC_RATE // 50
    last_report = -1.0
    for k in range(0, len(mic), piece):
        now = start + (k + piece) / MIC_RATE
        if now - last_report >= report_every:
            gate.played(1, int((now - start) * OUTPUT_RATE), now)
            last_report = now
        out.append(unpcm(gate.clean(pcm(mic[k : k + piece]), now)))
    return np.concatenate(out)


def test_best_match_finds_the_offset_and_a_full_correlation() -> None:
    window = RNG.standard_normal(4000).astype(np.float32)
    found = best_match(0.4 * window[1234 : 1234 + BLOCK], window)
    assert found is not None
    assert found[0] == 1234 and found[1] > 0.999


def test_the_avatars_own_voice_coming_back_is_silenced() -> None:
    speech = voiced(3.0, OUTPUT_RATE, 140, seed=1)
    gate = EchoGate()
    gate.speech(1, 0, pcm(speech), now=100.0)
    echo = np.concatenate([np.zeros(int(0.15 * MIC_RATE), np.float32), 0.5 * speech[::3]])[: 3 * MIC_RATE]
    echo += 0.002 * RNG.standard_normal(len(echo)).astype(np.float32)  # the room's noise
    out = play(gate, echo, start=100.0)
    assert gate.echo_blocks > 40
    assert float(np.mean(out[MIC_RATE // 2 :] ** 2)) < 0.01 * float(np.mean(echo[MIC_RATE // 2 :] ** 2))


def test_a_voice_over_the_echo_is_kept() -> None:
    speech = voiced(3.0, OUTPUT_RATE, 140, seed=1)
    user = voiced(3.0, MIC_RATE, 210, seed=2)
    gate = EchoGate()
    gate.speech(1, 0, pcm(speech), now=100.0)
    echo = np.concatenate([np.zeros(int(0.15 * MIC_RATE), np.float32), 0.5 * speech[::3]])[: 3 * MIC_RATE]
    out = play(gate, echo + user, start=100.0)
    tail = slice(MIC_RATE // 2, len(out) - BLOCK)
    kept = float(np.corrcoef(out[tail], user[tail])[0, 1])
    assert kept > 0.8, f"the user's voice correlates {kept:.2f} with what the gate let through"
    assert float(np.mean(out[tail] ** 2)) > 0.5 * float(np.mean(user[tail] ** 2))


def test_nothing_is_touched_while_no_answer_plays() -> None:
    gate = EchoGate()
    user = pcm(voiced(0.5, MIC_RATE, 200, seed=3))
    assert gate.clean(user, now=5.0) == user
    gate.speech(1, 0, pcm(voiced(0.5, OUTPUT_RATE, 140, seed=1)), now=10.0)
    assert gate.clean(user, now=20.0) == user  # long after the answer played out


def test_what_was_held_in_a_block_comes_out_when_playback_ends() -> None:
    gate = EchoGate()
    gate.speech(1, 0, pcm(voiced(0.2, OUTPUT_RATE, 140, seed=1)), now=10.0)
    held = gate.clean(pcm(np.zeros(300, np.float32)), now=10.05)
    assert held == b""  # less than a block, while playing
    later = gate.clean(pcm(np.full(100, 0.1, np.float32)), now=12.0)
    assert len(later) == 2 * 400  # the held 300 samples and the new 100, once the answer is over
