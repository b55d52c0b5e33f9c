// Times and sizes as the pages write them.

// An API time (seconds since 1970) as a local date and time.
export function formatTime(epochSeconds: number, locale?: string): string {
  if (!Number.isFinite(epochSeconds) || epochSeconds <= 0) return "unknown time";
  return new Date(epochSeconds * 1000).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

const LANGUAGE_NAMES: Record<string, string> = {
  en: "English",
  zh: "Chinese",
  ja: "Japanese",
  ko: "Korean",
  yue: "Cantonese",
};

// The languages a voice can be trained in (GPT-SoVITS's dataset codes; docs/errors.md voice-language-invalid).
export const TRAINING_LANGUAGES = Object.keys(LANGUAGE_NAMES);

export function languageName(code: string): string {
  const name = LANGUAGE_NAMES[code.toLowerCase()];
  return name ? `${name} (${code})` : code;
}
