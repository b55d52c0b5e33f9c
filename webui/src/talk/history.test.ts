import { describe, expect, it } from "vitest";
import { addTyped, applyEvent, failTyped, formatLineTime, fromStored, lineKey, mergeHistory, settleTyped, type Line } from "./history";
import type { TalkEvent } from "./protocol";

const stored = fromStored([
  { role: "user", text: "Hello", turn_id: "t1", created_at: 1000 },
  { role: "assistant", text: "Hi! How can I help?", turn_id: "t1", created_at: 1001 },
]);

function play(events: TalkEvent[], from: Line[] = []): Line[] {
  return events.reduce((lines, event, i) => applyEvent(lines, event, 2000 + i), from);
}

const end = (status: "done" | "interrupted" | "failed", extra: Record<string, unknown> = {}): TalkEvent =>
  ({ type: "turn_end", turn_id: "t2", turn: 2, status, reply: "", heard: "", code: "", trace: {}, ...extra }) as TalkEvent;

describe("live lines", () => {
  it("adds the user's words at turn and grows the reply until turn_end settles it", () => {
    const lines = play([
      { type: "turn", turn_id: "t2", turn: 2, user_text: "Tell me a joke" },
      { type: "reply", turn_id: "t2", text: "Why did" },
      { type: "reply", turn_id: "t2", text: " the chicken" },
    ]);
    expect(lines.map((line) => [line.role, line.text, line.status])).toEqual([
      ["user", "Tell me a joke", "done"],
      ["assistant", "Why did the chicken", "streaming"],
    ]);
    const settled = applyEvent(lines, end("done", { reply: "Why did the chicken cross the road?" }), 3000);
    expect(settled[1]).toMatchObject({ text: "Why did the chicken cross the road?", status: "done", at: 2000 });
  });

  it("keeps only what was heard of an interrupted answer, and marks it", () => {
    const lines = play([
      { type: "turn", turn_id: "t2", turn: 2, user_text: "Tell me a story" },
      { type: "reply", turn_id: "t2", text: "Once upon a time there was a king" },
      end("interrupted", { heard: "Once upon a time", reply: "Once upon a time there was a king" }),
      { type: "reply", turn_id: "t2", text: " who" }, // late text of a cut answer is not added
    ]);
    expect(lines[1]).toMatchObject({ text: "Once upon a time", status: "interrupted" });
  });

  it("marks a failed answer with its code", () => {
    const lines = play([{ type: "turn", turn_id: "t2", turn: 2, user_text: "Hi" }, end("failed", { code: "tts-timeout" })]);
    expect(lines[1]).toMatchObject({ status: "failed", code: "tts-timeout" });
  });

  it("ignores events without a turn id and events that add no line", () => {
    const lines = play([{ type: "vad", kind: "start", utterance: 1 }, { ...end("interrupted"), turn_id: "" } as TalkEvent]);
    expect(lines).toEqual([]);
  });
});

describe("mergeHistory", () => {
  it("shows the stored lines, then the live ones it does not have", () => {
    const live = play([{ type: "turn", turn_id: "t2", turn: 2, user_text: "Again" }]);
    const merged = mergeHistory(stored, live);
    expect(merged.map((line) => line.key)).toEqual([lineKey("user", "t1"), lineKey("assistant", "t1"), lineKey("user", "t2"), lineKey("assistant", "t2")]);
  });

  it("does not repeat a line the store also has, and keeps the interrupted mark the store lacks", () => {
    const live = play([
      { type: "turn", turn_id: "t2", turn: 2, user_text: "Tell me a story" },
      end("interrupted", { heard: "Once upon" }),
    ]);
    const reloaded = fromStored([
      ...stored.map((line) => ({ role: line.role, text: line.text, turn_id: line.turnId, created_at: line.at })),
      { role: "user" as const, text: "Tell me a story", turn_id: "t2", created_at: 1990 },
      { role: "assistant" as const, text: "Once upon", turn_id: "t2", created_at: 1995 },
    ]);
    const merged = mergeHistory(reloaded, live);
    expect(merged).toHaveLength(4);
    expect(merged[3]).toMatchObject({ text: "Once upon", status: "interrupted", at: 1995 });
  });

  it("keeps a still-streaming reply's live text over a stored partial one", () => {
    const live = play([{ type: "turn", turn_id: "t1", turn: 1, user_text: "Hello" }, { type: "reply", turn_id: "t1", text: "Hi! How can I help you today" }]);
    const merged = mergeHistory(stored, live);
    expect(merged).toHaveLength(2);
    expect(merged[1].text).toBe("Hi! How can I help you today");
  });
});

describe("typed messages", () => {
  it("shows the message at once and settles it under its turn id", () => {
    let lines = addTyped([], "typed:1", "What time is it?", 100);
    expect(lines[0]).toMatchObject({ status: "pending", role: "user" });
    lines = settleTyped(lines, "typed:1", "t9", "Noon.", 101);
    expect(lines.map((line) => [line.key, line.text, line.status])).toEqual([
      ["user:t9", "What time is it?", "done"],
      ["assistant:t9", "Noon.", "done"],
    ]);
    // the stored history of the same turn does not double it
    const again = mergeHistory(fromStored([{ role: "user", text: "What time is it?", turn_id: "t9", created_at: 100 }]), lines);
    expect(again).toHaveLength(2);
  });

  it("marks a message that was not answered", () => {
    const lines = failTyped(addTyped([], "typed:1", "Hi", 1), "typed:1", "llm-not-ready");
    expect(lines[0]).toMatchObject({ status: "failed", code: "llm-not-ready" });
  });
});

describe("formatLineTime", () => {
  it("shows only the time today and adds the date for older lines", () => {
    const now = new Date(2026, 10, 27, 15, 30);
    const today = new Date(2026, 10, 27, 9, 5).getTime() / 1000;
    const longAgo = new Date(2025, 0, 3, 9, 5).getTime() / 1000;
    expect(formatLineTime(today, now)).not.toMatch(/2026/);
    expect(formatLineTime(today, now)).toMatch(/09|9/);
    expect(formatLineTime(longAgo, now)).toMatch(/2025/);
  });
});
