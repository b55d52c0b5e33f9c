// The conversation as shown: the stored history (GET /api/sessions/{id}/history) merged with what the live call
// and typed messages add. Lines are keyed by role and turn id, so a line the store also has is not shown twice.
import type { Schemas } from "../api/client";
import type { TalkEvent } from "./protocol";

export type LineStatus = "done" | "streaming" | "interrupted" | "failed" | "pending";

export interface Line {
  key: string;
  role: "user" | "assistant";
  text: string;
  at: number; // seconds since the epoch
  turnId: string;
  status: LineStatus;
  code?: string; // why a failed line failed
}

export function lineKey(role: Line["role"], turnId: string): string {
  return `${role}:${turnId}`;
}

export function fromStored(lines: Schemas["LineOut"][]): Line[] {
  return lines.map((line) => ({
    key: lineKey(line.role, line.turn_id),
    role: line.role,
    text: line.text,
    at: line.created_at,
    turnId: line.turn_id,
    status: "done",
  }));
}

// Stored lines first, in their order; a live line of the same key keeps its status (the store does not say a
// turn was interrupted) and, while it is still streaming, its text; live lines the store does not have follow.
export function mergeHistory(stored: Line[], live: Line[]): Line[] {
  const liveByKey = new Map(live.map((line) => [line.key, line]));
  const storedKeys = new Set(stored.map((line) => line.key));
  const merged = stored.map((line) => {
    const seen = liveByKey.get(line.key);
    if (!seen) return line;
    return {
      ...line,
      status: seen.status,
      code: seen.code,
      text: seen.status === "streaming" ? seen.text : line.text,
    };
  });
  return merged.concat(live.filter((line) => !storedKeys.has(line.key)));
}

function upsert(lines: Line[], key: string, make: () => Line, change: (line: Line) => Line): Line[] {
  const at = lines.findIndex((line) => line.key === key);
  if (at < 0) return [...lines, change(make())];
  const next = lines.slice();
  next[at] = change(lines[at]);
  return next;
}

// The live lines after one event of the call; `now` in seconds since the epoch.
export function applyEvent(lines: Line[], event: TalkEvent, now: number): Line[] {
  switch (event.type) {
    case "turn": {
      if (!event.turn_id) return lines;
      const user = lineKey("user", event.turn_id);
      const withUser = upsert(
        lines,
        user,
        () => ({ key: user, role: "user", text: "", at: now, turnId: event.turn_id, status: "done" }),
        (line) => ({ ...line, text: event.user_text }),
      );
      const reply = lineKey("assistant", event.turn_id);
      return upsert(
        withUser,
        reply,
        () => ({ key: reply, role: "assistant", text: "", at: now, turnId: event.turn_id, status: "streaming" }),
        (line) => line,
      );
    }
    case "reply": {
      if (!event.turn_id) return lines;
      const key = lineKey("assistant", event.turn_id);
      return upsert(
        lines,
        key,
        () => ({ key, role: "assistant", text: "", at: now, turnId: event.turn_id, status: "streaming" }),
        (line) => (line.status === "streaming" ? { ...line, text: line.text + event.text } : line),
      );
    }
    case "turn_end": {
      if (!event.turn_id) return lines;
      const key = lineKey("assistant", event.turn_id);
      const make = (): Line => ({ key, role: "assistant", text: "", at: now, turnId: event.turn_id, status: "streaming" });
      switch (event.status) {
        case "done":
          return upsert(lines, key, make, (line) => ({ ...line, text: event.reply || line.text, status: "done" }));
        case "interrupted":
          // Only what was heard stays in the conversation.
          return upsert(lines, key, make, (line) => ({ ...line, text: event.heard, status: "interrupted" }));
        case "failed":
          return upsert(lines, key, make, (line) => ({ ...line, status: "failed", code: event.code || "turn-failed" }));
      }
      return lines;
    }
    default:
      return lines;
  }
}

// A typed message on its way (POST /chat): shown at once, keyed until the answer names its turn.
export function addTyped(lines: Line[], pendingKey: string, text: string, now: number): Line[] {
  return [...lines, { key: pendingKey, role: "user", text, at: now, turnId: "", status: "pending" }];
}

// The answer to a typed message: its user line gets the turn's key, the reply follows it.
export function settleTyped(lines: Line[], pendingKey: string, turnId: string, reply: string, now: number): Line[] {
  const settled = lines.map((line) =>
    line.key === pendingKey ? { ...line, key: lineKey("user", turnId), turnId, status: "done" as const } : line,
  );
  return [...settled, { key: lineKey("assistant", turnId), role: "assistant", text: reply, at: now, turnId, status: "done" }];
}

export function failTyped(lines: Line[], pendingKey: string, code: string): Line[] {
  return lines.map((line) => (line.key === pendingKey ? { ...line, status: "failed" as const, code } : line));
}

// A line's time as people read it: the time of day today, the day and time this week, else the date.
export function formatLineTime(at: number, now: Date = new Date()): string {
  const when = new Date(at * 1000);
  const time = when.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  const sameDay = when.toDateString() === now.toDateString();
  if (sameDay) return time;
  const days = (now.getTime() - when.getTime()) / 86_400_000;
  if (days >= 0 && days < 6) return `${when.toLocaleDateString(undefined, { weekday: "short" })} ${time}`;
  return `${when.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" })} ${time}`;
}
