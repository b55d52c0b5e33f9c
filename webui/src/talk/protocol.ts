// The live voice protocol (docs/voice-chat.md): the JSON events both transports deliver, and the binary media
// of WS /voice-chat (a 13-byte little-endian header `kind u8, turn u32, index u64`, then the data).

export const SAMPLE_RATE_IN = 16_000; // the microphone, up
export const SAMPLE_RATE_OUT = 48_000; // the reply speech, down
export const FRAME_SAMPLES = 1600; // one 30 fps frame on the 48 kHz timeline
export const HEADER_BYTES = 13;

export const MEDIA_SPEECH = 1;
export const MEDIA_FACE = 2;
export const MEDIA_IDLE = 3;
export type MediaKind = typeof MEDIA_SPEECH | typeof MEDIA_FACE | typeof MEDIA_IDLE;

export interface Media {
  kind: MediaKind;
  turn: number;
  index: number; // speech: its first sample; face: the frame's first sample; idle: the loop's frame number
  data: Uint8Array; // PCM16 LE mono 48 kHz, or a JPEG
}

// A binary message, or null when it is too short or of a kind this page does not know.
export function parseMedia(buffer: ArrayBuffer): Media | null {
  if (buffer.byteLength < HEADER_BYTES) return null;
  const view = new DataView(buffer);
  const kind = view.getUint8(0);
  if (kind !== MEDIA_SPEECH && kind !== MEDIA_FACE && kind !== MEDIA_IDLE) return null;
  return {
    kind,
    turn: view.getUint32(1, true),
    index: Number(view.getBigUint64(5, true)),
    data: new Uint8Array(buffer, HEADER_BYTES),
  };
}

// PCM16 little-endian bytes as samples in [-1, 1).
export function pcm16ToFloat(bytes: Uint8Array): Float32Array<ArrayBuffer> {
  const count = Math.floor(bytes.byteLength / 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, count * 2);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

// --- events -----------------------------------------------------------------------------------------------

export interface SessionEvent {
  type: "session";
  session_id: string;
  resumed: boolean;
  turns: number;
  sessions?: number;
  max_sessions?: number;
  avatar?: { id: string; width: number; height: number };
  transport?: string;
}
export interface VadEvent {
  type: "vad";
  kind: "start" | "end";
  utterance: number;
  sample?: number;
}
export interface PartialEvent {
  type: "partial";
  utterance: number;
  committed: string;
  unstable: string;
}
export interface FinalEvent {
  type: "final";
  utterance: number;
  text: string;
}
export interface TurnEvent {
  type: "turn";
  turn_id: string;
  turn: number;
  user_text: string;
}
export interface ReplyEvent {
  type: "reply";
  turn_id: string;
  text: string;
}
export type TurnStatus = "done" | "interrupted" | "failed";
export interface TurnEndEvent {
  type: "turn_end";
  turn_id: string;
  turn: number;
  status: TurnStatus;
  reply: string;
  heard: string;
  code: string;
  trace: Record<string, number>;
  samples?: number;
  frames?: number;
  dropped_frames?: number;
  stopped?: string[];
}
export interface ErrorEvent {
  type: "error";
  code: string;
  message: string;
}
export interface ClosedEvent {
  type: "closed";
  reason: string;
}
// WebRTC only: turn N's speech starts on the audio track / has been sent to its end.
export interface PlayoutEvent {
  type: "playout";
  turn: number;
  pts?: number;
  waited_s?: number;
}
export interface AvSyncEvent {
  type: "av_sync";
  turn: number;
  interrupted?: boolean;
}

export type TalkEvent =
  | SessionEvent
  | VadEvent
  | PartialEvent
  | FinalEvent
  | TurnEvent
  | ReplyEvent
  | TurnEndEvent
  | ErrorEvent
  | ClosedEvent
  | PlayoutEvent
  | AvSyncEvent;

const TYPES = new Set(["session", "vad", "partial", "final", "turn", "reply", "turn_end", "error", "closed", "playout", "av_sync"]);

// A text message as an event; null when it is not JSON or not an event this page knows. Fields the page relies
// on get safe defaults, so a sparse event cannot break the views.
export function parseEvent(text: string): TalkEvent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== "object" || raw === null) return null;
  const o = raw as Record<string, unknown>;
  if (typeof o.type !== "string" || !TYPES.has(o.type)) return null;
  const str = (key: string) => (typeof o[key] === "string" ? (o[key] as string) : "");
  const num = (key: string) => (typeof o[key] === "number" ? (o[key] as number) : 0);
  switch (o.type) {
    case "session":
      return { ...(o as unknown as SessionEvent), session_id: str("session_id"), resumed: o.resumed === true, turns: num("turns") };
    case "vad":
      return { type: "vad", kind: o.kind === "end" ? "end" : "start", utterance: num("utterance"), sample: num("sample") };
    case "partial":
      return { type: "partial", utterance: num("utterance"), committed: str("committed"), unstable: str("unstable") };
    case "final":
      return { type: "final", utterance: num("utterance"), text: str("text") };
    case "turn":
      return { type: "turn", turn_id: str("turn_id"), turn: num("turn"), user_text: str("user_text") };
    case "reply":
      return { type: "reply", turn_id: str("turn_id"), text: str("text") };
    case "turn_end": {
      const status = o.status === "interrupted" || o.status === "failed" ? o.status : "done";
      const trace: Record<string, number> = {};
      if (typeof o.trace === "object" && o.trace !== null) {
        for (const [k, v] of Object.entries(o.trace)) if (typeof v === "number") trace[k] = v;
      }
      return {
        type: "turn_end",
        turn_id: str("turn_id"),
        turn: num("turn"),
        status,
        reply: str("reply"),
        heard: str("heard"),
        code: str("code"),
        trace,
        samples: num("samples"),
        frames: num("frames"),
        dropped_frames: num("dropped_frames"),
        stopped: Array.isArray(o.stopped) ? o.stopped.filter((s): s is string => typeof s === "string") : [],
      };
    }
    case "error":
      return { type: "error", code: str("code") || "error", message: str("message") };
    case "closed":
      return { type: "closed", reason: str("reason") };
    case "playout":
      return { type: "playout", turn: num("turn"), pts: num("pts"), waited_s: num("waited_s") };
    case "av_sync":
      return { type: "av_sync", turn: num("turn"), interrupted: o.interrupted === true };
  }
  return null;
}

// Why a session ended, in words (the `closed` event's reason).
export function closedReasonText(reason: string): string {
  switch (reason) {
    case "bye":
      return "The call ended.";
    case "client-gone":
      return "The appliance lost this connection.";
    case "resumed-elsewhere":
      return "This conversation continued in another window or device.";
    case "gateway-restarted":
    case "gateway-stopping":
      return "The appliance restarted; start talking again to resume.";
    case "session-ended":
      return "The session ended.";
    default:
      return reason ? `The session ended (${reason}).` : "The session ended.";
  }
}
