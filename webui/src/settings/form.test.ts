import { describe, expect, it } from "vitest";
import {
  type Health,
  type Setting,
  applyProgress,
  changedValues,
  demoModel,
  draftsOf,
  groupSettings,
  parseField,
  restartPrograms,
} from "./form";

const setting = (over: Partial<Setting> & Pick<Setting, "key">): Setting => ({
  label: over.key,
  kind: "text",
  value: "",
  overridden: false,
  choices: [],
  unavailable: {},
  minimum: null,
  maximum: null,
  help: "",
  programs: [],
  ...over,
});

// As the appliance answers GET /api/settings (appliance/settings.py).
const SETTINGS: Setting[] = [
  setting({ key: "llm.backend", kind: "choice", value: "auto", choices: ["auto", "embedded", "ollama"],
    unavailable: { ollama: "Ollama does not answer at http://127.0.0.1:11434" }, programs: ["coordinator", "llm"] }),
  setting({ key: "llm.ollama.model", value: "llama3.2:3b", programs: ["coordinator", "llm"] }),
  setting({ key: "llm.reply.max_sentences", kind: "int", value: 3, minimum: 1, maximum: 10, programs: ["coordinator", "llm"] }),
  setting({ key: "llm.reply.max_tokens", kind: "int", value: 160, minimum: 16, maximum: 512, programs: ["coordinator", "llm"] }),
  setting({ key: "stt.language", kind: "choice", value: "en", choices: ["en", "auto", "de"], programs: ["coordinator", "stt", "stt-batch"] }),
  setting({ key: "stt.live_profile", kind: "choice", value: "auto", choices: ["auto", "tiny.en", "base", "gpu"], programs: ["coordinator", "stt"] }),
  setting({ key: "tts.backend", kind: "choice", value: "piper", choices: ["piper", "gpt-sovits"], programs: ["coordinator", "tts"] }),
  setting({ key: "tts.speed", kind: "float", value: 1.0, minimum: 0.5, maximum: 2.0, programs: ["tts"], overridden: true }),
  setting({ key: "lipsync.backend", kind: "choice", value: "realtime", choices: ["realtime", "sadtalker"], programs: ["coordinator", "lipsync"] }),
  setting({ key: "lipsync.avatar", value: "default", programs: ["lipsync"] }),
  setting({ key: "gateway.video_quality", kind: "choice", value: "standard", choices: ["low", "standard", "high"] }),
];
const byKey = (key: string) => SETTINGS.find((s) => s.key === key)!;

describe("groupSettings", () => {
  it("puts each setting in its group and order, without the avatar", () => {
    const groups = groupSettings(SETTINGS);
    expect(groups.map((g) => [g.title, g.settings.map((s) => s.key)])).toEqual([
      ["Models", ["llm.backend", "llm.ollama.model", "stt.live_profile", "tts.backend", "lipsync.backend"]],
      ["Conversation", ["stt.language", "llm.reply.max_sentences", "llm.reply.max_tokens"]],
      ["Quality", ["tts.speed", "gateway.video_quality"]],
    ]);
  });

  it("keeps settings it does not know in Other and drops empty groups", () => {
    const groups = groupSettings([byKey("tts.speed"), setting({ key: "new.thing" }), byKey("lipsync.avatar")]);
    expect(groups.map((g) => g.title)).toEqual(["Quality", "Other"]);
    expect(groups[1].settings.map((s) => s.key)).toEqual(["new.thing"]);
  });
});

