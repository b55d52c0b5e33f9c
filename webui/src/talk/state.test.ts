import { describe, expect, it } from "vitest";
import type { TalkEvent } from "./protocol";
import { INTERRUPTED_MS, initialTalk, nextPhaseChange, phaseOf, talkReducer, type TalkAction, type TalkState } from "./state";

const ev = (event: TalkEvent, now = 0): TalkAction => ({ type: "event", event, now });
const run = (actions: TalkAction[], from: TalkState = initialTalk) => actions.reduce(talkReducer, from);
const session: TalkEvent = { type: "session", session_id: "s", resumed: false, turns: 0 };

function turnEnd(turn: number, status: "done" | "interrupted" | "failed", extra: Partial<Record<string, unknown>> = {}): TalkEvent {
  return { type: "turn_end", turn_id: `t${turn}`, turn, status, reply: "", heard: "", code: "", trace: {}, ...extra } as TalkEvent;
}

describe("the talk state over a conversation", () => {
  it("goes connecting, listening, thinking, speaking and back to listening", () => {
    const phases: string[] = [];
    let state = initialTalk;
    const step = (action: TalkAction) => {
      state = talkReducer(state, action);
      phases.push(phaseOf(state, 0));
    };
    expect(phaseOf(state, 0)).toBe("disconnected");
    step({ type: "connect" });
    step(ev(session));
    step(ev({ type: "vad", kind: "start", utterance: 1 }));
    step(ev({ type: "partial", utterance: 1, committed: "what is", unstable: "the time" }));
    expect(state.partial).toEqual({ committed: "what is", unstable: "the time" });
    step(ev({ type: "vad", kind: "end", utterance: 1 }));
    step(ev({ type: "final", utterance: 1, text: "What is the time?" }));
    step(ev({ type: "turn", turn_id: "t1", turn: 1, user_text: "What is the time?" }));
    step(ev({ type: "reply", turn_id: "t1", text: "It is" }));
    step({ type: "playback", turn: 1, playing: true });
    step({ type: "playback", turn: 1, playing: false }); // a gap between chunks: still the same answer
    step({ type: "playback", turn: 1, playing: true });
    step(ev(turnEnd(1, "done", { reply: "It is noon." })));
    step({ type: "playback", turn: 1, playing: false });
    expect(phases).toEqual([
      "connecting",
      "listening",
      "listening",
      "listening",
      "thinking",
      "thinking",
      "thinking",
      "thinking",
      "speaking",
      "speaking",
      "speaking",
      "speaking",
      "listening",
    ]);
    expect(state.final).toBe("What is the time?");
    expect(state.partial).toBeNull();
  });

  it("shows interrupted for a moment after barge-in, then listens", () => {
    const t0 = 10_000;
    const state = run([
      { type: "connect" },
      ev(session),
      ev({ type: "turn", turn_id: "t1", turn: 1, user_text: "Tell me a story" }),
      { type: "playback", turn: 1, playing: true },
      ev({ type: "vad", kind: "start", utterance: 2 }),
      ev(turnEnd(1, "interrupted", { heard: "Once upon" }), t0),
    ]);
    expect(phaseOf(state, t0 + 10)).toBe("interrupted");
    expect(nextPhaseChange(state, t0 + 500)).toBe(INTERRUPTED_MS - 500);
    expect(phaseOf(state, t0 + INTERRUPTED_MS)).toBe("listening");
    expect(nextPhaseChange(state, t0 + INTERRUPTED_MS)).toBeNull();
    expect(state.playing).toBeNull();
  });

  it("handles an answer that ended done and is then interrupted while still playing", () => {
    const state = run([
      { type: "connect" },
      ev(session),
      ev({ type: "turn", turn_id: "t1", turn: 1, user_text: "Hi" }),
      { type: "playback", turn: 1, playing: true },
      ev(turnEnd(1, "done")),
    ]);
    expect(phaseOf(state, 0)).toBe("speaking");
    const cut = run([ev(turnEnd(1, "interrupted"), 100), { type: "playback", turn: 1, playing: false }], state);
    expect(phaseOf(cut, 200)).toBe("interrupted");
    expect(phaseOf(cut, 100 + INTERRUPTED_MS)).toBe("listening");
  });

  it("returns to listening after a failed turn and keeps its code", () => {
    const state = run([
      { type: "connect" },
      ev(session),
      ev({ type: "vad", kind: "end", utterance: 1 }),
      ev({ type: "final", utterance: 1, text: "Hello?" }),
      ev({ type: "turn", turn_id: "t1", turn: 1, user_text: "Hello?" }),
      ev(turnEnd(1, "failed", { code: "llm-worker-crashed" })),
    ]);
    expect(phaseOf(state, 0)).toBe("listening");
    expect(state.problem?.code).toBe("llm-worker-crashed");
  });

  it("makes no turn of an empty transcript", () => {
    const state = run([{ type: "connect" }, ev(session), ev({ type: "vad", kind: "end", utterance: 1 })]);
    expect(phaseOf(state, 0)).toBe("thinking");
    expect(phaseOf(talkReducer(state, ev({ type: "final", utterance: 1, text: "  " })), 0)).toBe("listening");
  });

  it("follows WebRTC's playout and av_sync events", () => {
    const state = run([
      { type: "connect" },
      ev(session),
      ev({ type: "turn", turn_id: "t1", turn: 1, user_text: "Hi" }),
      ev({ type: "playout", turn: 1, pts: 48_000 }),
    ]);
    expect(phaseOf(state, 0)).toBe("speaking");
    const ended = run([ev(turnEnd(1, "done")), ev({ type: "av_sync", turn: 1 })], state);
    expect(phaseOf(ended, 0)).toBe("listening");
  });

  it("reports a refused or lost call as error, and a hang-up as disconnected", () => {
    const refused = run([{ type: "connect" }, { type: "failed", problem: { code: "session-refused-budget", message: "full" } }]);
    expect(phaseOf(refused, 0)).toBe("error");
    expect(refused.problem?.code).toBe("session-refused-budget");
    expect(phaseOf(talkReducer(refused, { type: "disconnected" }), 0)).toBe("error");
    const hungUp = run([{ type: "connect" }, ev(session), { type: "disconnected" }]);
    expect(phaseOf(hungUp, 0)).toBe("disconnected");
    expect(phaseOf(talkReducer(hungUp, { type: "connect" }), 0)).toBe("connecting");
  });

  it("notes a stage error without ending the call", () => {
    const state = run([{ type: "connect" }, ev(session), ev({ type: "error", code: "stt-not-ready", message: "loading" })]);
    expect(phaseOf(state, 0)).toBe("listening");
    expect(state.problem).toEqual({ code: "stt-not-ready", message: "loading" });
  });

  it("clears what was heard when another conversation opens", () => {
    const state = run([{ type: "connect" }, ev(session), ev({ type: "final", utterance: 1, text: "Hello" }), { type: "clear-transcript" }]);
    expect(state.final).toBe("");
    expect(state.link).toBe("live");
  });
});
