// Start / hang up, the microphone and its mode, the input level, and the transport choice.
import type { Talk } from "../useTalk";
import { LevelMeter } from "./LevelMeter";
import { MicButton, MicModeToggle } from "./MicButton";
import type { TransportChoice } from "../transport";

const CHOICES: { value: TransportChoice; label: string }[] = [
  { value: "auto", label: "Auto" },
  { value: "webrtc", label: "WebRTC" },
  { value: "websocket", label: "WebSocket" },
];

export function CallControls({ talk }: { talk: Talk }) {
  const busy = talk.talk.link === "connecting";
  const live = talk.transport !== null;
  const inCall = busy || live;
  return (
    <div className="talk-controls card">
      <div className="talk-controls-main">
        {inCall ? (
          <button type="button" className="danger talk-call" onClick={talk.hangUp}>
            {busy && !live ? "Cancel" : "Hang up"}
          </button>
        ) : (
          <button type="button" className="primary talk-call" onClick={() => void talk.start()}>
            Start talking
          </button>
        )}
        <MicButton
          mode={talk.mode}
          muted={talk.muted}
          connected={live}
          onToggle={() => talk.setUserMuted(!talk.userMuted)}
          onHold={talk.setHeld}
        />
        <LevelMeter mic={talk.mic} muted={talk.muted} />
      </div>
      <div className="talk-controls-options">
        <MicModeToggle mode={talk.mode} onChange={talk.setMode} />
        <label className="talk-transport-choice">
          <span className="small muted">Connection</span>
          <select
            value={talk.choice}
            title="Auto tries WebRTC first and falls back to the WebSocket"
            onChange={(event) => talk.setChoice(event.target.value as TransportChoice)}
          >
            {CHOICES.map((choice) => (
              <option key={choice.value} value={choice.value}>
                {choice.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <p className="muted small talk-controls-help">
        {talk.mode === "push"
          ? "Push-to-talk: hold the microphone button, or the Space bar, while you speak."
          : "Hands-free: just speak; talk over the avatar to interrupt it."}
        {inCall && talk.choice !== talk.transport && talk.choice !== "auto" ? " The connection choice applies to the next call." : ""}
      </p>
    </div>
  );
}
