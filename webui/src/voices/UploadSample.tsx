// A voice sample from a file: any common audio format; the trainer decodes it.
import { useState } from "react";
import { formatBytes } from "./format";
import { useObjectUrl } from "./hooks";
import { MIN_SECONDS, formatClock } from "./recording";

export function UploadSample({ file, onFile }: { file: File | null; onFile: (file: File | null) => void }) {
  const url = useObjectUrl(file);
  const [seconds, setSeconds] = useState<number | null>(null);
  return (
    <div className="upload-sample stack">
      <label>
        An audio file of one person speaking for about a minute
        <input
          type="file"
          accept="audio/*"
          data-testid="voice-file"
          onChange={(event) => {
            setSeconds(null);
            onFile(event.target.files?.[0] ?? null);
          }}
        />
      </label>
      {file && (
        <div className="stack">
          <p className="small muted">
            {file.name}, {formatBytes(file.size)}
            {seconds !== null && `, ${formatClock(seconds)} long`}
          </p>
          {url && (
            <audio
              src={url}
              controls
              onLoadedMetadata={(event) => {
                const duration = event.currentTarget.duration;
                setSeconds(Number.isFinite(duration) ? duration : null);
              }}
            />
          )}
          {seconds !== null && seconds < MIN_SECONDS && (
            <p className="note small">
              This file is shorter than {MIN_SECONDS} seconds: the trainer needs at least that much speech, and
              about a minute works best.
            </p>
          )}
        </div>
      )}
    </div>
  );
}
