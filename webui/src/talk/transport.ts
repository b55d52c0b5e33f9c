// Which transport carries the call: WebRTC first, the WebSocket as its fallback (docs/voice-chat.md).
export type Transport = "webrtc" | "websocket";
export type TransportChoice = "auto" | Transport;

export const TRANSPORT_KEY = "mynah.transport";
export const CONNECT_TIMEOUT_MS = 6000; // WebRTC must reach `connected` this soon after the answer

export function isChoice(value: unknown): value is TransportChoice {
  return value === "auto" || value === "webrtc" || value === "websocket";
}

// `?transport=websocket|webrtc` in the address wins over the stored choice; anything else means auto.
export function transportChoice(search: string, stored: string | null): TransportChoice {
  const asked = new URLSearchParams(search).get("transport");
  if (asked === "webrtc" || asked === "websocket") return asked;
  return isChoice(stored) ? stored : "auto";
}

export function firstTransport(choice: TransportChoice, hasWebRtc: boolean): Transport | null {
  if (choice === "websocket") return "websocket";
  if (hasWebRtc) return "webrtc";
  return choice === "auto" ? "websocket" : null; // WebRTC was asked for and this browser has none
}

// Why a WebRTC attempt did not give a call.
export type WebRtcFailure =
  | { kind: "offer-refused"; code: string } // the appliance answered the offer with an error
  | { kind: "timeout" } // no `connected` within CONNECT_TIMEOUT_MS
  | { kind: "connection-failed" } // ICE failed before connecting
  | { kind: "browser" }; // the browser could not make an offer

// Offer errors that are WebRTC's own (no aiortc, an offer it cannot use, no answer made, a gateway without the
// route); anything else (the session refused, a bad token) would refuse the WebSocket as well.
const WEBRTC_ERRORS = new Set(["webrtc-unavailable", "webrtc-offer-invalid", "webrtc-failed", "not-found", "method-not-allowed"]);

// In auto, fall back to the WebSocket when WebRTC cannot carry the call but the session could go on.
export function shouldFallBack(choice: TransportChoice, failure: WebRtcFailure): boolean {
  if (choice !== "auto") return false;
  if (failure.kind === "offer-refused") return WEBRTC_ERRORS.has(failure.code);
  return true;
}
