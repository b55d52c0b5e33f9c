// The voice-training jobs still running, kept in this browser so that their progress comes back after a reload.
export const VOICE_JOBS_KEY = "mynah.voiceJobs";

type Store = Pick<Storage, "getItem" | "setItem" | "removeItem">;

function defaultStore(): Store | null {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: the jobs are followed only while the page is open
  }
}

// The stored job ids, oldest first; anything unreadable counts as none.
export function readVoiceJobs(store: Store | null = defaultStore()): string[] {
  if (!store) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(store.getItem(VOICE_JOBS_KEY) ?? "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const ids = parsed.filter((id): id is string => typeof id === "string" && id.length > 0);
  return [...new Set(ids)];
}

function write(ids: string[], store: Store | null): void {
  if (!store) return;
  try {
    if (ids.length) store.setItem(VOICE_JOBS_KEY, JSON.stringify(ids));
    else store.removeItem(VOICE_JOBS_KEY);
  } catch {
    // full or disabled: nothing to do
  }
}

export function addVoiceJob(id: string, store: Store | null = defaultStore()): string[] {
  const ids = readVoiceJobs(store);
  const next = ids.includes(id) ? ids : [...ids, id];
  write(next, store);
  return next;
}

export function removeVoiceJob(id: string, store: Store | null = defaultStore()): string[] {
  const next = readVoiceJobs(store).filter((stored) => stored !== id);
  write(next, store);
  return next;
}
