// A button for something that cannot be undone: the first press asks, in place, before anything happens.
import { useState } from "react";
import "./jobProgress.css";

interface Props {
  label: string;
  question: string;
  confirmLabel: string;
  keepLabel?: string;
  onConfirm: () => void | Promise<void>;
  disabled?: boolean;
  className?: string;
}

export function ConfirmButton({
  label,
  question,
  confirmLabel,
  keepLabel = "Keep it",
  onConfirm,
  disabled,
  className = "danger",
}: Props) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" className={className} disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span className="confirm row" role="group" aria-label={question}>
      <span className="small">{question}</span>
      <button
        type="button"
        className="danger"
        onClick={() => {
          setAsking(false);
          void onConfirm();
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" autoFocus onClick={() => setAsking(false)}>
        {keepLabel}
      </button>
    </span>
  );
}
