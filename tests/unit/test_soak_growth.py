"""bench/soak.py's memory growth: a trend line that a program's swinging RSS does not move, and a steady rise
it reads exactly."""

import math

from bench.soak import Sample, rss_growth, trend_growth

MIB = 1 << 20


def swinging(minute: float) -> float:
    """The stt's shape in a soak: a 240 MiB floor, 60 MiB higher in 4 of every 10 samples (an utterance)."""
    return 240.0 * MIB + (60.0 * MIB if round(minute * 6) % 10 in (1, 4, 6, 9) else 0.0)


def test_a_steady_rise_is_read_exactly() -> None:
    points = [(5 + k / 6, 140.0 * MIB + 0.35 * MIB * (k / 6)) for k in range(151)]  # 0.35 MiB a minute, 25 min
    found = trend_growth(points)
    assert found is not None
    assert math.isclose(found, 100 * 0.35 * 25 / 140, rel_tol=1e-9)  # 6.25%


def test_a_swing_that_stays_level_is_no_growth_wherever_the_last_minute_falls() -> None:
    """Medians over the first and last minute would read this as +25% (the last minute caught more peaks)."""
    points = [(5 + k / 6, swinging(5 + k / 6)) for k in range(151)]
    points[-6:] = [(t, 300.0 * MIB) for t, _ in points[-6:]]  # a last minute of nothing but peaks
    found = trend_growth(points)
    assert found is not None
    assert abs(found) < 1.0


def test_growth_under_a_swing_is_still_seen() -> None:
    points = [(5 + k / 6, swinging(5 + k / 6) + 0.5 * MIB * (k / 6)) for k in range(151)]
    found = trend_growth(points)
    assert found is not None
    assert 4.5 < found < 5.9  # 12.5 MiB over 25 minutes on a 240 MiB floor: 5.2%


def test_rss_growth_is_per_program_from_the_settling_minute_and_thins_long_runs() -> None:
    samples = [
        Sample(at_min=k / 6, rss={"gateway": int(100 * MIB + (MIB * k / 6 if k >= 30 else 50 * MIB))}, shm_bytes=0,
               shm_segments=0)
        for k in range(3001)
    ]  # fmt: skip
    growth = rss_growth(samples, settle_min=5.0)
    assert math.isclose(growth["gateway"], 100 * 495 / 105, rel_tol=1e-3)  # 1 MiB a minute, minutes 5-500
    assert rss_growth(samples[:1], settle_min=0.0) == {}
    assert trend_growth([(1.0, 5.0), (1.0, 6.0)]) is None
