// A job's progress: the whole job's bar, where it is now, and a bar for each step seen so far.
import type { Job } from "./api";
import "./jobProgress.css";
import { jobHeadline, jobSteps, type StepState } from "./jobSteps";

const MARKS: Record<StepState, string> = { complete: "✓", active: "…", failed: "✕", cancelled: "–" };
const STATES: Record<StepState, string> = {
  complete: "done",
  active: "in progress",
  failed: "failed",
  cancelled: "cancelled",
};

export function JobProgress({ job, label = "Progress" }: { job: Job; label?: string }) {
  const steps = jobSteps(job);
  const percent = Math.round(job.progress * 100);
  return (
    <div className="job-progress stack">
      <div className="job-overall">
        <progress
          data-testid="job-progress"
          data-status={job.status}
          value={job.status === "done" ? 1 : job.progress}
          max={1}
          aria-label={`${label}: ${percent} %`}
        />
        <span className="small muted" aria-hidden="true">
          {job.status === "done" ? 100 : percent} %
        </span>
      </div>
      <p data-testid="job-step" className="job-headline" aria-live="polite">
        {jobHeadline(job)}
      </p>
      {steps.length > 0 && (
        <ol className="job-steps" aria-label="Steps">
          {steps.map((step) => (
            <li key={step.step} className={`job-step ${step.state}`}>
              <span className="job-step-name">
                <span aria-hidden="true" className="job-step-mark">
                  {MARKS[step.state]}
                </span>
                {step.label}
                <span className="visually-hidden"> ({STATES[step.state]})</span>
              </span>
              <progress
                value={step.fraction ?? undefined}
                max={1}
                aria-label={`${step.label}: ${STATES[step.state]}`}
              />
              {step.state !== "complete" && step.detail && (
                <span className="job-step-detail small muted">{step.detail}</span>
              )}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
