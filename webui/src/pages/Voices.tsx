// Voices: the stored voices (use, preview, delete), making a new one from a recording or a file, and the
// progress of the ones being trained (which survives a reload).
import { useCallback, useState } from "react";
import { useLoaded } from "../lib/hooks";
import { listVoices, type JobStarted } from "../voices/api";
import { MakeVoice } from "../voices/MakeVoice";
import { addVoiceJob, readVoiceJobs, removeVoiceJob } from "../voices/storedJobs";
import { TrainingJobs } from "../voices/TrainingJobs";
import { VoiceList } from "../voices/VoiceList";
import "../voices/voices.css";

export function VoicesPage() {
  const voices = useLoaded(listVoices);
  const [jobIds, setJobIds] = useState<string[]>(() => readVoiceJobs());
  const [names, setNames] = useState<Record<string, string>>({});
  const [fresh, setFresh] = useState<string | null>(null);

  const started = useCallback((job: JobStarted, name: string) => {
    addVoiceJob(job.job_id);
    setJobIds((ids) => (ids.includes(job.job_id) ? ids : [...ids, job.job_id]));
    setNames((known) => ({ ...known, [job.job_id]: name }));
    setFresh(job.job_id);
  }, []);

  const dismiss = useCallback((jobId: string) => {
    removeVoiceJob(jobId);
    setJobIds((ids) => ids.filter((id) => id !== jobId));
  }, []);

  return (
    <section className="page voices-page stack" aria-labelledby="voices-title">
      <h1 id="voices-title">Voices</h1>
      <p className="muted">
        The voice in use speaks every reply. Train a new one from about a minute of someone speaking, with their
        agreement.
      </p>
      <h2>Your voices</h2>
      <VoiceList loaded={voices} />
      <TrainingJobs
        jobIds={jobIds}
        names={names}
        fresh={fresh}
        voices={voices.value}
        onVoicesChanged={voices.reload}
        onDismiss={dismiss}
      />
      <MakeVoice onStarted={started} />
    </section>
  );
}
