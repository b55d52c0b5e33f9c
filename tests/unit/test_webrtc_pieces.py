"""The WebRTC transport's pure pieces (appliance/gateway/webrtc.py): offers checked and confined to the configured
addresses, a turn's speech reassembled in order and its face frame picked by the audio's position, and when a
peer's client counts as gone."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.gateway.errors import ApiError
from appliance.gateway.webrtc import (
    AUDIO_FRAME,
    CONNECT_TIMEOUT_S,
    GONE_AFTER_S,
    Liveness,
    TurnPlayout,
    checked_offer,
)

OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
    "a=candidate:2 1 udp 2130706431 192.168.1.20 50001 typ host",
    "a=candidate:3 1 udp 2130706431 abcd.local 50002 typ host",
]) + "\r\n"  # fmt: skip


def test_an_offer_keeps_only_candidates_on_the_configured_addresses() -> None:
    kept = checked_offer(OFFER, ["127.0.0.1"])
    assert "127.0.0.1" in kept and "192.168.1.20" not in kept and ".local" not in kept
    assert checked_offer(OFFER, []) == OFFER  # no confinement: the offer as it came


@pytest.mark.parametrize(
    ("sdp", "addresses", "why"),
    [
        ("hello", [], "not an SDP"),
        (OFFER.replace("m=audio", "m=video"), [], "no audio m-line"),
        (OFFER, ["10.0.0.1"], "no ICE candidate on 10.0.0.1"),
    ],
)
def test_an_unusable_offer_is_refused_with_a_reason(sdp: str, addresses: list[str], why: str) -> None:
    with pytest.raises(ApiError) as refused:
        checked_offer(sdp, addresses)
    assert refused.value.code == "webrtc-offer-invalid" and refused.value.status == 422
    assert why in refused.value.message


def test_speech_that_arrives_out_of_order_plays_in_order() -> None:
    playout = TurnPlayout(1)
    first, second = b"\x01\x00" * 960, b"\x02\x00" * 960
    playout.add(960, second)
    assert playout.available == 0  # a gap: nothing can play yet
    playout.add(0, first)
    assert playout.available == 1920 and playout.take(1920) == first + second


def test_the_face_frame_shown_is_the_one_covering_the_sound_playing() -> None:
    playout = TurnPlayout(1)
    picture = np.zeros((2, 2), np.uint8)
    playout.frames = {0: picture, 1600: picture, 3200: picture}
    assert playout.pick(2000) == 1600
    assert 0 not in playout.frames  # passed frames are let go
    assert playout.missed == 0
    assert playout.pick(9000) == 3200 and playout.missed == 1  # none covers it: the nearest, counted


def test_the_position_follows_the_audio_frames_sent() -> None:
    playout = TurnPlayout(1)
    playout.add(0, b"\x00\x00" * 4800)
    playout.marks.append((1000, 0, AUDIO_FRAME))  # at pts 1000 the track sent samples 0..959
    assert playout.position(1000 + 480) == 480
    assert playout.position(1000 + 2 * AUDIO_FRAME) == 2 * AUDIO_FRAME  # carried on past the last frame sent


def test_a_client_is_gone_when_its_connection_fails_or_it_falls_silent() -> None:
    alive = Liveness(opened_at=0.0)
    assert alive.gone("connecting", heard_at=0.0, now=1.0) is None
    assert alive.gone("connecting", heard_at=0.0, now=CONNECT_TIMEOUT_S + 1) is not None
    live = Liveness(opened_at=0.0)
    assert live.gone("connected", heard_at=10.0, now=10.5) is None
    assert live.gone("connected", heard_at=10.0, now=10.0 + GONE_AFTER_S + 0.1) == "no microphone packet for 5 s"
    assert live.gone("disconnected", heard_at=20.0, now=20.0) is None
    assert live.gone("disconnected", heard_at=26.0, now=26.0) is not None  # disconnected for more than 5 s
    assert Liveness(opened_at=0.0).gone("failed", heard_at=0.0, now=0.0) == "connection failed"
