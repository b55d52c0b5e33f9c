// "Preview": a sentence said in a voice, played here.
import { useEffect, useId, useRef, useState } from "react";
import type { ApiError } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { speak } from "./api";
import { asApiError, useObjectUrl } from "./hooks";

export const PREVIEW_TEXT = "Hello! This is how I sound.";

// voiceId undefined: the active voice.
export function VoicePreview({ voiceId, voiceName }: { voiceId?: string; voiceName: string }) {
  const [text, setText] = useState(PREVIEW_TEXT);
  const [speech, setSpeech] = useState<Blob | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const url = useObjectUrl(speech);
  const audio = useRef<HTMLAudioElement>(null);
  const id = useId();

  useEffect(() => {
    if (url) audio.current?.play().catch(() => undefined); // blocked autoplay: the controls are there
  }, [url]);

  async function play() {
    setBusy(true);
    setError(null);
    try {
      setSpeech(await speak(text.trim(), voiceId));
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form
      className="voice-preview stack"
      onSubmit={(event) => {
        event.preventDefault();
        void play();
      }}
    >
      <label htmlFor={`${id}-text`}>Text to say in {voiceName}</label>
      <div className="row preview-row">
        <input
          id={`${id}-text`}
          value={text}
          maxLength={500}
          onChange={(event) => setText(event.target.value)}
        />
        <button type="submit" className="primary" disabled={busy || !text.trim()}>
          {busy ? "Speaking…" : "Play"}
        </button>
      </div>
      {url && <audio ref={audio} src={url} controls className="preview-audio" />}
      <ErrorNote error={error} what="Could not preview" />
    </form>
  );
}
