import { useEffect, useRef, useState } from "react";
import { ApiError } from "../api/client";
import { fetchJob, type Job } from "./api";
import { jobEnded } from "./jobSteps";

export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError("client-error", err instanceof Error ? err.message : String(err), 0);
}

// An object URL for a blob while it is shown; revoked when the blob changes or the component goes.
export function useObjectUrl(blob: Blob | null): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!blob) {
      setUrl(null);
      return;
    }
    const made = URL.createObjectURL(blob);
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [blob]);
  return url;
}

export interface PolledJob {
  job: Job | null;
  error: ApiError | null; // the last poll's failure (polling goes on, except for a job the appliance does not know)
  gone: boolean; // job-not-found: nothing more will come
  setJob: (job: Job) => void;
}

// Poll GET /api/jobs/{id} every `everyMs` until the job ends (EventSource cannot send the token); `onEnd` once.
export function useJob(jobId: string | null, onEnd?: (job: Job) => void, everyMs = 1000): PolledJob {
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [gone, setGone] = useState(false);
  const endRef = useRef(onEnd);
  endRef.current = onEnd;

  useEffect(() => {
    setJob(null);
    setError(null);
    setGone(false);
    if (!jobId) return;
    let stopped = false;
    let timer = 0;
    const poll = async () => {
      try {
        const latest = await fetchJob(jobId);
        if (stopped) return;
        setJob(latest);
        setError(null);
        if (jobEnded(latest.status)) {
          stopped = true;
          endRef.current?.(latest);
          return;
        }
      } catch (err) {
        if (stopped) return;
        const failure = asApiError(err);
        setError(failure);
        if (failure.code === "job-not-found") {
          stopped = true;
          setGone(true);
          return;
        }
      }
      timer = window.setTimeout(poll, everyMs);
    };
    void poll();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [jobId, everyMs]);

  return { job, error, gone, setJob };
}
