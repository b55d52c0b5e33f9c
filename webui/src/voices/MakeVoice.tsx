// Make a voice: a sample (recorded here or uploaded), a name, the language, and the speaker's consent.
import { useId, useState } from "react";
import type { ApiError } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { trainVoice, type JobStarted } from "./api";
import { TRAINING_LANGUAGES, languageName } from "./format";
import { asApiError } from "./hooks";
import { Recorder, type RecordedSample } from "./Recorder";
import { CONSENT_STATEMENT } from "./recording";
import { UploadSample } from "./UploadSample";

type Source = "record" | "upload";

// What still stops training, in words; empty when it can start.
export function missingForTraining(hasSample: boolean, name: string, consent: boolean, source: Source): string[] {
  const missing: string[] = [];
  if (!hasSample) missing.push(source === "record" ? "a recording" : "an audio file");
  if (!name.trim()) missing.push("a name");
  if (!consent) missing.push("the speaker's consent");
  return missing;
}

export function MakeVoice({ onStarted }: { onStarted: (job: JobStarted, name: string) => void }) {
  const [source, setSource] = useState<Source>("record");
  const [recorded, setRecorded] = useState<RecordedSample | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [language, setLanguage] = useState("en");
  const [consent, setConsent] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [formKey, setFormKey] = useState(0); // a new key empties the file input after a start
  const id = useId();

  const sample = source === "record" ? recorded?.blob ?? null : file;
  const missing = missingForTraining(sample !== null, name, consent, source);

  async function train() {
    if (!sample || missing.length) return;
    setBusy(true);
    setError(null);
    try {
      const filename = source === "record" ? "recording.wav" : (file?.name ?? "sample");
      const started = await trainVoice({ sample, filename, name, language, consent: CONSENT_STATEMENT });
      onStarted(started, name.trim());
      setRecorded(null);
      setFile(null);
      setName("");
      setConsent(false);
      setFormKey((key) => key + 1);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form
      key={formKey}
      className="make-voice card stack"
      aria-labelledby={`${id}-title`}
      onSubmit={(event) => {
        event.preventDefault();
        void train();
      }}
    >
      <h2 id={`${id}-title`}>Make a voice</h2>
      <p className="muted small">
        A voice is made from about one minute of one person speaking: record it here, or upload a recording.
        Training takes a few minutes; you can leave this page and come back.
      </p>

      <fieldset className="source-choice">
        <legend>The sample</legend>
        <div className="row">
          <label className="inline">
            <input type="radio" name={`${id}-source`} checked={source === "record"} onChange={() => setSource("record")} />
            Record in the browser
          </label>
          <label className="inline">
            <input type="radio" name={`${id}-source`} checked={source === "upload"} onChange={() => setSource("upload")} />
            Upload a file
          </label>
        </div>
      </fieldset>

      {source === "record" ? (
        <Recorder sample={recorded} onSample={setRecorded} />
      ) : (
        <UploadSample file={file} onFile={setFile} />
      )}

      <div className="voice-fields">
        <label>
          Name of the voice
          <input
            data-testid="voice-name"
            value={name}
            maxLength={64}
            autoComplete="off"
            placeholder="e.g. Grandma Rose"
            onChange={(event) => setName(event.target.value)}
          />
        </label>
        <label>
          Language spoken
          <select value={language} onChange={(event) => setLanguage(event.target.value)}>
            {TRAINING_LANGUAGES.map((code) => (
              <option key={code} value={code}>
                {languageName(code)}
              </option>
            ))}
          </select>
        </label>
      </div>
      {language !== "en" && source === "record" && (
        <p className="small muted">The passage above is English: read any text in the language you chose.</p>
      )}

      <label className="inline consent">
        <input
          type="checkbox"
          data-testid="voice-consent"
          checked={consent}
          onChange={(event) => setConsent(event.target.checked)}
        />
        <span>{CONSENT_STATEMENT}.</span>
      </label>

      <div className="row">
        <button
          type="submit"
          className="primary"
          data-testid="voice-train"
          disabled={missing.length > 0 || busy}
          aria-describedby={`${id}-status`}
        >
          {busy ? "Checking the sample…" : "Train voice"}
        </button>
        <span id={`${id}-status`} className="small muted" aria-live="polite">
          {busy
            ? "Uploading; the trainer checks the sample first (up to a minute)."
            : missing.length
              ? `Still needed: ${missing.join(", ")}.`
              : "Ready to train."}
        </span>
      </div>
      <ErrorNote error={error} what="Training did not start" />
    </form>
  );
}
