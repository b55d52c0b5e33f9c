// What the call is doing, as the user sees it: connecting, listening, thinking, speaking, interrupted,
// disconnected or error. A pure reducer over the protocol's events and the player's start/stop of a turn's
// speech; the shown phase is derived from it and the clock (`interrupted` lasts INTERRUPTED_MS).
import type { TalkEvent } from "./protocol";

export type TalkPhase = "connecting" | "listening" | "thinking" | "speaking" | "interrupted" | "disconnected" | "error";
export type Link = "idle" | "connecting" | "live" | "disconnected" | "error";

export const INTERRUPTED_MS = 1500;

export interface Problem {
  code: string;
  message: string;
}

export interface TalkState {
  link: Link;
  awaiting: boolean; // the user stopped speaking: a transcript and a turn are coming
  replyTurn: number | null; // the turn being answered
  replyDone: boolean; // its turn_end `done` came
  spokenTurn: number | null; // the last turn whose speech began playing
  playing: number | null; // the turn whose speech is playing now
  interruptedAt: number | null; // ms, when the last turn was cut by barge-in
  partial: { committed: string; unstable: string } | null;
  final: string;
  problem: Problem | null; // why the link is in error, or the last stage failure while live
  closedReason: string; // the `closed` event's reason, when one came
}

export type TalkAction =
  | { type: "connect" }
  | { type: "event"; event: TalkEvent; now: number }
  | { type: "playback"; turn: number; playing: boolean }
  | { type: "disconnected" }
  | { type: "failed"; problem: Problem }
  | { type: "dismiss-problem" }
  | { type: "clear-transcript" }; // another conversation was opened

export const initialTalk: TalkState = {
  link: "idle",
  awaiting: false,
  replyTurn: null,
  replyDone: false,
  spokenTurn: null,
  playing: null,
  interruptedAt: null,
  partial: null,
  final: "",
  problem: null,
  closedReason: "",
};

export function talkReducer(state: TalkState, action: TalkAction): TalkState {
  switch (action.type) {
    case "connect":
      return { ...initialTalk, link: "connecting", final: state.final };
    case "disconnected":
      if (state.link === "error") return { ...state, playing: null, awaiting: false };
      return { ...state, link: "disconnected", playing: null, awaiting: false, replyTurn: null, partial: null };
    case "failed":
      return { ...state, link: "error", problem: action.problem, playing: null, awaiting: false, replyTurn: null, partial: null };
    case "clear-transcript":
      return { ...state, partial: null, final: "" };
    case "dismiss-problem":
      return { ...state, problem: state.link === "error" ? state.problem : null };
    case "playback":
      if (action.playing) return { ...state, playing: action.turn, spokenTurn: action.turn };
      return state.playing === action.turn ? { ...state, playing: null } : state;
    case "event":
      return onEvent(state, action.event, action.now);
  }
}

function onEvent(state: TalkState, event: TalkEvent, now: number): TalkState {
  switch (event.type) {
    case "session":
      return { ...state, link: "live", problem: null, closedReason: "" };
    case "vad":
      // Speaking again before a transcript came: still the same thought, not a turn yet.
      return event.kind === "end" ? { ...state, awaiting: true } : { ...state, awaiting: false };
    case "partial":
      return { ...state, partial: { committed: event.committed, unstable: event.unstable } };
    case "final": {
      const text = event.text.trim();
      // An empty transcript (a cough, noise) makes no turn: back to listening.
      return { ...state, partial: null, final: text || state.final, awaiting: text !== "" };
    }
    case "turn":
      return { ...state, awaiting: false, replyTurn: event.turn, replyDone: false };
    case "playout":
      return { ...state, playing: event.turn, spokenTurn: event.turn };
    case "av_sync":
      return state.playing === event.turn ? { ...state, playing: null } : state;
    case "turn_end":
      if (event.status === "interrupted") {
        return {
          ...state,
          interruptedAt: now,
          playing: state.playing === event.turn ? null : state.playing,
          replyTurn: state.replyTurn === event.turn ? null : state.replyTurn,
        };
      }
      if (event.status === "failed") {
        return {
          ...state,
          awaiting: false,
          playing: state.playing === event.turn ? null : state.playing,
          replyTurn: state.replyTurn === event.turn ? null : state.replyTurn,
          problem: { code: event.code || "turn-failed", message: "The answer failed." },
        };
      }
      return state.replyTurn === event.turn ? { ...state, replyDone: true } : state;
    case "error":
      return { ...state, problem: { code: event.code, message: event.message } };
    case "closed":
      return { ...state, closedReason: event.reason };
    case "reply":
      return state;
  }
}

// The phase to show at `now` (ms).
export function phaseOf(state: TalkState, now: number): TalkPhase {
  switch (state.link) {
    case "idle":
    case "disconnected":
      return "disconnected";
    case "connecting":
      return "connecting";
    case "error":
      return "error";
    case "live":
      break;
  }
  if (state.interruptedAt !== null && now - state.interruptedAt < INTERRUPTED_MS) return "interrupted";
  if (state.playing !== null) return "speaking";
  const answering = state.replyTurn !== null && !state.replyDone;
  // Between two chunks of one answer's speech it is still speaking, not thinking again.
  if (answering && state.spokenTurn === state.replyTurn) return "speaking";
  if (state.awaiting || answering) return "thinking";
  return "listening";
}

// When the shown phase changes by the clock alone (the end of `interrupted`), in ms from now; null: never.
export function nextPhaseChange(state: TalkState, now: number): number | null {
  if (state.interruptedAt === null) return null;
  const left = state.interruptedAt + INTERRUPTED_MS - now;
  return left > 0 ? left : null;
}

// A line under the state pill: what the user can do now.
export const PHASE_HINT: Record<TalkPhase, string> = {
  connecting: "Opening the call…",
  listening: "Go ahead, I'm listening.",
  thinking: "Working on an answer…",
  speaking: "Speak over me to interrupt.",
  interrupted: "Stopped; listening to you.",
  disconnected: "Press Start talking to begin.",
  error: "The call could not go on.",
};
