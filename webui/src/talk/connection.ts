// One live call, whichever transport carries it.
import type { TalkEvent } from "./protocol";
import type { Transport } from "./transport";

// How a call that was up came to an end.
export type CallEnd =
  | { kind: "closed"; reason: string } // the appliance ended the session (its `closed` event)
  | { kind: "lost"; message: string } // the connection dropped
  | { kind: "auth" } // the token is no longer good (close code 4401)
  | { kind: "refused"; code: string; message: string } // the session could not start (close code 4409)
  | { kind: "retry"; code: string; message: string }; // the appliance restarted a part of itself: reconnect (4503)

export interface CallHooks {
  onEvent(event: TalkEvent): void;
  onPlayback(turn: number, playing: boolean): void; // a reply's speech started / stopped playing here
  onEnded(end: CallEnd): void; // not called after hangUp() or close()
  onNeedsGesture(): void; // the browser would not start the sound without a click
}

export interface Connection {
  readonly transport: Transport;
  readonly sessionId: string | null;
  hangUp(): void; // says bye, then closes
  close(): void; // closes at once (leaving the page, falling back)
  resumeAudio(): Promise<void>; // after a click, when onNeedsGesture was called
}
