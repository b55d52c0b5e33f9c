// Voice-training jobs: their progress while they run (polled), their outcome until it is dismissed.
import { useEffect, useRef, useState } from "react";
import { ApiError } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { activateVoice, cancelJob, type Job, type Voices } from "./api";
import { ConfirmButton } from "./ConfirmButton";
import { formatTime } from "./format";
import { asApiError, useJob } from "./hooks";
import { JobProgress } from "./JobProgress";
import { jobEnded } from "./jobSteps";
import { removeVoiceJob } from "./storedJobs";

interface CardProps {
  jobId: string;
  name?: string;
  voices: Voices | null;
  focus: boolean;
  onVoicesChanged: () => Promise<void>;
  onDismiss: (jobId: string) => void;
}

function jobFailure(job: Job): ApiError | null {
  if (job.status !== "failed") return null;
  return new ApiError(job.error_code || "job-failed", job.error_message || "the training failed", 0);
}

function TrainingJob({ jobId, name, voices, focus, onVoicesChanged, onDismiss }: CardProps) {
  const { job, error, gone, setJob } = useJob(jobId, (ended) => {
    removeVoiceJob(jobId);
    if (ended.status === "done") void onVoicesChanged();
  });
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (gone) removeVoiceJob(jobId);
  }, [gone, jobId]);

  useEffect(() => {
    if (!focus) return;
    heading.current?.focus();
    heading.current?.scrollIntoView?.({ block: "nearest", behavior: "smooth" });
  }, [focus]);

  const voice = job?.voice_id ? voices?.voices.find((v) => v.voice_id === job.voice_id) : undefined;
  const title = voice?.name ?? name;
  const ended = gone || (job !== null && jobEnded(job.status));

  async function act(action: () => Promise<void>) {
    setBusy(true);
    setActionError(null);
    try {
      await action();
    } catch (err) {
      setActionError(asApiError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <article className="card training-job stack" aria-labelledby={`job-${jobId}`} data-job-id={jobId}>
      <h3 id={`job-${jobId}`} ref={heading} tabIndex={-1}>
        {title ? `Training “${title}”` : "Training a voice"}
      </h3>
      {job && <p className="small muted">Started {formatTime(job.created_at)}</p>}
      {!job && !error && <p className="muted">Loading its progress…</p>}
      {job && <JobProgress job={job} label="Training" />}
      {gone ? (
        <p className="error" role="alert">
          The appliance no longer knows this training job. <code>job-not-found</code>
        </p>
      ) : (
        <ErrorNote error={error} what="Could not check the progress (retrying)" />
      )}
      {job && <ErrorNote error={jobFailure(job)} what="Training failed" />}
      {job?.status === "done" && (
        <p className="ok-text" role="status">
          {voice ? `The voice “${voice.name}” is ready.` : "The voice is ready."}
          {voice?.active && " It is in use."}
        </p>
      )}
      <div className="row">
        {job?.status === "done" && job.voice_id && !voice?.active && (
          <button
            type="button"
            className="primary"
            disabled={busy}
            onClick={() =>
              void act(async () => {
                await activateVoice(job.voice_id!);
                await onVoicesChanged();
              })
            }
          >
            Use this voice
          </button>
        )}
        {job && !ended && (
          <ConfirmButton
            label={busy ? "Cancelling…" : "Cancel"}
            question="Stop training? What it made so far is removed."
            confirmLabel="Stop training"
            keepLabel="Keep training"
            disabled={busy}
            onConfirm={() => act(async () => setJob(await cancelJob(jobId)))}
          />
        )}
        {ended && (
          <button type="button" onClick={() => onDismiss(jobId)}>
            Dismiss
          </button>
        )}
      </div>
      <ErrorNote error={actionError} what="That did not work" />
    </article>
  );
}

export function TrainingJobs({
  jobIds,
  names,
  fresh,
  voices,
  onVoicesChanged,
  onDismiss,
}: {
  jobIds: string[];
  names: Record<string, string>;
  fresh: string | null;
  voices: Voices | null;
  onVoicesChanged: () => Promise<void>;
  onDismiss: (jobId: string) => void;
}) {
  if (jobIds.length === 0) return null;
  return (
    <section className="stack" aria-labelledby="training-title">
      <h2 id="training-title">Training</h2>
      {jobIds.map((jobId) => (
        <TrainingJob
          key={jobId}
          jobId={jobId}
          name={names[jobId]}
          voices={voices}
          focus={jobId === fresh}
          onVoicesChanged={onVoicesChanged}
          onDismiss={onDismiss}
        />
      ))}
    </section>
  );
}
