// Record about a minute of reading in the browser: the passage, a timer with its target, a level meter, and
// the recording played back before it is used.
import { useCallback, useEffect, useRef, useState } from "react";
import { useObjectUrl } from "./hooks";
import { canRecord, startMicCapture, type MicCapture } from "./micRecorder";
import {
  MAX_SECONDS,
  MIN_SECONDS,
  READING_PASSAGE,
  TARGET_SECONDS,
  formatClock,
  microphoneProblem,
  recordingState,
} from "./recording";
import { meterLevel, rmsDbfs, wavBlob } from "./wav";

export interface RecordedSample {
  blob: Blob;
  seconds: number;
}

type Phase = "idle" | "starting" | "recording";

function LevelMeter({ level, dbfs }: { level: number; dbfs: number }) {
  const hint = dbfs < -50 ? "Can't hear you" : dbfs < -38 ? "Quiet: come closer" : dbfs > -6 ? "Very loud" : "Good";
  return (
    <div className="level">
      <div
        className="level-meter"
        role="meter"
        aria-label="Microphone level"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(level * 100)}
        aria-valuetext={hint}
      >
        <div
          className={`level-fill${dbfs > -6 ? " loud" : dbfs < -38 ? " quiet" : ""}`}
          style={{ width: `${Math.round(level * 100)}%` }}
        />
      </div>
      <span className="small muted level-hint">{hint}</span>
    </div>
  );
}

function Timeline({ elapsed }: { elapsed: number }) {
  const at = (seconds: number) => `${(Math.min(seconds, MAX_SECONDS) / MAX_SECONDS) * 100}%`;
  return (
    <div className="rec-timeline" aria-hidden="true">
      <div className="rec-fill" style={{ width: at(elapsed) }} />
      <div className="rec-mark min" style={{ left: at(MIN_SECONDS) }}>
        <span>{formatClock(MIN_SECONDS)}</span>
      </div>
      <div className="rec-mark target" style={{ left: at(TARGET_SECONDS) }}>
        <span>{formatClock(TARGET_SECONDS)} target</span>
      </div>
    </div>
  );
}

function progressHint(elapsed: number): string {
  const state = recordingState(elapsed);
  if (!state.canStop) return `Keep reading. You can stop after ${formatClock(MIN_SECONDS)}.`;
  if (!state.reachedTarget) return `Good. Keep going to about ${formatClock(TARGET_SECONDS)}.`;
  return `That is enough: stop at the end of a sentence. It stops by itself at ${formatClock(MAX_SECONDS)}.`;
}

export function Recorder({
  sample,
  onSample,
}: {
  sample: RecordedSample | null;
  onSample: (sample: RecordedSample | null) => void;
}) {
  const [phase, setPhase] = useState<Phase>("idle");
  const [problem, setProblem] = useState<string | null>(null);
  const [elapsed, setElapsed] = useState(0);
  const [level, setLevel] = useState({ level: 0, dbfs: -Infinity });
  const capture = useRef<MicCapture | null>(null);
  const frames = useRef(0);
  const url = useObjectUrl(sample?.blob ?? null);

  const finish = useCallback(() => {
    const running = capture.current;
    if (!running) return;
    capture.current = null;
    const chunks = running.stop();
    const seconds = frames.current / running.sampleRate;
    setPhase("idle");
    onSample({ blob: wavBlob(chunks, running.sampleRate), seconds });
  }, [onSample]);

  function cancel() {
    capture.current?.stop();
    capture.current = null;
    setPhase("idle");
    setElapsed(0);
  }

  async function start() {
    setProblem(null);
    onSample(null);
    if (!canRecord()) {
      setProblem(microphoneProblem(new DOMException("no getUserMedia", "NotSupportedError")));
      return;
    }
    setPhase("starting");
    frames.current = 0;
    setElapsed(0);
    try {
      capture.current = await startMicCapture((chunk, sampleRate) => {
        frames.current += chunk.length;
        setElapsed(frames.current / sampleRate);
        const dbfs = rmsDbfs(chunk);
        // The meter falls back slowly, so that it can be read.
        setLevel((shown) => ({ level: Math.max(meterLevel(dbfs), shown.level * 0.85), dbfs }));
      });
      setPhase("recording");
    } catch (err) {
      setPhase("idle");
      setProblem(microphoneProblem(err));
    }
  }

  useEffect(() => {
    if (phase === "recording" && recordingState(elapsed).mustStop) finish();
  }, [phase, elapsed, finish]);

  useEffect(() => () => void capture.current?.stop(), []); // leaving the page stops the microphone

  const state = recordingState(elapsed);
  return (
    <div className="recorder stack">
      <figure className="passage">
        <figcaption className="small muted">Read this aloud, at your normal pace, in a quiet room:</figcaption>
        <blockquote>{READING_PASSAGE}</blockquote>
      </figure>

      {phase === "recording" && (
        <div className="rec-live stack">
          <div className="rec-clock" role="timer" aria-label="Recorded time">
            <span className="rec-now">{formatClock(elapsed)}</span>
            <span className="muted"> / {formatClock(TARGET_SECONDS)}</span>
          </div>
          <Timeline elapsed={elapsed} />
          <LevelMeter level={level.level} dbfs={level.dbfs} />
          <p className="small muted" aria-live="polite">
            {progressHint(elapsed)}
          </p>
          <div className="row">
            <button type="button" className="primary" disabled={!state.canStop} onClick={finish}>
              {state.canStop ? "Stop" : `Stop (in ${state.remainingToMin} s)`}
            </button>
            <button type="button" onClick={cancel}>
              Cancel
            </button>
          </div>
        </div>
      )}

      {phase !== "recording" && (
        <div className="stack">
          {sample && url && (
            <div className="rec-result stack">
              <p>
                Your recording: <strong>{formatClock(sample.seconds)}</strong>. Listen to it before you train: one
                voice, clear, little background noise.
              </p>
              <audio src={url} controls data-testid="voice-recording" />
            </div>
          )}
          <div className="row">
            <button
              type="button"
              className={sample ? "" : "primary"}
              disabled={phase === "starting"}
              onClick={() => void start()}
            >
              {phase === "starting" ? "Opening the microphone…" : sample ? "Record again" : "Start recording"}
            </button>
            {sample && (
              <button type="button" onClick={() => onSample(null)}>
                Discard
              </button>
            )}
          </div>
        </div>
      )}

      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
    </div>
  );
}
