// Starting a call: WebRTC first, the WebSocket when WebRTC cannot carry it (auto), or the one the user chose.
import { ApiError } from "../api/client";
import type { CallHooks, Connection } from "./connection";
import type { Microphone } from "./mic";
import { firstTransport, shouldFallBack, type TransportChoice } from "./transport";
import { hasWebRtc, openWebRtc } from "./webrtc";
import { openWebSocket } from "./websocket";

export interface CallTargets {
  video: HTMLVideoElement | null;
  canvas: HTMLCanvasElement | null;
}

export async function startCall(options: {
  choice: TransportChoice;
  mic: Microphone;
  sessionId: string | null;
  targets: CallTargets;
  hooks: CallHooks;
  signal: AbortSignal;
  audio?: AudioContext; // the WebSocket player's, made in the click; closed here when WebRTC carries the call
  onFallback?: (why: ApiError) => void;
}): Promise<Connection> {
  const { choice, mic, targets, hooks, signal } = options;
  let sessionId = options.sessionId;
  const first = firstTransport(choice, hasWebRtc());
  if (first === null) {
    throw new ApiError("webrtc-unsupported", "This browser has no WebRTC: choose Auto or WebSocket.", 0);
  }
  if (first === "webrtc" && targets.video) {
    const result = await openWebRtc({ mic, sessionId, video: targets.video, hooks, signal });
    if (result.ok) {
      void options.audio?.close().catch(() => undefined);
      return result.connection;
    }
    if (signal.aborted || !shouldFallBack(choice, result.failure)) {
      void options.audio?.close().catch(() => undefined);
      throw result.error;
    }
    // The session the offer was admitted to resumes on the WebSocket (the unconnected peer is closed there).
    sessionId = result.sessionId ?? sessionId;
    options.onFallback?.(result.error);
  }
  try {
    return await openWebSocket({ mic, sessionId, canvas: targets.canvas, hooks, signal, audio: options.audio });
  } catch (err) {
    void options.audio?.close().catch(() => undefined);
    throw err;
  }
}
