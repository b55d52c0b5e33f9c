import type { ApplyState } from "./apply";

export function ApplyStatus({ state }: { state: ApplyState }) {
  if (state.phase === "idle") return null;
  const programs = state.programs.join(", ");
  return (
    <div className={`note apply-status ${state.phase === "stuck" ? "stuck" : ""}`} role="status" aria-live="polite">
      {state.phase === "applying" && (
        <>
          <strong>Applying: restarting {programs}…</strong>
          {state.waiting.length > 0 && <div className="small muted">Waiting for {state.waiting.join(", ")}.</div>}
        </>
      )}
      {state.phase === "applied" &&
        (state.programs.length ? <strong>Applied.</strong> : <strong>Saved: it applies to the next conversation.</strong>)}
      {state.phase === "stuck" && (
        <>
          <strong>Saved, but not everything is back after a minute.</strong>
          <div className="small">Still not ready: {state.waiting.join(", ")}. The Status page shows more.</div>
        </>
      )}
    </div>
  );
}
