"""The real-time renderer on the default avatar, judged on its output frames with the face-mesh model.

Two voices: Piper, which says where each phoneme is (the mouth follows its timing), and espeak-ng, which does
not (its words are timed by faster-whisper and phonemized: procs/lipsync/align.py). For each, bench/
lipsync_measure.py re-runs the mesh model on every frame and compares the lips it sees with the sound: the
sync (r >= 0.6 with the loudness, best within a frame of lag) and the closures (lips shut in >= 80% of m, b, p).
Then what must not move: outside the face, only the head's own motion; the mouth's steps between frames; the
idle loop's seam. A contact sheet of the frames is saved under var/test-artefacts/ to look at.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import soxr

from appliance.config import SttConfig
from bench.lipsync_measure import SyncReport, measure_openings, sync_report
from procs.lipsync.align import phonemes_of, spans_from_words
from procs.lipsync.animate import SpeechPlan
from procs.lipsync.avatar import DEFAULT_AVATAR, PreparedAvatar, prepare_avatar
from procs.lipsync.face import FACE_OVAL, LEFT_EYE_LOWER, LEFT_EYE_UPPER, FaceFinder
from procs.lipsync.idle import IdleLoop
from procs.lipsync.motion import BLINK_STARTS, LOOP_FRAMES, Pose
from procs.lipsync.render import Renderer
from procs.lipsync.rig import Rig, build_rig
from procs.lipsync.visemes import OUTPUT_RATE, MouthShape, Span, Viseme, frame_count
from tests.conftest import ROOT, require_model
from tests.speech import PIPER_MODEL, synthesize

pytest.importorskip("faster_whisper", reason="faster-whisper is not installed (pip install -e .)")
from procs.stt.backends.faster_whisper import FasterWhisperBackend
from procs.tts.backends.base import VoiceSettings
from procs.tts.backends.piper import PiperBackend

ARTEFACTS = Path(os.environ.get("MYNAH_TEST_ARTEFACTS", ROOT / "var" / "test-artefacts"))
PIPER_TEXTS = (
    "Maybe the best time to plant a tree was twenty years ago.",
    "Please bring me a big bowl of warm soup.",
    "The weather today is sunny with a gentle breeze from the west.",
    "My mother baked apple pie for the whole family.",
)
ESPEAK_TEXTS = ("My mom bought maple syrup and a bag of plums.", "Bob paid the bill at the pub by himself.")
PAUSE_S = 0.4
REPEATABLE = VoiceSettings(variation=0.0, timing_variation=0.0)


@dataclass
class Face:
    finder: FaceFinder
    avatar: PreparedAvatar
    rig: Rig
    renderer: Renderer
    shut_floor: float  # the mesh model's reading of this avatar's lips drawn shut
    wide_open: float  # and drawn wide open


@dataclass
class Take:
    pcm: npt.NDArray[np.int16]
    spans: list[Span]
    frames: list[npt.NDArray[np.uint8]]
    drawn: list[float]  # the opening the renderer was asked to draw, per frame
    poses: list[Pose]
    report: SyncReport


@pytest.fixture(scope="module")
def face() -> Face:
    finder = FaceFinder(require_model("mediapipe-face"))
    avatar = prepare_avatar(DEFAULT_AVATAR.read_bytes(), finder, max_resolution=1024, max_bytes=20 << 20)
    rig = build_rig(avatar.image, avatar.mesh)
    renderer = Renderer(rig)
    out = np.empty_like(avatar.image)
    readings = []
    for opening in (0.0, 1.0):
        renderer.render(out, MouthShape(opening), Pose(), 0.0)
        readings.append(finder.refine(out, finder.refine(out, avatar.mesh)).opening)
    return Face(finder, avatar, rig, renderer, *readings)


def joined(pieces: list[tuple[npt.NDArray[np.float32], list[Span]]]) -> tuple[npt.NDArray[np.int16], list[Span]]:
    """One utterance: the pieces with PAUSE_S of silence after each, spans moved onto its timeline."""
    pause = np.zeros(round(PAUSE_S * OUTPUT_RATE), np.float32)
    audio, spans, offset = [], [], 0
    for samples, piece_spans in pieces:
        spans += [Span(s.phoneme, s.start_sample + offset, s.end_sample + offset) for s in piece_spans]
        audio += [samples, pause]
        offset += len(samples) + len(pause)
    pcm = (np.clip(np.concatenate(audio), -1, 1) * 32767).astype(np.int16)
    return pcm, spans


def perform(face: Face, pcm: npt.NDArray[np.int16], spans: list[Span]) -> Take:
    plan = SpeechPlan(face_height=face.rig.face_height, loop_start=0, rest_opening=None)
    plan.add_spans(spans)
    plan.add_audio(0, pcm)
    frames, drawn, poses = [], [], []
    out = np.empty_like(face.avatar.image)
    for step in plan.ready(final=True)[: frame_count(len(pcm))]:
        assert step.shape is not None
        face.renderer.render(out, step.shape, step.pose, step.blink)
        frames.append(out.copy())
        drawn.append(step.shape.opening)
        poses.append(step.pose)
    openings = measure_openings(frames, face.finder, face.avatar.mesh)
    report = sync_report(openings, face.shut_floor, face.wide_open, pcm, spans)
    return Take(pcm, spans, frames, drawn, poses, report)


@pytest.fixture(scope="module")
def piper_take(face: Face) -> Take:
    piper = PiperBackend(require_model(PIPER_MODEL))
    piper.load()
    pieces = []
    for text in PIPER_TEXTS:
        chunks = list(piper.synthesize(text, voice=REPEATABLE))
        samples, spans, offset = [], [], 0
        for chunk in chunks:
            spans += [Span(p.phoneme, offset + p.start_sample, offset + p.end_sample) for p in chunk.phonemes]
            samples.append(chunk.samples)
            offset += len(chunk.samples)
        pieces.append((np.concatenate(samples), spans))
    take = perform(face, *joined(pieces))
    contact_sheet(take, "lipsync-piper-contact-sheet.png")
    return take


@dataclass
class HeardWord:
    start: float
    end: float
    word: str


@pytest.fixture(scope="module")
def espeak_take(face: Face) -> tuple[Take, list[HeardWord]]:
    config = SttConfig()
    profile = config.profiles["base"]
    whisper = FasterWhisperBackend(profile, require_model(profile.model), language="en", beam_size=config.beam_size)
    whisper.load()
    pieces = []
    for text in ESPEAK_TEXTS:
        clip = synthesize(text, "espeak")  # 16 kHz
        pieces.append((soxr.resample(clip.samples, 16_000, OUTPUT_RATE).astype(np.float32), []))
    pcm, _ = joined(pieces)
    audio16k = soxr.resample(pcm.astype(np.float32) / 32768, OUTPUT_RATE, 16_000).astype(np.float32)
    words = whisper.transcribe(audio16k, word_timestamps=True).words
    spans = spans_from_words(words, pcm)
    take = perform(face, pcm, spans)
    contact_sheet(take, "lipsync-espeak-contact-sheet.png")
    return take, [HeardWord(w.start, w.end, w.word) for w in words]


def contact_sheet(take: Take, name: str, columns: int = 8, rows: int = 4) -> None:
    """Every n-th frame's face, labelled with its frame number and drawn opening."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    picks = np.linspace(0, len(take.frames) - 1, columns * rows).round().astype(int)
    tiles = []
    for k in picks:
        tile = cv2.resize(take.frames[k][120:400, 120:392], (204, 210), interpolation=cv2.INTER_AREA)[:, :, ::-1].copy()
        cv2.putText(tile, f"{k} {take.drawn[k]:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
        tiles.append(tile)
    sheet = np.concatenate([np.concatenate(tiles[r * columns : (r + 1) * columns], axis=1) for r in range(rows)])
    cv2.imwrite(str(ARTEFACTS / name), sheet)


def test_piper_speech_moves_the_lips_with_the_sound(piper_take: Take) -> None:
    report = piper_take.report
    print(f"piper: r={report.r:.2f} (lag {report.best_lag}), bilabials shut {report.shut}/{report.bilabials}")
    assert report.r >= 0.6 and abs(report.best_lag) <= 1
    assert report.bilabials >= 15 and report.shut_share >= 0.8


def test_a_voice_without_timing_moves_the_lips_too(espeak_take: tuple[Take, list[HeardWord]]) -> None:
    take, words = espeak_take
    report = take.report
    print(f"espeak: r={report.r:.2f} (lag {report.best_lag}), bilabials shut {report.shut}/{report.bilabials}")
    assert report.r >= 0.6 and abs(report.best_lag) <= 1
    # No timing to check against: each word with an m, b or p in it shows shut lips somewhere inside it.
    p90 = float(np.percentile(report.openings, 90))
    with_bilabial = [w for w in words if {"m", "b", "p"} & set(phonemes_of(w.word))]
    shut = 0
    for word in with_bilabial:
        first, last = int(word.start * 30), min(len(report.openings) - 1, math.ceil(word.end * 30))
        shut += min(report.openings[first : last + 1]) < 0.2 * p90
    print(f"espeak: {shut}/{len(with_bilabial)} words with a bilabial shut the lips")
    assert len(with_bilabial) >= 10 and shut >= 0.8 * len(with_bilabial)


@pytest.fixture(params=["piper", "espeak"])
def take(request: pytest.FixtureRequest) -> Take:
    """Each voice's take: Piper's, with its own timing, and espeak-ng's, timed from the audio and its words."""
    if request.param == "piper":
        piper: Take = request.getfixturevalue("piper_take")
        return piper
    espeak: Take = request.getfixturevalue("espeak_take")[0]
    return espeak


def test_the_mouth_never_jumps(take: Take) -> None:
    """Within a third of the mouth's range (shut to wide open), as the model sees it on the frames."""
    drawn = np.asarray(take.drawn)
    largest = np.abs(np.diff(drawn)).max()
    print(f"largest jump: {take.report.max_jump:.0%} of the range on the frames, {largest:.2f} drawn")
    assert np.abs(np.diff(drawn)).max() <= 1 / 3
    assert take.report.max_jump <= 1 / 3


def test_outside_the_face_only_the_head_moves(face: Face, take: Take) -> None:
    """Each frame against the avatar moved by that frame's head motion alone (the renderer with no mouth and no
    blink): outside the face they match; beyond the head box they are the avatar itself, pixel for pixel."""
    avatar = face.avatar.image
    oval = face.avatar.mesh.xy(FACE_OVAL)
    centre = oval.mean(axis=0)
    outside = np.ones(avatar.shape[:2], np.uint8)
    cv2.fillPoly(outside, [((oval - centre) * 1.15 + centre).astype(np.int32)], 0)  # the face, with a margin
    head_only = np.empty_like(avatar)
    worst = 0.0
    for frame, pose in list(zip(take.frames, take.poses, strict=True))[::5]:
        face.renderer.render(head_only, None, pose, 0.0)
        grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) for image in (frame, head_only)]
        worst = max(worst, float(np.abs(grey[0] - grey[1])[outside > 0].mean()))
    moved = max(float(np.abs(f.astype(np.float32) - avatar)[outside > 0].mean()) for f in take.frames[::5])
    print(f"outside the face: {worst:.3f} grey levels from the head's motion alone ({moved:.2f} from the still avatar)")
    assert worst < 2.0
    beyond = np.ones(avatar.shape[:2], bool)
    head = face.rig.head
    beyond[head.y0 : head.y1, head.x0 : head.x1] = False
    assert all(np.array_equal(f[beyond], avatar[beyond]) for f in take.frames[::25]), "the body moved"


