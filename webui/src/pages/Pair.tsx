// First visit from a new device: trade the one-time pairing code for this device's token.
import { type FormEvent, useEffect, useState } from "react";
import { ApiError } from "../api/client";
import { codeProblem, deviceNameFrom, normalizeCode } from "../pair/deviceName";
import { PairError, pairDevice, pairErrorText } from "../pair/pair";
import "../pair/pair.css";

// Counts down to zero, a second at a time, from each new start value.
function useCountdown(): [number, (seconds: number) => void] {
  const [left, setLeft] = useState(0);
  useEffect(() => {
    if (left <= 0) return;
    const timer = window.setTimeout(() => setLeft((s) => s - 1), 1000);
    return () => window.clearTimeout(timer);
  }, [left]);
  return [left, setLeft];
}

export function PairPage({ onPaired }: { onPaired: () => void }) {
  const [code, setCode] = useState("");
  const [name, setName] = useState(() => deviceNameFrom(navigator.userAgent, navigator.maxTouchPoints ?? 0));
  const [problem, setProblem] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [wait, setWait] = useCountdown();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const cleaned = normalizeCode(code);
    const why = codeProblem(cleaned);
    setProblem(why);
    setError(null);
    if (why || busy || wait > 0) return;
    setBusy(true);
    try {
      await pairDevice(cleaned, name.trim() || deviceNameFrom(navigator.userAgent));
      onPaired();
    } catch (err) {
      const failure = err instanceof ApiError ? err : new ApiError("client-error", String(err), 0);
      setError(failure);
      if (failure instanceof PairError && failure.retryAfterS) setWait(failure.retryAfterS);
      setBusy(false);
    }
  }

  const codeError = problem ?? (error?.code === "pairing-code-invalid" ? pairErrorText(error) : null);
  const otherError = error && error.code !== "pairing-code-invalid" ? error : null;

  return (
    <main className="pair-screen">
      <form className="card stack pair-card" onSubmit={submit} noValidate aria-labelledby="pair-title">
        <h1 id="pair-title">Pair this device with your Mynah</h1>
        <p className="muted" style={{ margin: 0 }}>
          Mynah answers only devices you have paired. You do this once per browser.
        </p>
        <ol className="small">
          <li>
            On the box, find the 6-digit pairing code: <code>mynah up</code> shows it, and{" "}
            <code>mynah devices pair-code</code> makes a fresh one.
          </li>
          <li>Type it below. A code works once and expires after a few minutes.</li>
        </ol>

        <label htmlFor="pair-code">
          Pairing code
          <input
            id="pair-code"
            className="pair-code-input"
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9 ]*"
            maxLength={12}
            autoFocus
            value={code}
            onChange={(e) => setCode(e.target.value)}
            aria-invalid={codeError ? true : undefined}
            aria-describedby={codeError ? "pair-code-error" : undefined}
          />
        </label>
        {codeError && (
          <p id="pair-code-error" className="error small" role="alert">
            {codeError}
          </p>
        )}

        <label htmlFor="device-name">
          Device name
          <input
            id="device-name"
            maxLength={200}
            autoComplete="off"
            value={name}
            onChange={(e) => setName(e.target.value)}
            aria-describedby="device-name-help"
          />
        </label>
        <p id="device-name-help" className="muted small field-help">
          How this device appears in the list of paired devices (Status page), e.g. "Kitchen tablet".
        </p>

        {otherError && (
          <p className="error" role="alert">
            {pairErrorText(otherError)}
            {wait > 0 && ` Try again in ${wait} s.`} <code>{otherError.code}</code>
          </p>
        )}

        <button type="submit" className="primary" disabled={busy || wait > 0}>
          {busy ? "Pairing…" : wait > 0 ? `Wait ${wait} s` : "Pair"}
        </button>
      </form>
    </main>
  );
}
