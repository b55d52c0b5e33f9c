import { describe, expect, it } from "vitest";
import { LATE_MARGIN_S, START_DELAY_S, chooseFrame, endsAt, framePassed, placeChunk, playedSamples } from "./player";

const RATE = 48_000;

describe("placeChunk", () => {
  it("starts a turn's first chunk after the jitter buffer and the next ones right after it", () => {
    const first = placeChunk(null, 0, 4800, 10);
    expect(first.startAt).toBeCloseTo(10 + START_DELAY_S, 9);
    expect(first.timeline.end).toBe(4800);
    const second = placeChunk(first.timeline, 4800, 4800, 10.05);
    expect(second.startAt).toBeCloseTo(10 + START_DELAY_S + 0.1, 9);
    expect(second.timeline.base).toBe(first.timeline.base);
    expect(endsAt(second.timeline)).toBeCloseTo(10 + START_DELAY_S + 0.2, 9);
  });

  it("places a first chunk that is not at sample 0 on the turn's timeline", () => {
    const { timeline, startAt } = placeChunk(null, 9600, 960, 5);
    expect(startAt).toBeCloseTo(5 + START_DELAY_S, 9);
    expect(timeline.base).toBeCloseTo(5 + START_DELAY_S - 0.2, 9);
  });

  it("moves the timeline later when a chunk arrives after its moment", () => {
    const first = placeChunk(null, 0, 4800, 0); // plays 0.06 .. 0.16
    const late = placeChunk(first.timeline, 4800, 4800, 0.5); // its moment (0.16) has passed
    expect(late.startAt).toBeCloseTo(0.5 + LATE_MARGIN_S, 9);
    expect(late.timeline.base).toBeCloseTo(late.startAt - 0.1, 9);
    // and what follows keeps to the new timeline
    const next = placeChunk(late.timeline, 9600, 4800, 0.55);
    expect(next.startAt).toBeCloseTo(late.startAt + 0.1, 9);
  });
});

describe("playedSamples", () => {
  it("counts from the turn's sample 0 and stops at what was scheduled", () => {
    const timeline = { base: 2, end: 24_000 };
    expect(playedSamples(timeline, 1.9)).toBe(0);
    expect(playedSamples(timeline, 2.25)).toBe(12_000);
    expect(playedSamples(timeline, 9)).toBe(24_000);
    expect(playedSamples(timeline, 2 + 1 / RATE)).toBe(1);
  });
});

describe("chooseFrame", () => {
  it("shows the frame whose 1600 samples cover the playing sample", () => {
    expect(chooseFrame([0, 1600, 3200, 4800], 3500)).toEqual({ show: 3200, drop: [0, 1600] });
    expect(chooseFrame([4800, 0, 3200, 1600], 1600)).toEqual({ show: 1600, drop: [0] });
  });

  it("keeps the latest earlier frame when the covering one is missing", () => {
    expect(chooseFrame([0, 1600, 6400], 5000)).toEqual({ show: 1600, drop: [0] });
  });

  it("shows nothing before the first frame's moment", () => {
    expect(chooseFrame([1600, 3200], 100)).toEqual({ show: null, drop: [] });
    expect(chooseFrame([], 100)).toEqual({ show: null, drop: [] });
  });

  it("knows when a frame's moment has passed", () => {
    expect(framePassed(0, 1599)).toBe(false);
    expect(framePassed(0, 1600)).toBe(true);
  });
});
