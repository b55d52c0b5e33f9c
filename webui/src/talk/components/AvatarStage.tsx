// The avatar, big: WebRTC's voice and face from one MediaStream in a <video>, or the WebSocket player's canvas;
// the avatar's still portrait before a call. The call's state shows as a pill over it.
import { useEffect, useState } from "react";
import { authFetch, api, data } from "../../api/client";

import type { TalkPhase } from "../state";
import { PHASE_HINT } from "../state";
import type { Transport } from "../transport";

function useAvatarPortrait(): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let made: string | null = null;
    let gone = false;
    void (async () => {
      try {
        // The configured default portrait (no avatar active) has no image route: the stage stays plain then.
        const list = await data(api.GET("/api/avatars"));
        const active = list.avatars.find((avatar) => avatar.active || avatar.avatar_id === list.active_avatar_id);
        if (!active) return;
        const blob = await (await authFetch(active.image_url)).blob();
        if (gone) return;
        made = URL.createObjectURL(blob);
        setUrl(made);
      } catch {
        // no portrait: the stage shows its plain background
      }
    })();
    return () => {
      gone = true;
      if (made) URL.revokeObjectURL(made);
    };
  }, []);
  return url;
}

export function AvatarStage(props: {
  phase: TalkPhase;
  transport: Transport | null;
  videoRef: React.RefObject<HTMLVideoElement | null>;
  canvasRef: React.RefObject<HTMLCanvasElement | null>;
  needsGesture: boolean;
  onResumeAudio: () => void;
}) {
  const { phase, transport } = props;
  const portrait = useAvatarPortrait();
  return (
    <div className="talk-stage" data-phase={phase}>
      {portrait && !transport && <img className="talk-portrait" src={portrait} alt="" />}
      {!portrait && !transport && (
        <div className="talk-portrait talk-portrait-empty" aria-hidden="true">
          <svg viewBox="0 0 64 64" width="96" height="96">
            <circle cx="32" cy="24" r="12" fill="currentColor" />
            <path d="M10 58c2-13 11-20 22-20s20 7 22 20" fill="currentColor" />
          </svg>
        </div>
      )}
      <video
        ref={props.videoRef}
        data-testid="avatar-video"
        className="talk-media"
        autoPlay
        playsInline
        hidden={transport !== "webrtc"}
        aria-label="The avatar (live video)"
      />
      <canvas
        ref={props.canvasRef}
        data-testid="avatar-canvas"
        className="talk-media"
        hidden={transport !== "websocket"}
        role="img"
        aria-label="The avatar"
      />
      <div className="talk-pill-wrap">
        <div className="talk-pill" data-phase={phase}>
          <span className="talk-pill-dot" aria-hidden="true" />
          <span data-testid="talk-state" aria-live="polite">
            {phase}
          </span>
        </div>
        <span className="talk-hint">{PHASE_HINT[phase]}</span>
      </div>
      {transport && (
        <div className="talk-via small">
          <span className="muted">via </span>
          <span data-testid="transport">{transport}</span>
        </div>
      )}
      {props.needsGesture && (
        <button type="button" className="primary talk-sound" onClick={props.onResumeAudio}>
          Tap to hear the avatar
        </button>
      )}
    </div>
  );
}
