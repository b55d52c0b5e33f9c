import { describe, expect, it } from "vitest";
import { firstTransport, shouldFallBack, transportChoice } from "./transport";

describe("transportChoice", () => {
  it("lets ?transport= in the address win over the stored choice", () => {
    expect(transportChoice("?transport=websocket", "webrtc")).toBe("websocket");
    expect(transportChoice("?x=1&transport=webrtc", "websocket")).toBe("webrtc");
  });

  it("uses the stored choice, and auto for anything unknown", () => {
    expect(transportChoice("", "websocket")).toBe("websocket");
    expect(transportChoice("?transport=carrier-pigeon", null)).toBe("auto");
    expect(transportChoice("", "garbage")).toBe("auto");
  });
});

describe("firstTransport", () => {
  it("tries WebRTC first unless the WebSocket is chosen or the browser lacks WebRTC", () => {
    expect(firstTransport("auto", true)).toBe("webrtc");
    expect(firstTransport("auto", false)).toBe("websocket");
    expect(firstTransport("websocket", true)).toBe("websocket");
    expect(firstTransport("webrtc", true)).toBe("webrtc");
    expect(firstTransport("webrtc", false)).toBeNull();
  });
});

describe("shouldFallBack", () => {
  it("falls back in auto when WebRTC itself cannot carry the call", () => {
    expect(shouldFallBack("auto", { kind: "offer-refused", code: "webrtc-unavailable" })).toBe(true);
    expect(shouldFallBack("auto", { kind: "offer-refused", code: "webrtc-offer-invalid" })).toBe(true);
    expect(shouldFallBack("auto", { kind: "timeout" })).toBe(true);
    expect(shouldFallBack("auto", { kind: "connection-failed" })).toBe(true);
    expect(shouldFallBack("auto", { kind: "browser" })).toBe(true);
  });

  it("does not when the session itself was refused, or WebRTC was chosen", () => {
    expect(shouldFallBack("auto", { kind: "offer-refused", code: "session-refused-budget" })).toBe(false);
    expect(shouldFallBack("auto", { kind: "offer-refused", code: "auth-invalid" })).toBe(false);
    expect(shouldFallBack("auto", { kind: "offer-refused", code: "session-not-found" })).toBe(false);
    expect(shouldFallBack("webrtc", { kind: "timeout" })).toBe(false);
    expect(shouldFallBack("webrtc", { kind: "offer-refused", code: "webrtc-unavailable" })).toBe(false);
  });
});
