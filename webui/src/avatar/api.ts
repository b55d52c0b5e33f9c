// The calls the Avatar page makes.
import { ApiError, api, authFetch, data, type Schemas } from "../api/client";
import type { JobStarted } from "../voices/api";

export type Avatar = Schemas["AvatarOut"];
export type Avatars = Schemas["AvatarsOut"];
export type AvatarItem = Schemas["AvatarListItemOut"];

export const DEFAULT_AVATAR = "default";
export const VIDEO_RESOLUTION = 512;

export function listAvatars(): Promise<Avatars> {
  return data(api.GET("/api/avatars"));
}

// "default": back to the configured portrait. Restarts the face renderer.
export function activateAvatar(avatarId: string): Promise<Avatars> {
  return data(api.POST("/api/avatars/{avatar_id}/activate", { params: { path: { avatar_id: avatarId } } }));
}

// The face box and lips of a prepared avatar ("default": the configured portrait).
export async function describeAvatar(avatarId: string): Promise<Avatar> {
  const avatar = await data(api.GET("/api/avatars/{avatar_id}", { params: { path: { avatar_id: avatarId } } }));
  return avatar as Avatar; // openapi-fetch widens the schema's tuples (face_box, lips) to plain arrays
}

export async function prepareAvatar(image: File): Promise<Avatar> {
  const form = new FormData();
  form.append("image", image, image.name);
  const response = await authFetch("/api/avatars", { method: "POST", body: form });
  return (await response.json()) as Avatar;
}

export function avatarImagePath(avatarId: string): string {
  return `/api/avatars/${encodeURIComponent(avatarId)}/image`;
}

export type GenerateAnswer = { kind: "video"; video: Blob } | { kind: "job"; job: JobStarted };

// POST /generate-avatar answers 200 with the MP4 itself (short speech) or 202 with a job (long speech).
export function answerKind(status: number, contentType: string | null): "video" | "job" | "unexpected" {
  const type = (contentType ?? "").toLowerCase();
  if (status === 202) return "job";
  if (status !== 200) return "unexpected";
  if (type.includes("json")) return "job";
  if (type === "" || type.startsWith("video/") || type.startsWith("application/octet-stream")) return "video";
  return "unexpected";
}

export async function readGenerateAnswer(response: Response): Promise<GenerateAnswer> {
  const kind = answerKind(response.status, response.headers.get("Content-Type"));
  if (kind === "job") {
    const job = (await response.json()) as Partial<JobStarted>;
    if (typeof job.job_id !== "string" || !job.job_id) {
      throw new ApiError("unexpected-answer", "the appliance started a video job without an id", response.status);
    }
    return { kind: "job", job: job as JobStarted };
  }
  if (kind === "video") return { kind: "video", video: await mp4Blob(response) };
  throw new ApiError(
    "unexpected-answer",
    `the appliance answered ${response.status} ${response.headers.get("Content-Type") ?? ""} instead of a video`,
    response.status,
  );
}

async function mp4Blob(response: Response): Promise<Blob> {
  const blob = await response.blob();
  return blob.type.startsWith("video/") ? blob : new Blob([blob], { type: "video/mp4" });
}

export function generateForm(text: string, avatarId: string | null): FormData {
  const form = new FormData();
  form.append("text", text.trim());
  if (avatarId) form.append("avatar_id", avatarId);
  form.append("resolution", String(VIDEO_RESOLUTION));
  return form;
}

export async function generateVideo(text: string, avatarId: string | null, signal?: AbortSignal): Promise<GenerateAnswer> {
  const response = await authFetch("/generate-avatar", { method: "POST", body: generateForm(text, avatarId), signal });
  return readGenerateAnswer(response);
}

export async function jobVideo(jobId: string): Promise<Blob> {
  return mp4Blob(await authFetch(`/api/jobs/${encodeURIComponent(jobId)}/result`));
}

// What to do about a refused portrait, beyond the API's own message.
export function avatarAdvice(code: string): string | null {
  switch (code) {
    case "avatar-no-face":
      return "No face was found. Use a photo of one person looking at the camera, face uncovered and well lit.";
    case "avatar-several-faces":
      return "More than one face is in the picture. Crop it to one person.";
    case "avatar-face-too-small":
      return "The face is too small to animate. Crop closer, so the face fills more of the picture.";
    case "avatar-too-small":
      return "The picture is too small. Use one at least a few hundred pixels across.";
    case "avatar-too-large":
      return "The file is too large. A 1024 × 1024 picture is plenty.";
    case "avatar-unsupported-format":
      return "That kind of file cannot be used. Save the picture as PNG, JPEG or WebP (not HEIC) and try again.";
    case "avatar-unreadable":
      return "The picture could not be read: the file may be damaged or incomplete.";
    case "lipsync-not-ready":
    case "lipsync-unreachable":
    case "lipsync-worker-crashed":
    case "lipsync-worker-hung":
      return "The face renderer is (re)starting. Try again in a few seconds.";
    default:
      return null;
  }
}
