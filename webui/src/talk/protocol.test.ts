import { describe, expect, it } from "vitest";
import { HEADER_BYTES, MEDIA_FACE, MEDIA_IDLE, MEDIA_SPEECH, closedReasonText, parseEvent, parseMedia, pcm16ToFloat } from "./protocol";

function media(kind: number, turn: number, index: bigint, payload: number[]): ArrayBuffer {
  const buffer = new ArrayBuffer(HEADER_BYTES + payload.length);
  const view = new DataView(buffer);
  view.setUint8(0, kind);
  view.setUint32(1, turn, true);
  view.setBigUint64(5, index, true);
  new Uint8Array(buffer, HEADER_BYTES).set(payload);
  return buffer;
}

describe("parseMedia", () => {
  it("reads the little-endian header and keeps the data after it", () => {
    const parsed = parseMedia(media(MEDIA_FACE, 7, 3200n, [0xff, 0xd8, 0xff]));
    expect(parsed).not.toBeNull();
    expect(parsed!.kind).toBe(MEDIA_FACE);
    expect(parsed!.turn).toBe(7);
    expect(parsed!.index).toBe(3200);
    expect([...parsed!.data]).toEqual([0xff, 0xd8, 0xff]);
  });

  it("reads indexes past 32 bits and turn numbers past 16 bits", () => {
    const parsed = parseMedia(media(MEDIA_SPEECH, 70_000, 5_000_000_000n, [1, 0]));
    expect(parsed!.turn).toBe(70_000);
    expect(parsed!.index).toBe(5_000_000_000);
  });

  it("takes idle frames with an empty payload and refuses short or unknown messages", () => {
    expect(parseMedia(media(MEDIA_IDLE, 0, 12n, []))!.data.byteLength).toBe(0);
    expect(parseMedia(new ArrayBuffer(12))).toBeNull();
    expect(parseMedia(media(9, 1, 0n, [1]))).toBeNull();
  });
});

describe("pcm16ToFloat", () => {
  it("decodes little-endian samples at any byte offset", () => {
    const bytes = new Uint8Array([0xaa, 0x00, 0x40, 0x00, 0x80, 0xff, 0x7f]); // offset 1: 0x4000, -32768, 0x7fff
    const samples = pcm16ToFloat(bytes.subarray(1));
    expect([...samples]).toEqual([0.5, -1, 32767 / 32768]);
  });

  it("ignores a trailing odd byte", () => {
    expect(pcm16ToFloat(new Uint8Array([0, 0x40, 7])).length).toBe(1);
  });
});

describe("parseEvent", () => {
  it("parses the protocol's events", () => {
    expect(parseEvent('{"type":"turn","turn_id":"t1","turn":3,"user_text":"hello"}')).toEqual({
      type: "turn",
      turn_id: "t1",
      turn: 3,
      user_text: "hello",
    });
    const end = parseEvent(
      JSON.stringify({ type: "turn_end", turn_id: "t1", turn: 3, status: "interrupted", reply: "Hi there friend", heard: "Hi", code: "", trace: { final: 0.4, end: "x" }, stopped: ["llm", 3] }),
    );
    expect(end).toMatchObject({ type: "turn_end", status: "interrupted", heard: "Hi", trace: { final: 0.4 }, stopped: ["llm"] });
  });

  it("fills missing fields so views cannot break", () => {
    expect(parseEvent('{"type":"partial"}')).toEqual({ type: "partial", utterance: 0, committed: "", unstable: "" });
    expect(parseEvent('{"type":"error"}')).toEqual({ type: "error", code: "error", message: "" });
  });

  it("returns null for what is not a known event", () => {
    expect(parseEvent("not json")).toBeNull();
    expect(parseEvent("[1,2]")).toBeNull();
    expect(parseEvent('{"type":"mystery"}')).toBeNull();
    expect(parseEvent("null")).toBeNull();
  });
});

describe("closedReasonText", () => {
  it("explains a session taken over by another window", () => {
    expect(closedReasonText("resumed-elsewhere")).toMatch(/another window/);
    expect(closedReasonText("odd-reason")).toContain("odd-reason");
  });
});
