// The stored voices, the built-in one first: which speaks now, and what can be done with each.
import { useState } from "react";
import type { ApiError } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import type { Loaded } from "../lib/hooks";
import { BUILTIN_VOICE, activateVoice, deleteVoice, type Voice, type Voices } from "./api";
import { ConfirmButton } from "./ConfirmButton";
import { formatTime, languageName } from "./format";
import { asApiError } from "./hooks";
import { VoicePreview } from "./VoicePreview";

export const APPROXIMATION_TEXT =
  "An approximation of the speaker, not a clone: the built-in voice adapted toward the sample's pitch and timbre.";

interface ActionsProps {
  onChanged: () => Promise<void>;
}

function useVoiceAction(onChanged: () => Promise<void>) {
  const [busy, setBusy] = useState<"activate" | "delete" | null>(null);
  const [error, setError] = useState<{ what: string; error: ApiError } | null>(null);
  async function run(what: "activate" | "delete", action: () => Promise<unknown>) {
    setBusy(what);
    setError(null);
    try {
      await action();
    } catch (err) {
      const failed = what === "activate" ? "Could not switch to this voice" : "Could not delete this voice";
      setError({ what: failed, error: asApiError(err) });
      return;
    } finally {
      setBusy(null);
    }
    await onChanged();
  }
  return { busy, error, run };
}

function PreviewToggle({ voiceId, voiceName }: { voiceId?: string; voiceName: string }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
        {open ? "Hide preview" : "Preview"}
      </button>
      {open && (
        <div className="voice-preview-slot">
          <VoicePreview voiceId={voiceId} voiceName={voiceName} />
        </div>
      )}
    </>
  );
}

function BuiltinVoiceCard({ active, onChanged }: { active: boolean } & ActionsProps) {
  const { busy, error, run } = useVoiceAction(onChanged);
  return (
    <article className="card voice-card stack" aria-label="Built-in voice">
      <div className="voice-title row">
        <h3>Built-in voice</h3>
        {active && <span className="badge ok">In use</span>}
      </div>
      <p className="small muted">The speech engine's own voice, used when no trained voice is chosen.</p>
      <div className="row voice-actions">
        {!active && (
          <button
            type="button"
            className="primary"
            disabled={busy !== null}
            onClick={() => void run("activate", () => activateVoice(BUILTIN_VOICE))}
          >
            {busy === "activate" ? "Switching…" : "Use this voice"}
          </button>
        )}
        {active ? (
          <PreviewToggle voiceName="the built-in voice" />
        ) : (
          <span className="small muted">Choose it to preview it.</span>
        )}
      </div>
      <ErrorNote error={error?.error ?? null} what={error?.what} />
    </article>
  );
}

export function VoiceCard({ voice, onChanged }: { voice: Voice } & ActionsProps) {
  const { busy, error, run } = useVoiceAction(onChanged);
  const approximated = voice.kind === "approximated";
  return (
    <article className="card voice-card stack" aria-label={`Voice ${voice.name}`} data-voice-id={voice.voice_id}>
      <div className="voice-title row">
        <h3>{voice.name}</h3>
        {voice.active && <span className="badge ok">In use</span>}
        <span className={`badge ${approximated ? "warn" : ""}`}>{approximated ? "Approximation" : "Cloned"}</span>
        <span className={`badge ${voice.status === "ready" ? "ok" : "warn"}`}>{voice.status}</span>
      </div>
      <dl className="voice-facts small">
        <div>
          <dt>Language</dt>
          <dd>{languageName(voice.language)}</dd>
        </div>
        <div>
          <dt>Made</dt>
          <dd>{formatTime(voice.created_at)}</dd>
        </div>
        <div>
          <dt>Clips</dt>
          <dd>{voice.clips}</dd>
        </div>
      </dl>
      {approximated && <p className="note small">{APPROXIMATION_TEXT}</p>}
      {voice.note && <p className="small muted">{voice.note}</p>}
      <div className="row voice-actions">
        {!voice.active && (
          <button
            type="button"
            className="primary"
            disabled={busy !== null}
            onClick={() => void run("activate", () => activateVoice(voice.voice_id))}
          >
            {busy === "activate" ? "Switching…" : "Use this voice"}
          </button>
        )}
        <PreviewToggle voiceId={voice.voice_id} voiceName={voice.name} />
        <ConfirmButton
          label={busy === "delete" ? "Deleting…" : "Delete"}
          question={`Delete “${voice.name}” and its files?`}
          confirmLabel="Delete"
          disabled={busy !== null}
          onConfirm={() => run("delete", () => deleteVoice(voice.voice_id))}
        />
      </div>
      <ErrorNote error={error?.error ?? null} what={error?.what} />
    </article>
  );
}

export function VoiceList({ loaded }: { loaded: Loaded<Voices> }) {
  const { value, error, loading, reload } = loaded;
  if (loading && !value) return <p className="muted" aria-live="polite">Loading voices…</p>;
  if (!value) {
    return (
      <div className="stack">
        <ErrorNote error={error} what="Could not load the voices" />
        <div>
          <button type="button" onClick={() => void reload()}>
            Try again
          </button>
        </div>
      </div>
    );
  }
  return (
    <div className="stack">
      <ErrorNote error={error} what="Could not refresh the voices" />
      <div className="grid voice-grid">
        <BuiltinVoiceCard active={value.active_voice_id === null} onChanged={reload} />
        {value.voices.map((voice) => (
          <VoiceCard key={voice.voice_id} voice={voice} onChanged={reload} />
        ))}
      </div>
      {value.voices.length === 0 && (
        <p className="muted">No trained voices yet. Make one below from about a minute of speech.</p>
      )}
    </div>
  );
}
