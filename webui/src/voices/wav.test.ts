import { describe, expect, it } from "vitest";
import { encodeWav, joinChunks, meterLevel, rmsDbfs, toInt16 } from "./wav";

function text(view: DataView, offset: number, length: number): string {
  return String.fromCharCode(...Array.from({ length }, (_, i) => view.getUint8(offset + i)));
}

describe("encodeWav", () => {
  it("writes a mono 16-bit PCM header for the sample rate and length", () => {
    const wav = encodeWav([new Float32Array(3), new Float32Array(2)], 48000);
    const view = new DataView(wav);
    expect(wav.byteLength).toBe(44 + 5 * 2);
    expect(text(view, 0, 4)).toBe("RIFF");
    expect(view.getUint32(4, true)).toBe(36 + 10);
    expect(text(view, 8, 8)).toBe("WAVEfmt ");
    expect(view.getUint32(16, true)).toBe(16);
    expect(view.getUint16(20, true)).toBe(1);
    expect(view.getUint16(22, true)).toBe(1);
    expect(view.getUint32(24, true)).toBe(48000);
    expect(view.getUint32(28, true)).toBe(96000);
    expect(view.getUint16(32, true)).toBe(2);
    expect(view.getUint16(34, true)).toBe(16);
    expect(text(view, 36, 4)).toBe("data");
    expect(view.getUint32(40, true)).toBe(10);
  });

  it("writes the chunks' samples in order, little-endian, clipped", () => {
    const wav = encodeWav([Float32Array.of(0, 1, -1), Float32Array.of(0.5, 2, -3)], 16000);
    const view = new DataView(wav);
    const samples = Array.from({ length: 6 }, (_, i) => view.getInt16(44 + 2 * i, true));
    expect(samples).toEqual([0, 32767, -32768, 16384, 32767, -32768]);
    expect(view.getUint8(46)).toBe(0xff); // 32767 = 0x7fff, low byte first
    expect(view.getUint8(47)).toBe(0x7f);
  });

  it("makes an empty but valid file from no samples", () => {
    const view = new DataView(encodeWav([], 44100));
    expect(view.byteLength).toBe(44);
    expect(view.getUint32(40, true)).toBe(0);
  });

  it("refuses a sample rate that is not a positive integer", () => {
    expect(() => encodeWav([], 0)).toThrow(RangeError);
    expect(() => encodeWav([], 44100.5)).toThrow(RangeError);
  });
});

describe("toInt16", () => {
  it("maps -1..1 to the full signed range and silences NaN", () => {
    expect(toInt16(-1)).toBe(-32768);
    expect(toInt16(1)).toBe(32767);
    expect(toInt16(-0.5)).toBe(-16384);
    expect(toInt16(Number.NaN)).toBe(0);
  });
});

describe("joinChunks", () => {
  it("concatenates", () => {
    expect(Array.from(joinChunks([Float32Array.of(1, 2), Float32Array.of(), Float32Array.of(3)]))).toEqual([1, 2, 3]);
  });
});

describe("levels", () => {
  it("measures RMS in dBFS", () => {
    expect(rmsDbfs(Float32Array.of(1, -1, 1, -1))).toBeCloseTo(0);
    expect(rmsDbfs(Float32Array.of(0.1, -0.1))).toBeCloseTo(-20);
    expect(rmsDbfs(new Float32Array(8))).toBe(-Infinity);
    expect(rmsDbfs(new Float32Array(0))).toBe(-Infinity);
  });

  it("fills the meter from -60 dBFS to 0 dBFS", () => {
    expect(meterLevel(-Infinity)).toBe(0);
    expect(meterLevel(-70)).toBe(0);
    expect(meterLevel(-30)).toBeCloseTo(0.5);
    expect(meterLevel(0)).toBe(1);
    expect(meterLevel(6)).toBe(1);
  });
});
