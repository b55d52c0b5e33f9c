import { describe, expect, it } from "vitest";
import { classifyMicError, createPcm16Chunker, levelOf } from "./mic";

describe("createPcm16Chunker", () => {
  it("passes 16 kHz through in chunks of the asked size, as 16-bit samples", () => {
    const push = createPcm16Chunker(16_000, 16_000, 4);
    expect(push(new Float32Array([0.5, -0.5, 1]))).toEqual([]);
    const out = push(new Float32Array([-1, 0.25, 2]));
    expect(out).toHaveLength(1);
    expect([...out[0]]).toEqual([16384, -16384, 32767, -32768]);
    // the rest waits for the next chunk
    expect([...push(new Float32Array([0, 0, 0]))[0]]).toEqual([8192, 32767, 0, 0]);
  });

  it("takes 48 kHz down to 16 kHz by averaging each three samples", () => {
    const push = createPcm16Chunker(48_000, 16_000, 640);
    const input = new Float32Array(1920);
    for (let i = 0; i < input.length; i++) input[i] = i % 3 === 0 ? 0.3 : 0; // mean 0.1 in every span
    const out = push(input);
    expect(out).toHaveLength(1);
    expect(out[0]).toHaveLength(640);
    expect(out[0].every((sample) => sample === Math.round(0.1 * 32767))).toBe(true);
  });

  it("keeps the rate right over blocks of 128 at 44.1 kHz", () => {
    const push = createPcm16Chunker(44_100, 16_000, 640);
    let made = 0;
    for (let block = 0; block < 441; block++) made += push(new Float32Array(128)).length; // 56448 samples: 1.28 s
    expect(made).toBe(32); // 1.28 s at 16 kHz is 20480 samples: 32 chunks of 640
  });

  it("still works from its source text alone (the worklet's copy)", () => {
    const rebuilt = new Function(`return (${createPcm16Chunker.toString()})`)() as typeof createPcm16Chunker;
    const out = rebuilt(48_000, 16_000, 2)(new Float32Array([0.5, 0.5, 0.5, -0.5, -0.5, -0.5]));
    expect([...out[0]]).toEqual([16384, -16384]);
  });
});

describe("levelOf", () => {
  it("maps -60 dBFS and below to 0 and full scale to 1", () => {
    expect(levelOf(new Float32Array(128))).toBe(0);
    expect(levelOf(new Float32Array(128).fill(1))).toBe(1);
    expect(levelOf(new Float32Array(128).fill(0.001))).toBeCloseTo(0, 5);
    expect(levelOf(new Float32Array(128).fill(0.1))).toBeCloseTo(2 / 3, 5); // -20 dBFS
    expect(levelOf(new Float32Array(0))).toBe(0);
  });
});

describe("classifyMicError", () => {
  const err = (name: string) => Object.assign(new Error("x"), { name });
  it("tells a blocked microphone from a missing or busy one", () => {
    expect(classifyMicError(err("NotAllowedError"))).toBe("blocked");
    expect(classifyMicError(new DOMException("denied", "NotAllowedError"))).toBe("blocked");
    expect(classifyMicError(err("NotFoundError"))).toBe("missing");
    expect(classifyMicError(err("NotReadableError"))).toBe("busy");
    expect(classifyMicError(err("Weird"))).toBe("other");
    expect(classifyMicError("a string")).toBe("other");
  });
});
