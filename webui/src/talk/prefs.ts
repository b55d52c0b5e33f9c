// The page's choices kept in this browser.
import { TRANSPORT_KEY, isChoice, type TransportChoice } from "./transport";

export type MicMode = "hands-free" | "push";
export const MIC_MODE_KEY = "mynah.micMode";

export function readMicMode(stored: string | null): MicMode {
  return stored === "push" ? "push" : "hands-free";
}

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode or full: the choice lasts for this page only
  }
}

export const prefs = {
  micMode: (): MicMode => readMicMode(read(MIC_MODE_KEY)),
  setMicMode: (mode: MicMode) => write(MIC_MODE_KEY, mode),
  storedTransport: (): string | null => read(TRANSPORT_KEY),
  setTransport: (choice: TransportChoice) => {
    if (isChoice(choice)) write(TRANSPORT_KEY, choice);
  },
};

// Whether a key press belongs to a text field (Space there types a space, not push-to-talk).
export function isTextEntry(element: Element | null): boolean {
  if (!element) return false;
  if (element instanceof HTMLTextAreaElement) return true;
  if (element instanceof HTMLSelectElement) return true;
  if (element instanceof HTMLInputElement) {
    return !["button", "checkbox", "radio", "range", "submit", "reset", "color", "file", "image"].includes(element.type);
  }
  return element instanceof HTMLElement && element.isContentEditable === true;
}
