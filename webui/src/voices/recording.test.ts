import { describe, expect, it } from "vitest";
import {
  CONSENT_STATEMENT,
  MAX_SECONDS,
  MIN_SECONDS,
  READING_PASSAGE,
  formatClock,
  microphoneProblem,
  recordingState,
  wordCount,
} from "./recording";

describe("recordingState", () => {
  it("allows stopping from the minimum and forces it at the maximum", () => {
    expect(recordingState(0)).toEqual({ canStop: false, reachedTarget: false, mustStop: false, remainingToMin: 20 });
    expect(recordingState(19.2)).toMatchObject({ canStop: false, remainingToMin: 1 });
    expect(recordingState(MIN_SECONDS)).toMatchObject({ canStop: true, remainingToMin: 0, reachedTarget: false });
    expect(recordingState(60)).toMatchObject({ canStop: true, reachedTarget: true, mustStop: false });
    expect(recordingState(MAX_SECONDS)).toMatchObject({ mustStop: true });
  });
});

describe("formatClock", () => {
  it("writes minutes and two-digit seconds", () => {
    expect(formatClock(0)).toBe("0:00");
    expect(formatClock(7.9)).toBe("0:07");
    expect(formatClock(60)).toBe("1:00");
    expect(formatClock(90.4)).toBe("1:30");
    expect(formatClock(-3)).toBe("0:00");
  });
});

describe("microphoneProblem", () => {
  it("explains how to allow a refused microphone", () => {
    const refused = new DOMException("Permission denied", "NotAllowedError");
    expect(microphoneProblem(refused)).toMatch(/allow the microphone/);
  });

  it("tells a missing microphone from a busy one", () => {
    expect(microphoneProblem(new DOMException("x", "NotFoundError"))).toMatch(/No microphone/);
    expect(microphoneProblem(new DOMException("x", "NotReadableError"))).toMatch(/another app/);
  });

  it("keeps the message of an unknown error", () => {
    expect(microphoneProblem(new Error("boom"))).toMatch(/boom/);
  });
});

describe("the texts", () => {
  it("gives about a minute of reading", () => {
    const words = wordCount(READING_PASSAGE);
    expect(words).toBeGreaterThanOrEqual(135);
    expect(words).toBeLessThanOrEqual(175);
  });

  it("states consent in the words the form shows", () => {
    expect(CONSENT_STATEMENT).toMatch(/^I am the speaker, or the speaker agreed/);
  });
});