describe("parseField", () => {
  it("checks whole numbers against their bounds", () => {
    const sentences = byKey("llm.reply.max_sentences");
    expect(parseField(sentences, " 4 ")).toEqual({ ok: true, value: 4 });
    expect(parseField(sentences, "10")).toEqual({ ok: true, value: 10 });
    expect(parseField(sentences, "11")).toEqual({ ok: false, error: "Enter a whole number between 1 and 10." });
    expect(parseField(sentences, "0").ok).toBe(false);
    expect(parseField(sentences, "2.5").ok).toBe(false);
    expect(parseField(sentences, "").ok).toBe(false);
    expect(parseField(sentences, "abc").ok).toBe(false);
  });

  it("takes decimals for floats", () => {
    const speed = byKey("tts.speed");
    expect(parseField(speed, "1.25")).toEqual({ ok: true, value: 1.25 });
    expect(parseField(speed, "0.4")).toEqual({ ok: false, error: "Enter a number between 0.5 and 2." });
    expect(parseField(speed, "Infinity").ok).toBe(false);
  });

  it("says a one-sided bound as such", () => {
    expect(parseField(setting({ key: "x", kind: "int", minimum: 1 }), "0")).toEqual({
      ok: false,
      error: "Enter a whole number at least 1.",
    });
  });

  it("refuses a choice the box cannot run, with why", () => {
    const backend = byKey("llm.backend");
    expect(parseField(backend, "embedded")).toEqual({ ok: true, value: "embedded" });
    expect(parseField(backend, "ollama")).toEqual({
      ok: false,
      error: "ollama is not available: Ollama does not answer at http://127.0.0.1:11434",
    });
    expect(parseField(backend, "gpt4").ok).toBe(false);
    // The value in use stays acceptable even when it became unavailable.
    expect(parseField({ ...backend, value: "ollama" }, "ollama").ok).toBe(true);
  });

  it("trims text and refuses it empty or too long", () => {
    const model = byKey("llm.ollama.model");
    expect(parseField(model, "  llama3.1:8b ")).toEqual({ ok: true, value: "llama3.1:8b" });
    expect(parseField(model, "   ").ok).toBe(false);
    expect(parseField(model, "x".repeat(501)).ok).toBe(false);
  });
});

describe("changedValues", () => {
  it("sends only what changed", () => {
    const drafts = { ...draftsOf(SETTINGS), "llm.reply.max_sentences": "5", "stt.language": "de" };
    expect(changedValues(SETTINGS, drafts, new Set())).toEqual({
      values: { "llm.reply.max_sentences": 5, "stt.language": "de" },
      errors: {},
    });
  });

  it("sends nothing for an untouched form, nor for a number written differently", () => {
    expect(changedValues(SETTINGS, draftsOf(SETTINGS), new Set()).values).toEqual({});
    const drafts = { ...draftsOf(SETTINGS), "tts.speed": "1.00", "llm.ollama.model": "llama3.2:3b " };
    expect(changedValues(SETTINGS, drafts, new Set()).values).toEqual({});
  });

  it("sends null for a reset, whatever the field holds", () => {
    const drafts = { ...draftsOf(SETTINGS), "tts.speed": "9" };
    expect(changedValues(SETTINGS, drafts, new Set(["tts.speed"]))).toEqual({ values: { "tts.speed": null }, errors: {} });
  });

  it("reports fields that cannot be sent", () => {
    const drafts = { ...draftsOf(SETTINGS), "llm.reply.max_tokens": "9000", "tts.backend": "gpt-sovits" };
    const changes = changedValues(SETTINGS, drafts, new Set());
    expect(Object.keys(changes.errors)).toEqual(["llm.reply.max_tokens"]);
    expect(changes.values).toEqual({ "tts.backend": "gpt-sovits" });
  });

  it("never sends the avatar", () => {
    const drafts = { ...draftsOf(SETTINGS), "lipsync.avatar": "other" };
    expect(changedValues(SETTINGS, drafts, new Set(["lipsync.avatar"])).values).toEqual({});
  });
});

describe("restartPrograms", () => {
  it("is the union of the changed settings' programs, the coordinator first", () => {
    expect(restartPrograms(SETTINGS, ["tts.speed", "stt.language"])).toEqual(["coordinator", "stt", "stt-batch", "tts"]);
    expect(restartPrograms(SETTINGS, ["tts.speed"])).toEqual(["tts"]);
    expect(restartPrograms(SETTINGS, ["gateway.video_quality"])).toEqual([]);
    expect(restartPrograms(SETTINGS, [])).toEqual([]);
  });
});

