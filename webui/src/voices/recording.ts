// The rules of a browser recording for a voice sample: how long, when it may stop, and what to say when the
// microphone cannot be used.

export const MIN_SECONDS = 20; // the trainer refuses less (voice-sample-too-short)
export const TARGET_SECONDS = 60;
export const MAX_SECONDS = 90; // the recording stops itself here

export const CONSENT_STATEMENT =
  "I am the speaker, or the speaker agreed that this recording may be used to make a voice that speaks for them";

// About 150 words of varied, natural sentences: questions, exclamations, numbers, names and a quote.
export const READING_PASSAGE = [
  "The morning market was already busy when I arrived. A woman was selling bright yellow lemons, and a boy",
  "beside her counted coins with great care. I bought a loaf of warm bread and asked how far it was to the",
  'river. "Not far," she said, "just follow the music." So I did. Along the way I passed a bakery, a bicycle',
  "shop and a tiny garden full of roses. Have you ever noticed how a city sounds different early in the day?",
  "Trucks rumble, birds argue, and doors open one by one. By half past nine the sun was high, and the air",
  "smelled of coffee and rain. I sat on a bench, opened my notebook, and wrote three simple words: remember",
  "this place. Then I laughed out loud, because two hungry ducks had already started to steal my breakfast!",
  "Next Thursday, I think I will go back and bring them something of their own.",
].join(" ");

export function wordCount(text: string): number {
  return text.split(/\s+/).filter((word) => /\w/.test(word)).length;
}

export interface RecordingState {
  canStop: boolean; // long enough for the trainer
  reachedTarget: boolean;
  mustStop: boolean; // the longest recording
  remainingToMin: number; // whole seconds until it may stop
}

export function recordingState(elapsedSeconds: number): RecordingState {
  return {
    canStop: elapsedSeconds >= MIN_SECONDS,
    reachedTarget: elapsedSeconds >= TARGET_SECONDS,
    mustStop: elapsedSeconds >= MAX_SECONDS,
    remainingToMin: Math.max(0, Math.ceil(MIN_SECONDS - elapsedSeconds)),
  };
}

// m:ss, e.g. 0:07, 1:30.
export function formatClock(seconds: number): string {
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

// What to tell the user when the microphone could not be opened.
export function microphoneProblem(error: unknown): string {
  const name = error instanceof Error || error instanceof DOMException ? error.name : "";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return (
        "The browser was not allowed to use the microphone. Click the lock or microphone icon next to the " +
        "address, allow the microphone for this site, then press Start recording again. On a phone, also check " +
        "that the browser app may use the microphone in the system settings."
      );
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in (or choose one in the system settings) and try again.";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "The microphone could not be started: another app may be using it. Close that app and try again.";
    case "NotSupportedError":
    case "TypeError":
      return "This browser cannot record here. Use a current Chrome, Edge, Firefox or Safari, or upload a file.";
    default:
      return `The microphone could not be opened (${error instanceof Error ? error.message : String(error)}).`;
  }
}
