// The microphone button. Hands-free: a mute toggle. Push-to-talk: open only while held (pointer, or Enter on
// the button; Space anywhere outside a text field is handled by the page).
import type { MicMode } from "../prefs";

export function MicButton(props: {
  mode: MicMode;
  muted: boolean;
  connected: boolean;
  onToggle: () => void;
  onHold: (held: boolean) => void;
}) {
  const { mode, muted, connected } = props;
  const push = mode === "push";
  const label = !connected
    ? "Microphone (off until a call)"
    : push
      ? muted
        ? "Hold to talk"
        : "Talking… release to stop"
      : muted
        ? "Microphone off"
        : "Microphone on";
  return (
    <button
      type="button"
      data-testid="mic"
      className={`talk-mic${connected && !muted ? " open" : ""}${push ? " push" : ""}`}
      aria-pressed={connected ? !muted : undefined}
      disabled={!connected}
      title={push ? "Hold this button, or the Space bar, while you speak" : "Mute or unmute the microphone"}
      onClick={push ? undefined : props.onToggle}
      onPointerDown={
        push
          ? (event) => {
              if (event.button !== 0) return;
              event.currentTarget.setPointerCapture(event.pointerId);
              props.onHold(true);
            }
          : undefined
      }
      onPointerUp={push ? () => props.onHold(false) : undefined}
      onPointerCancel={push ? () => props.onHold(false) : undefined}
      onLostPointerCapture={push ? () => props.onHold(false) : undefined}
      onKeyDown={
        push
          ? (event) => {
              if (event.key === "Enter" && !event.repeat) props.onHold(true);
            }
          : undefined
      }
      onKeyUp={push ? (event) => event.key === "Enter" && props.onHold(false) : undefined}
      onBlur={push ? () => props.onHold(false) : undefined}
      onContextMenu={push ? (event) => event.preventDefault() : undefined}
    >
      <svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true">
        <rect x="9" y="3" width="6" height="11" rx="3" fill="currentColor" />
        <path d="M6 11a6 6 0 0 0 12 0M12 17v4M8 21h8" stroke="currentColor" strokeWidth="2" fill="none" strokeLinecap="round" />
        {muted && connected && <path d="M4 4l16 16" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" />}
      </svg>
      <span>{label}</span>
    </button>
  );
}

export function MicModeToggle(props: { mode: MicMode; onChange: (mode: MicMode) => void }) {
  const push = props.mode === "push";
  return (
    <button
      type="button"
      data-testid="mic-mode"
      data-mode={props.mode}
      className="talk-mode"
      aria-pressed={push}
      title="Switch between an always-open microphone and push-to-talk"
      onClick={() => props.onChange(push ? "hands-free" : "push")}
    >
      <span className="visually-hidden">Push-to-talk</span>
      <span className={push ? "" : "on"} aria-hidden="true">
        Hands-free
      </span>
      <span className={push ? "on" : ""} aria-hidden="true">
        Push-to-talk
      </span>
    </button>
  );
}