const program = (over: Partial<Health["programs"][number]> & { name: string }): Health["programs"][number] => ({
  state: "RUNNING",
  ready: true,
  pid: 1,
  uptime_s: 5000,
  restarts: 0,
  backend: "",
  model: "",
  drops: {},
  detail: "",
  ...over,
});
const health = (programs: Health["programs"], status: Health["status"] = "ok"): Health => ({
  status,
  programs,
  summary: { ready: programs.filter((p) => p.ready).length, total: programs.length, restarts_last_hour: 0, problem: "" },
});

describe("demoModel", () => {
  it("names the embedded model when the llm runs on it", () => {
    expect(demoModel(health([program({ name: "llm", backend: "embedded", model: "smollm2-135m-instruct" })]))).toBe(
      "smollm2-135m-instruct",
    );
    expect(demoModel(health([program({ name: "llm", backend: "embedded" })]))).toMatch(/smollm2/);
  });

  it("is null for Ollama, or without an llm", () => {
    expect(demoModel(health([program({ name: "llm", backend: "ollama", model: "llama3.1:8b" })]))).toBeNull();
    expect(demoModel(health([program({ name: "tts", backend: "embedded" })]))).toBeNull();
    expect(demoModel(null)).toBeNull();
  });
});

describe("applyProgress", () => {
  it("waits while the appliance does not answer", () => {
    expect(applyProgress(null, ["coordinator", "llm"], 3)).toEqual({ done: false, waiting: ["coordinator", "llm"] });
  });

  it("does not take an ok from before the restart for done", () => {
    const before = health([program({ name: "coordinator" }), program({ name: "llm" })]);
    expect(applyProgress(before, ["coordinator", "llm"], 1)).toEqual({
      done: false,
      waiting: ["coordinator (not restarted yet)", "llm (not restarted yet)"],
    });
  });

  it("waits for each restarted program to be ready, saying why not", () => {
    const loading = health(
      [program({ name: "coordinator", uptime_s: 4 }), program({ name: "llm", uptime_s: 2, ready: false, state: "RUNNING", detail: "loading the model" })],
      "degraded",
    );
    expect(applyProgress(loading, ["coordinator", "llm"], 5)).toEqual({
      done: false,
      waiting: ["llm (RUNNING: loading the model)"],
    });
  });

  it("is done when they are back and all is ok", () => {
    const back = health([program({ name: "coordinator", uptime_s: 9 }), program({ name: "llm", uptime_s: 7 })]);
    expect(applyProgress(back, ["coordinator", "llm"], 10)).toEqual({ done: true, waiting: [] });
  });

  it("skips programs the plan keeps stopped", () => {
    const stopped = health([program({ name: "coordinator", uptime_s: 3 }), program({ name: "stt-batch", state: "STOPPED", ready: false, uptime_s: 0 })]);
    expect(applyProgress({ ...stopped, status: "ok" }, ["coordinator", "stt-batch"], 5).done).toBe(true);
  });

  it("waits for the whole appliance to be ok", () => {
    const degraded = { ...health([program({ name: "tts", uptime_s: 2 })], "degraded") };
    degraded.summary.problem = "lipsync is FATAL";
    expect(applyProgress(degraded, ["tts"], 5)).toEqual({ done: false, waiting: ["lipsync is FATAL"] });
  });

  it("is done when the only problems are ready programs on a fallback backend", () => {
    const fallback = "tts: gpt-sovits unavailable (tts-unreachable: refused); using piper until it is back";
    const onPiper = { ...health([program({ name: "tts", uptime_s: 2 })], "degraded"), problems: [fallback] };
    expect(applyProgress(onPiper, ["tts"], 5)).toEqual({ done: true, waiting: [] });
    const andQuota = { ...onPiper, problems: [fallback, "data is over its disk quota"] };
    andQuota.summary.problem = "data is over its disk quota";
    expect(applyProgress(andQuota, ["tts"], 5)).toEqual({ done: false, waiting: ["data is over its disk quota"] });
  });
});
