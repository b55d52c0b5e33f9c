// The Settings form's logic: which settings show where, what the fields hold, what changed, what restarts.
import type { Schemas } from "../api/client";

export type Setting = Schemas["SettingOut"];
export type SettingValue = string | number;
export type Health = Schemas["HealthOut"];

// Set elsewhere: the Avatar page chooses the active avatar.
export const HIDDEN_KEYS = new Set(["lipsync.avatar"]);

export const GROUPS: { title: string; keys: string[] }[] = [
  { title: "Models", keys: ["llm.backend", "llm.ollama.model", "stt.live_profile", "tts.backend", "lipsync.backend"] },
  { title: "Conversation", keys: ["stt.language", "llm.reply.max_sentences", "llm.reply.max_tokens"] },
  { title: "Quality", keys: ["tts.speed", "gateway.video_quality"] },
];

// The settings in their groups and order; any setting the appliance adds later lands in "Other".
export function groupSettings(settings: Setting[]): { title: string; settings: Setting[] }[] {
  const byKey = new Map(settings.map((s) => [s.key, s]));
  const placed = new Set(GROUPS.flatMap((g) => g.keys));
  const groups = GROUPS.map((g) => ({
    title: g.title,
    settings: g.keys.flatMap((key) => (byKey.has(key) ? [byKey.get(key)!] : [])),
  }));
  const other = settings.filter((s) => !placed.has(s.key) && !HIDDEN_KEYS.has(s.key));
  if (other.length) groups.push({ title: "Other", settings: other });
  return groups.filter((g) => g.settings.length > 0);
}

// What a field shows for a setting's current value.
export function draftOf(setting: Setting): string {
  return setting.value === null || setting.value === undefined ? "" : String(setting.value);
}

export function draftsOf(settings: Setting[]): Record<string, string> {
  return Object.fromEntries(settings.map((s) => [s.key, draftOf(s)]));
}

function bounds(setting: Setting): string {
  const { minimum: low, maximum: high } = setting;
  if (low !== null && high !== null) return `between ${low} and ${high}`;
  if (low !== null) return `at least ${low}`;
  if (high !== null) return `at most ${high}`;
  return "";
}

export type Parsed = { ok: true; value: SettingValue } | { ok: false; error: string };

// A field's text as the value the API takes, or why it cannot be sent.
export function parseField(setting: Setting, raw: string): Parsed {
  switch (setting.kind) {
    case "choice": {
      if (!setting.choices.includes(raw)) return { ok: false, error: `Choose one of: ${setting.choices.join(", ")}.` };
      const why = setting.unavailable[raw];
      if (why && raw !== setting.value) return { ok: false, error: `${raw} is not available: ${why}` };
      return { ok: true, value: raw };
    }
    case "int":
    case "float": {
      const text = raw.trim();
      const whole = setting.kind === "int";
      const range = bounds(setting);
      const wanted = `Enter a ${whole ? "whole " : ""}number${range ? ` ${range}` : ""}.`;
      if (!text) return { ok: false, error: wanted };
      const value = Number(text);
      if (!Number.isFinite(value) || (whole && !Number.isInteger(value))) return { ok: false, error: wanted };
      if ((setting.minimum !== null && value < setting.minimum) || (setting.maximum !== null && value > setting.maximum))
        return { ok: false, error: wanted };
      return { ok: true, value };
    }
    default: {
      const text = raw.trim();
      if (!text) return { ok: false, error: "Enter a value." };
      if (text.length > 500) return { ok: false, error: "At most 500 characters." };
      return { ok: true, value: text };
    }
  }
}

function same(setting: Setting, value: SettingValue): boolean {
  if (setting.kind === "int" || setting.kind === "float") return Number(setting.value) === value;
  return setting.value === value;
}

export interface Changes {
  values: Record<string, SettingValue | null>; // what to PUT; null puts a key back to mynah.toml's value
  errors: Record<string, string>; // fields that cannot be sent, by key
}

// Only what differs from what the appliance uses now, plus the resets; a field that is unchanged is not checked.
export function changedValues(settings: Setting[], drafts: Record<string, string>, resets: Set<string>): Changes {
  const values: Record<string, SettingValue | null> = {};
  const errors: Record<string, string> = {};
  for (const setting of settings) {
    if (HIDDEN_KEYS.has(setting.key)) continue;
    if (resets.has(setting.key)) {
      values[setting.key] = null;
      continue;
    }
    const raw = drafts[setting.key];
    if (raw === undefined || raw === draftOf(setting)) continue;
    const parsed = parseField(setting, raw);
    if (!parsed.ok) errors[setting.key] = parsed.error;
    else if (!same(setting, parsed.value)) values[setting.key] = parsed.value;
  }
  return { values, errors };
}

// The programs restarted to apply these keys: the coordinator first (it plans what the others load), the rest
// by name, as the appliance orders them.
export function restartPrograms(settings: Setting[], keys: string[]): string[] {
  const wanted = new Set(keys);
  const names = new Set(settings.filter((s) => wanted.has(s.key)).flatMap((s) => s.programs));
  return [...names].sort((a, b) => Number(a !== "coordinator") - Number(b !== "coordinator") || a.localeCompare(b));
}

// When the language model is the embedded demo model: its model name (or a stand-in); null otherwise.
export function demoModel(health: Health | null): string | null {
  const llm = health?.programs.find((p) => p.name === "llm");
  if (!llm || llm.backend !== "embedded") return null;
  return llm.model || "smollm2, 135M parameters";
}

const RUNS = new Set(["RUNNING", "STARTING", "BACKOFF"]);

export interface ApplyProgress {
  done: boolean;
  waiting: string[]; // "llm (STARTING: loading the model)"
}

// Whether the restarted programs are back: each one that runs has restarted since the change (its uptime is
// shorter than the time since) and is ready, and the appliance as a whole is ok. `health` null: no answer yet.
export function applyProgress(health: Health | null, restarting: string[], elapsedS: number): ApplyProgress {
  if (!health) return { done: false, waiting: restarting.length ? [...restarting] : ["the appliance (no answer)"] };
  const waiting: string[] = [];
  for (const name of restarting) {
    const program = health.programs.find((p) => p.name === name);
    if (!program) {
      waiting.push(`${name} (not reported yet)`);
      continue;
    }
    if (!RUNS.has(program.state)) continue; // stopped by the plan: it reads the new value when it starts
    const restarted = program.uptime_s <= elapsedS + 2;
    if (!restarted) waiting.push(`${name} (not restarted yet)`);
    else if (!program.ready) waiting.push(`${name} (${[program.state, program.detail].filter(Boolean).join(": ")})`);
  }
  if (!waiting.length && health.status !== "ok" && !onFallbacksOnly(health)) {
    waiting.push(health.summary.problem || `the appliance is ${health.status}`);
  }
  return { done: waiting.length === 0, waiting };
}

// Degraded only because ready programs run on a fallback backend ("tts: gpt-sovits unavailable ...; using
// piper until it is back"): the change has applied; waiting would not bring the preferred backend back.
function onFallbacksOnly(health: Health): boolean {
  const problems = health.problems ?? [];
  const ready = health.programs.filter((p) => p.ready).map((p) => `${p.name}: `);
  return (
    problems.length > 0 &&
    health.programs.every((p) => p.ready || !RUNS.has(p.state)) &&
    problems.every((problem) => ready.some((prefix) => problem.startsWith(prefix)))
  );
}