def test_an_open_mouth_has_teeth_a_tongue_and_depth(face: Face) -> None:
    out = np.empty_like(face.avatar.image)
    face.renderer.render(out, Viseme.OPEN.value, Pose(), 0.0)
    mesh = face.finder.refine(out, face.finder.refine(out, face.avatar.mesh))
    inner = mesh.xy((78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95))
    mask = np.zeros(out.shape[:2], np.uint8)
    cv2.fillPoly(mask, [inner.astype(np.int32)], 1)
    inside = out[mask > 0].astype(np.float32)
    luma = inside @ np.array([0.299, 0.587, 0.114], np.float32)
    print(f"open mouth: {len(inside)} px, teeth {np.mean(luma > 170):.0%}, dark {np.mean(luma < 60):.0%}")
    assert mesh.opening - face.shut_floor > 0.12 * mesh.mouth_width, "the model sees the mouth open"
    assert np.mean(luma > 170) > 0.08, "teeth show"
    assert np.mean(luma < 60) > 0.2, "the cavity is dark"
    reddish = (inside[:, 0] > 1.4 * inside[:, 1]) & (luma > 50)
    assert reddish.mean() > 0.03, "a tongue shows"
    assert luma.std() > 35, "not a flat block"


def test_the_idle_loop_blinks_and_joins_up(face: Face) -> None:
    loop = IdleLoop.render(face.renderer)
    assert len(loop.frames) == LOOP_FRAMES
    frames = [loop.rgb(k).astype(np.float32) for k in range(LOOP_FRAMES)]
    steps = [float(np.abs(a - b).mean()) for a, b in zip(frames, [*frames[1:], frames[0]], strict=True)]
    print(f"idle loop: largest step {max(steps):.2f}, the seam {steps[-1]:.2f} grey levels")
    assert steps[-1] < 1.0 and steps[-1] < 3 * np.median(steps) + 0.3, "the loop joins up"

    def eye(k: int) -> float:
        """How much of the open eye's dark iris still shows (pixels darker than the skin around it)."""
        grey = cv2.cvtColor(loop.rgb(k), cv2.COLOR_RGB2GRAY)
        return float((grey[aperture > 0] < 90).sum())

    mesh = face.avatar.mesh
    aperture = np.zeros(face.avatar.image.shape[:2], np.uint8)
    cv2.fillPoly(
        aperture, [np.concatenate([mesh.xy(LEFT_EYE_UPPER), mesh.xy(LEFT_EYE_LOWER)[::-1]]).astype(np.int32)], 1
    )
    open_eye = eye(0)
    shut_eye = min(eye(start + 2) for start in BLINK_STARTS)
    print(f"eyes: {open_eye:.0f} dark iris pixels open, {shut_eye:.0f} mid-blink")
    assert shut_eye < 0.5 * open_eye
