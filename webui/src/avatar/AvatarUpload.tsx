// Add a portrait: it is prepared at once (face and lips found), and shown with what was found.
import { useState } from "react";
import type { ApiError } from "../api/client";
import { asApiError } from "../voices/hooks";
import { avatarAdvice, prepareAvatar, type Avatar } from "./api";

export function AvatarUpload({ onPrepared }: { onPrepared: (avatar: Avatar) => void }) {
  const [busy, setBusy] = useState<string | null>(null); // the file being prepared
  const [error, setError] = useState<ApiError | null>(null);
  const [inputKey, setInputKey] = useState(0);

  async function prepare(file: File) {
    setBusy(file.name);
    setError(null);
    try {
      onPrepared(await prepareAvatar(file));
      setInputKey((key) => key + 1); // empty the input: the same file can be chosen again
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(null);
    }
  }

  const advice = error ? avatarAdvice(error.code) : null;
  return (
    <div className="card stack avatar-upload">
      <label>
        A portrait of one person, facing the camera (PNG, JPEG or WebP)
        <input
          key={inputKey}
          type="file"
          accept="image/png,image/jpeg,image/webp"
          data-testid="avatar-file"
          disabled={busy !== null}
          onChange={(event) => {
            const file = event.target.files?.[0];
            if (file) void prepare(file);
          }}
        />
      </label>
      <p className="small muted" aria-live="polite">
        {busy
          ? `Finding the face and lips in ${busy}…`
          : "The picture is cropped to a square around the face; nothing changes until you choose to use it."}
      </p>
      {busy && <progress aria-label="Preparing the portrait" />}
      {error && (
        <div className="error" role="alert" data-testid="avatar-error" data-code={error.code}>
          <p>
            <strong>The portrait was not accepted.</strong> {advice ?? error.message} <code>{error.code}</code>
          </p>
          {advice && <p className="small muted">{error.message}</p>}
        </div>
      )}
    </div>
  );
}
