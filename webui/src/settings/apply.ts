// Watching a settings change apply: GET /health every second until the restarted programs are back.
import { useEffect, useRef, useState } from "react";
import { api } from "../api/client";
import { type Health, applyProgress } from "./form";

export const APPLY_POLL_MS = 1000;
export const APPLY_LIMIT_S = 60;

// /health answers 503 with the same body when the coordinator is down (e.g. restarting); null: no answer.
export async function fetchHealth(): Promise<Health | null> {
  try {
    const { data, error } = await api.GET("/health");
    if (data) return data;
    if (error && typeof error === "object" && "programs" in error) return error as Health;
    return null;
  } catch {
    return null;
  }
}

export type ApplyState =
  | { phase: "idle" }
  | { phase: "applying"; programs: string[]; waiting: string[] }
  | { phase: "applied"; programs: string[] }
  | { phase: "stuck"; programs: string[]; waiting: string[] };

// start(programs) begins a watch (replacing any earlier one); onSettled runs when it ends either way. With no
// programs there is nothing to wait for: the change is applied at once.
export function useApplyWatch(onSettled: () => void): [ApplyState, (programs: string[]) => void] {
  const [state, setState] = useState<ApplyState>({ phase: "idle" });
  const [run, setRun] = useState<{ programs: string[]; serial: number } | null>(null);
  const settled = useRef(onSettled);
  settled.current = onSettled;

  useEffect(() => {
    if (!run) return;
    const { programs } = run;
    if (!programs.length) {
      setState({ phase: "applied", programs });
      settled.current();
      return;
    }
    let stopped = false;
    let timer = 0;
    const started = performance.now();
    setState({ phase: "applying", programs, waiting: programs });
    async function tick() {
      const health = await fetchHealth();
      if (stopped) return;
      const elapsed = (performance.now() - started) / 1000;
      const progress = applyProgress(health, programs, elapsed);
      if (progress.done) {
        setState({ phase: "applied", programs });
        settled.current();
      } else if (elapsed >= APPLY_LIMIT_S) {
        setState({ phase: "stuck", programs, waiting: progress.waiting });
        settled.current();
      } else {
        setState({ phase: "applying", programs, waiting: progress.waiting });
        timer = window.setTimeout(tick, APPLY_POLL_MS);
      }
    }
    timer = window.setTimeout(tick, APPLY_POLL_MS);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [run]);

  return [state, (programs) => setRun((last) => ({ programs, serial: (last?.serial ?? 0) + 1 }))];
}
