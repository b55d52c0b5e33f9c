// The calls the Voices page makes (and the job calls the Avatar page shares).
import { api, authFetch, data, type Schemas } from "../api/client";

export type Voice = Schemas["VoiceOut"];
export type Voices = Schemas["VoicesOut"];
export type Job = Schemas["JobOut"];
export type JobStarted = Schemas["JobStartedOut"];

export const BUILTIN_VOICE = "builtin";

export function listVoices(): Promise<Voices> {
  return data(api.GET("/api/voices"));
}

export function activateVoice(voiceId: string): Promise<Voices> {
  return data(api.POST("/api/voices/{voice_id}/activate", { params: { path: { voice_id: voiceId } } }));
}

export async function deleteVoice(voiceId: string): Promise<void> {
  await data(api.DELETE("/api/voices/{voice_id}", { params: { path: { voice_id: voiceId } } }));
}

// A WAV of `text` said in a voice (none: the active one).
export async function speak(text: string, voiceId?: string): Promise<Blob> {
  const body: Partial<Schemas["SpeakIn"]> = { text, format: "wav", ...(voiceId ? { voice: voiceId } : {}) };
  const response = await authFetch("/api/speak", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.blob();
}

export interface TrainRequest {
  sample: Blob;
  filename: string;
  name: string;
  language: string;
  consent: string;
}

// The form the trainer takes; the browser sets the multipart Content-Type (with its boundary) itself.
export function trainForm(request: TrainRequest): FormData {
  const form = new FormData();
  form.append("file", request.sample, request.filename);
  form.append("name", request.name.trim());
  form.append("language", request.language);
  form.append("consent", request.consent);
  return form;
}

export async function trainVoice(request: TrainRequest): Promise<JobStarted> {
  const response = await authFetch("/train-voice", { method: "POST", body: trainForm(request) });
  return (await response.json()) as JobStarted;
}

export function fetchJob(jobId: string): Promise<Job> {
  return data(api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId } } }));
}

export function cancelJob(jobId: string): Promise<Job> {
  return data(api.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } }));
}
