// The WebSocket transport, WS /voice-chat (docs/voice-chat.md): auth first, then the microphone as 16 kHz PCM16
// up and `played` reports while a reply plays; down, JSON events and binary speech/face/idle media to the player.
import { ApiError } from "../api/client";
import { getToken, tokenLost } from "../lib/token";
import type { CallHooks, Connection } from "./connection";
import type { Microphone } from "./mic";
import { MEDIA_FACE, MEDIA_IDLE, MEDIA_SPEECH, parseEvent, parseMedia, type ErrorEvent } from "./protocol";
import { WsPlayer } from "./player";

export const WS_CLOSE_AUTH = 4401;
export const WS_CLOSE_REFUSED = 4409;
export const WS_CLOSE_RETRY = 4503; // the coordinator went away mid-session: reconnect with the session id

export function voiceChatUrl(location: Pick<Location, "protocol" | "host">, sessionId: string | null): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = sessionId ? `?${new URLSearchParams({ session_id: sessionId })}` : "";
  return `${scheme}//${location.host}/voice-chat${query}`;
}

// Resolves once the session is live (its `session` event), with the connection; rejects with an ApiError when
// it cannot start (refused: the error event's code and message; a bad token: auth-invalid, after tokenLost()).
export function openWebSocket(options: {
  mic: Microphone;
  sessionId: string | null;
  canvas: HTMLCanvasElement | null;
  hooks: CallHooks;
  signal: AbortSignal;
  audio?: AudioContext; // made in the click that started the call
}): Promise<Connection> {
  const { mic, hooks, signal } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(voiceChatUrl(window.location, options.sessionId));
    ws.binaryType = "arraybuffer";
    const send = (payload: string | ArrayBuffer) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(payload);
    };
    const player = new WsPlayer({
      onPlayback: (turn, playing) => hooks.onPlayback(turn, playing),
      onPlayed: (turn, samples) => {
        if (samples > 0) send(JSON.stringify({ type: "played", turn, samples }));
      },
    }, options.audio);
    player.attach(options.canvas);
    void player.resume().catch(() => hooks.onNeedsGesture());

    let up = false;
    let ending = false;
    let lastError: ErrorEvent | null = null;
    let closedReason = "";
    let sessionId = options.sessionId;

    const stop = () => {
      mic.stopPcm();
      player.close();
      signal.removeEventListener("abort", aborted);
    };
    const aborted = () => {
      ending = true;
      stop();
      ws.close(1000);
      if (!up) reject(new ApiError("cancelled", "the call was cancelled", 0));
    };
    signal.addEventListener("abort", aborted);

    const connection: Connection = {
      transport: "websocket",
      get sessionId() {
        return sessionId;
      },
      hangUp() {
        if (ending) return;
        ending = true;
        send(JSON.stringify({ type: "bye" }));
        stop();
        ws.close(1000);
      },
      close() {
        if (ending) return;
        ending = true;
        stop();
        ws.close(1000);
      },
      resumeAudio: () => player.resume(),
    };

    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "auth", token: getToken() ?? "" }));
      mic.startPcm((pcm) => send(pcm)).catch((err: unknown) => {
        hooks.onEvent({ type: "error", code: "mic-capture-failed", message: `the microphone could not be captured: ${String(err)}` });
      });
    };
    ws.onmessage = (message: MessageEvent) => {
      if (typeof message.data === "string") {
        const event = parseEvent(message.data);
        if (!event) return;
        if (event.type === "error") lastError = event;
        if (event.type === "closed") closedReason = event.reason;
        if (event.type === "turn_end" && event.status === "interrupted") player.interrupt(event.turn);
        if (event.type === "session") {
          sessionId = event.session_id;
          if (!up) {
            up = true;
            resolve(connection);
          }
        }
        if (up) hooks.onEvent(event);
        return;
      }
      if (!(message.data instanceof ArrayBuffer)) return;
      const media = parseMedia(message.data);
      if (!media) return;
      if (media.kind === MEDIA_SPEECH) player.speech(media.turn, media.index, media.data);
      else if (media.kind === MEDIA_FACE) player.face(media.turn, media.index, media.data);
      else if (media.kind === MEDIA_IDLE) player.idleFrame(media.index, media.data);
    };
    ws.onclose = (event: CloseEvent) => {
      stop();
      if (event.code === WS_CLOSE_AUTH) tokenLost();
      if (!up) {
        if (ending) return;
        if (event.code === WS_CLOSE_AUTH) reject(new ApiError(lastError?.code || "auth-invalid", lastError?.message || "this device must pair again", 401));
        else if (event.code === WS_CLOSE_REFUSED)
          reject(new ApiError(lastError?.code || event.reason || "session-refused", lastError?.message || "the appliance refused the session", 503));
        else reject(new ApiError("voice-chat-unavailable", `the appliance closed the connection before the call started (code ${event.code})`, 0));
        return;
      }
      if (ending) return;
      ending = true;
      if (event.code === WS_CLOSE_AUTH) hooks.onEnded({ kind: "auth" });
      else if (event.code === WS_CLOSE_RETRY)
        hooks.onEnded({ kind: "retry", code: lastError?.code || event.reason || "coordinator-restarted",
                        message: lastError?.message || "the appliance restarted a part of itself" });
      else if (closedReason) hooks.onEnded({ kind: "closed", reason: closedReason });
      else if (lastError && event.code === WS_CLOSE_REFUSED) hooks.onEnded({ kind: "refused", code: lastError.code, message: lastError.message });
      else hooks.onEnded({ kind: "lost", message: "The connection to the appliance was lost." });
    };
  });
}
