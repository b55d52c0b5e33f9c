import { beforeEach, describe, expect, it } from "vitest";
import { VOICE_JOBS_KEY, addVoiceJob, readVoiceJobs, removeVoiceJob } from "./storedJobs";

function memoryStore() {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => void items.set(key, value),
    removeItem: (key: string) => void items.delete(key),
  };
}

describe("stored voice jobs", () => {
  let store: ReturnType<typeof memoryStore>;
  beforeEach(() => {
    store = memoryStore();
  });

  it("adds ids once, in order, under mynah.voiceJobs", () => {
    addVoiceJob("a", store);
    addVoiceJob("b", store);
    expect(addVoiceJob("a", store)).toEqual(["a", "b"]);
    expect(JSON.parse(store.items.get(VOICE_JOBS_KEY)!)).toEqual(["a", "b"]);
  });

  it("removes an id, and the key with the last one", () => {
    addVoiceJob("a", store);
    addVoiceJob("b", store);
    expect(removeVoiceJob("a", store)).toEqual(["b"]);
    expect(removeVoiceJob("b", store)).toEqual([]);
    expect(store.items.has(VOICE_JOBS_KEY)).toBe(false);
  });

  it("reads nothing from a missing, broken or odd value", () => {
    expect(readVoiceJobs(store)).toEqual([]);
    store.items.set(VOICE_JOBS_KEY, "{not json");
    expect(readVoiceJobs(store)).toEqual([]);
    store.items.set(VOICE_JOBS_KEY, '{"a": 1}');
    expect(readVoiceJobs(store)).toEqual([]);
    store.items.set(VOICE_JOBS_KEY, '["x", 3, "", null, "x", "y"]');
    expect(readVoiceJobs(store)).toEqual(["x", "y"]);
  });

  it("uses the page's localStorage by default", () => {
    localStorage.removeItem(VOICE_JOBS_KEY);
    addVoiceJob("j1");
    expect(JSON.parse(localStorage.getItem(VOICE_JOBS_KEY)!)).toEqual(["j1"]);
    removeVoiceJob("j1");
    expect(localStorage.getItem(VOICE_JOBS_KEY)).toBeNull();
  });
});
