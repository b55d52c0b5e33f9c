// What saving will do, said before it is done: how many changes, which programs restart, and Save / Discard.
export function SaveBar({
  count,
  programs,
  invalid,
  busy,
  blocked,
  onSave,
  onDiscard,
}: {
  count: number;
  programs: string[];
  invalid: number;
  busy: boolean;
  blocked: string | null;
  onSave: () => void;
  onDiscard: () => void;
}) {
  if (count === 0 && invalid === 0) return null;
  return (
    <div className="save-bar stack" role="region" aria-label="Unsaved changes">
      <p>
        <strong>
          {count} change{count === 1 ? "" : "s"} not saved yet.
        </strong>{" "}
        {programs.length > 0 ? (
          <>
            Saving restarts {programs.join(", ")}; a conversation in progress will reconnect.
          </>
        ) : (
          count > 0 && <>Nothing restarts: it applies to the next conversation.</>
        )}
      </p>
      {invalid > 0 && (
        <p className="error small">
          {invalid} field{invalid === 1 ? " needs" : "s need"} fixing before saving.
        </p>
      )}
      {blocked && <p className="muted small">{blocked}</p>}
      <div className="row">
        <button type="button" className="primary" onClick={onSave} disabled={busy || count === 0 || invalid > 0 || Boolean(blocked)}>
          {busy ? "Saving…" : "Save"}
        </button>
        <button type="button" onClick={onDiscard} disabled={busy}>
          Discard
        </button>
      </div>
    </div>
  );
}
