// The avatar chosen on the page: its face box and lips over the image, and a way to use it.
import { useEffect, useRef, useState } from "react";
import type { ApiError } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { asApiError } from "../voices/hooks";
import { avatarAdvice, describeAvatar, type Avatar } from "./api";
import { FaceFacts, FaceOverlay } from "./FacePreview";

interface Props {
  cardId: string;
  title: string;
  active: boolean;
  known: Avatar | undefined;
  onLoaded: (cardId: string, avatar: Avatar) => void;
  onActivate: (cardId: string) => Promise<void>;
}

export function SelectedAvatar({ cardId, title, active, known, onLoaded, onActivate }: Props) {
  const [error, setError] = useState<ApiError | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [busy, setBusy] = useState(false);
  const [activateError, setActivateError] = useState<ApiError | null>(null);
  const section = useRef<HTMLElement>(null);
  const loaded = useRef(onLoaded);
  loaded.current = onLoaded;

  useEffect(() => {
    section.current?.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
    setActivateError(null);
  }, [cardId]);

  useEffect(() => {
    setError(null);
    if (known) return;
    let live = true;
    describeAvatar(cardId)
      .then((avatar) => live && loaded.current(cardId, avatar))
      .catch((err: unknown) => live && setError(asApiError(err)));
    return () => {
      live = false;
    };
  }, [cardId, known, attempt]);

  async function activate() {
    setBusy(true);
    setActivateError(null);
    try {
      await onActivate(cardId);
    } catch (err) {
      setActivateError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  const advice = error ? avatarAdvice(error.code) : null;
  return (
    <section ref={section} className="card stack selected-avatar" aria-labelledby="selected-avatar-title">
      <div className="row">
        <h2 id="selected-avatar-title">{title}: face and lips</h2>
        {active && <span className="badge ok">In use</span>}
      </div>
      {!known && !error && <p className="muted" aria-live="polite">Finding the face…</p>}
      {error && (
        <div className="stack">
          <ErrorNote error={error} what="Could not read this avatar" />
          {advice && <p className="small muted">{advice}</p>}
          <div>
            <button type="button" onClick={() => setAttempt((n) => n + 1)}>
              Try again
            </button>
          </div>
        </div>
      )}
      {known && (
        <div className="face-detail">
          <FaceOverlay avatar={known} />
          <div className="stack">
            <FaceFacts avatar={known} />
            {!active && (
              <div>
                <button type="button" className="primary" disabled={busy} onClick={() => void activate()}>
                  {busy ? "Switching…" : "Use this avatar"}
                </button>
              </div>
            )}
            <ErrorNote error={activateError} what="Could not switch avatars" />
          </div>
        </div>
      )}
    </section>
  );
}
