// A sentence said by an avatar, as an MP4 to watch here and download. Short speech comes back at once; long
// speech becomes a job, followed until its video is ready.
import { useEffect, useId, useRef, useState } from "react";
import { ApiError } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { cancelJob } from "../voices/api";
import { asApiError, useJob, useObjectUrl } from "../voices/hooks";
import { JobProgress } from "../voices/JobProgress";
import { generateVideo, jobVideo } from "./api";

export const VIDEO_TEXT = "Hello! I am Mynah. This is how I look when I speak.";

type Render = { kind: "idle" } | { kind: "direct"; since: number } | { kind: "job"; jobId: string };

function useSeconds(since: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (since === null) return;
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), 500);
    return () => window.clearInterval(timer);
  }, [since]);
  return since === null ? 0 : Math.max(0, Math.floor((now - since) / 1000));
}

// avatarId null: the avatar in use.
export function AvatarVideo({ avatarId, avatarName }: { avatarId: string | null; avatarName: string }) {
  const [text, setText] = useState(VIDEO_TEXT);
  const [render, setRender] = useState<Render>({ kind: "idle" });
  const [video, setVideo] = useState<Blob | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const url = useObjectUrl(video);
  const abort = useRef<AbortController | null>(null);
  const seconds = useSeconds(render.kind === "direct" ? render.since : null);
  const id = useId();

  const jobId = render.kind === "job" ? render.jobId : null;
  const [notice, setNotice] = useState<string | null>(null);
  const { job, error: pollError, gone, setJob } = useJob(jobId, async (ended) => {
    if (ended.status === "done") {
      try {
        setVideo(await jobVideo(ended.job_id));
      } catch (err) {
        setError(asApiError(err));
      }
    } else if (ended.status === "failed") {
      setError(new ApiError(ended.error_code || "job-failed", ended.error_message || "the video failed", 0));
    } else {
      setNotice("The video was cancelled.");
    }
    setRender({ kind: "idle" });
  });

  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    if (!gone) return;
    setError(new ApiError("job-not-found", "the appliance no longer knows this video job", 404));
    setRender({ kind: "idle" });
  }, [gone]);

  async function make() {
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setError(null);
    setNotice(null);
    setVideo(null);
    setRender({ kind: "direct", since: Date.now() });
    try {
      const answer = await generateVideo(text, avatarId, controller.signal);
      if (controller.signal.aborted) return;
      if (answer.kind === "video") {
        setVideo(answer.video);
        setRender({ kind: "idle" });
      } else {
        setRender({ kind: "job", jobId: answer.job.job_id });
      }
    } catch (err) {
      if (controller.signal.aborted) return;
      setError(asApiError(err));
      setRender({ kind: "idle" });
    }
  }

  function stopWaiting() {
    abort.current?.abort();
    setRender({ kind: "idle" });
  }

  async function cancel() {
    if (!jobId) return;
    try {
      setJob(await cancelJob(jobId));
    } catch (err) {
      setError(asApiError(err));
    }
  }

  const working = render.kind !== "idle";
  return (
    <form
      className="card stack avatar-video"
      onSubmit={(event) => {
        event.preventDefault();
        void make();
      }}
    >
      <label htmlFor={`${id}-text`}>What {avatarName} says</label>
      <textarea
        id={`${id}-text`}
        rows={3}
        value={text}
        maxLength={2000}
        onChange={(event) => setText(event.target.value)}
      />
      <div className="row">
        <button type="submit" className="primary" disabled={working || !text.trim()}>
          {working ? "Making the video…" : "Make video"}
        </button>
        {render.kind === "direct" && (
          <button type="button" onClick={stopWaiting}>
            Stop waiting
          </button>
        )}
        {render.kind === "job" && job && (
          <button type="button" className="danger" onClick={() => void cancel()}>
            Cancel
          </button>
        )}
        <span className="small muted">Square, 512 × 512, with sound.</span>
      </div>

      {render.kind === "direct" && (
        <div className="stack" aria-live="polite">
          <progress data-testid="avatar-video-progress" aria-label="Making the video" />
          <p className="small muted">
            Speaking and rendering… {seconds} s. A sentence takes a few seconds on this machine.
          </p>
        </div>
      )}
      {render.kind === "job" && (
        <div className="stack">
          <p className="small muted">A longer text: the video is made as a job.</p>
          {job ? <JobProgress job={job} label="Video" /> : <p className="muted small">Starting…</p>}
          <ErrorNote error={pollError} what="Could not check the progress" />
        </div>
      )}
      {notice && <p className="muted small" role="status">{notice}</p>}
      <ErrorNote error={error} what="No video" />

      {url && (
        <div className="stack video-result">
          <video src={url} controls playsInline data-testid="avatar-video-preview" className="avatar-video-player" />
          <div className="row">
            <a className="button primary" href={url} download="mynah-avatar.mp4">
              Download MP4
            </a>
          </div>
        </div>
      )}
    </form>
  );
}
