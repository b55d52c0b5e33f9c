// The WebRTC transport (docs/voice-chat.md, "WebRTC"): the microphone up on a sendrecv audio m-line, the face
// down on a recvonly video m-line, the events on a data channel `events` made before the offer; the offer goes
// once ICE gathering is complete (no trickle, no STUN/TURN); voice and face play from one MediaStream.
import { ApiError, api, data } from "../api/client";

import type { Microphone } from "./mic";
import { parseEvent } from "./protocol";
import type { CallHooks, Connection } from "./connection";
import { CONNECT_TIMEOUT_MS, type WebRtcFailure } from "./transport";

const GATHER_TIMEOUT_MS = 4000;
const DISCONNECTED_GRACE_MS = 6000;

export type WebRtcResult =
  | { ok: true; connection: Connection }
  | { ok: false; failure: WebRtcFailure; sessionId: string | null; error: ApiError };

export function hasWebRtc(): boolean {
  return typeof window !== "undefined" && typeof window.RTCPeerConnection === "function";
}

function gathered(pc: RTCPeerConnection, signal: AbortSignal): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      window.clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = window.setTimeout(done, GATHER_TIMEOUT_MS); // send what was gathered
    pc.addEventListener("icegatheringstatechange", check);
    signal.addEventListener("abort", done);
  });
}

function connected(pc: RTCPeerConnection, signal: AbortSignal): Promise<"connected" | "failed" | "timeout"> {
  return new Promise((resolve) => {
    const finish = (how: "connected" | "failed" | "timeout") => {
      window.clearTimeout(timer);
      pc.removeEventListener("connectionstatechange", check);
      signal.removeEventListener("abort", aborted);
      resolve(how);
    };
    const check = () => {
      if (pc.connectionState === "connected") finish("connected");
      else if (pc.connectionState === "failed" || pc.connectionState === "closed") finish("failed");
    };
    const aborted = () => finish("failed");
    const timer = window.setTimeout(() => finish("timeout"), CONNECT_TIMEOUT_MS);
    pc.addEventListener("connectionstatechange", check);
    signal.addEventListener("abort", aborted);
    check();
  });
}

function abortError(): ApiError {
  return new ApiError("cancelled", "the call was cancelled", 0);
}

export async function openWebRtc(options: {
  mic: Microphone;
  sessionId: string | null;
  video: HTMLVideoElement;
  hooks: CallHooks;
  signal: AbortSignal;
}): Promise<WebRtcResult> {
  const { mic, video, hooks, signal } = options;
  let pc: RTCPeerConnection;
  let channel: RTCDataChannel;
  const remote = new MediaStream();
  try {
    pc = new RTCPeerConnection({ iceServers: [] });
    channel = pc.createDataChannel("events");
    pc.addTrack(mic.track, mic.stream);
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (event) => {
      if (!remote.getTracks().includes(event.track)) remote.addTrack(event.track);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, signal);
  } catch (err) {
    return { ok: false, failure: { kind: "browser" }, sessionId: options.sessionId, error: new ApiError("webrtc-browser", `this browser could not make a WebRTC offer: ${String(err)}`, 0) };
  }
  const fail = (failure: WebRtcFailure, error: ApiError, sessionId: string | null): WebRtcResult => {
    pc.close();
    return { ok: false, failure, sessionId, error };
  };
  if (signal.aborted) return fail({ kind: "connection-failed" }, abortError(), options.sessionId);

  let answer: { sdp: string; session_id: string };
  try {
    answer = await data(
      api.POST("/api/webrtc/offer", {
        body: { sdp: pc.localDescription?.sdp ?? "", type: "offer", session_id: options.sessionId },
      }),
    );
  } catch (err) {
    const error = err instanceof ApiError ? err : new ApiError("client-error", String(err), 0);
    return fail({ kind: "offer-refused", code: error.code }, error, options.sessionId);
  }
  if (signal.aborted) return fail({ kind: "connection-failed" }, abortError(), answer.session_id);

  // Events made before we know the call is ours wait here; they are dropped if we fall back.
  let live = false;
  const early: string[] = [];
  let closedReason = "";
  const deliver = (text: string) => {
    const event = parseEvent(text);
    if (!event) return;
    if (event.type === "closed") closedReason = event.reason;
    hooks.onEvent(event);
  };
  channel.onmessage = (message: MessageEvent) => {
    if (typeof message.data !== "string") return;
    if (live) deliver(message.data);
    else early.push(message.data);
  };

  try {
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  } catch (err) {
    return fail({ kind: "connection-failed" }, new ApiError("webrtc-answer-invalid", `the answer could not be used: ${String(err)}`, 0), answer.session_id);
  }
  video.srcObject = remote;
  const how = await connected(pc, signal);
  if (how !== "connected") {
    video.srcObject = null;
    const error =
      how === "timeout"
        ? new ApiError("webrtc-timeout", `WebRTC did not connect within ${CONNECT_TIMEOUT_MS / 1000} s`, 0)
        : signal.aborted
          ? abortError()
          : new ApiError("webrtc-connection-failed", "the WebRTC connection failed", 0);
    return fail(how === "timeout" ? { kind: "timeout" } : { kind: "connection-failed" }, error, answer.session_id);
  }

  let ending = false;
  let lostTimer = 0;
  const end = (why: Parameters<CallHooks["onEnded"]>[0]) => {
    if (ending) return;
    ending = true;
    window.clearTimeout(lostTimer);
    pc.close();
    video.srcObject = null;
    hooks.onEnded(why);
  };
  pc.onconnectionstatechange = () => {
    const state = pc.connectionState;
    if (state === "connected") window.clearTimeout(lostTimer);
    else if (state === "failed") end({ kind: "lost", message: "The WebRTC connection failed." });
    else if (state === "disconnected") {
      window.clearTimeout(lostTimer);
      lostTimer = window.setTimeout(() => end({ kind: "lost", message: "The WebRTC connection was lost." }), DISCONNECTED_GRACE_MS);
    }
  };
  channel.onclose = () =>
    end(closedReason ? { kind: "closed", reason: closedReason } : { kind: "lost", message: "The appliance closed the call." });

  live = true;
  for (const text of early.splice(0)) deliver(text);
  void video.play().catch(() => hooks.onNeedsGesture());

  const connection: Connection = {
    transport: "webrtc",
    sessionId: answer.session_id,
    hangUp() {
      if (ending) return;
      if (channel.readyState === "open") channel.send(JSON.stringify({ type: "bye" }));
      ending = true;
      window.clearTimeout(lostTimer);
      // A moment for the bye to leave; closing the connection ends the call too.
      window.setTimeout(() => {
        pc.close();
        video.srcObject = null;
      }, 150);
    },
    close() {
      if (ending) return;
      ending = true;
      window.clearTimeout(lostTimer);
      pc.close();
      video.srcObject = null;
    },
    resumeAudio() {
      return video.play();
    },
  };
  return { ok: true, connection };
}
