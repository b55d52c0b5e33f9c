// The Talk page's engine: the call (microphone, transport, events), the conversation's lines, the latency of
// each turn, and the choices (transport, microphone mode). Components only show it and call its actions.
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { ApiError, api, data, type Schemas } from "../api/client";
import type { CallEnd, CallHooks, Connection } from "./connection";
import { addTyped, applyEvent, failTyped, fromStored, mergeHistory, settleTyped, type Line } from "./history";
import { pushLatency, type TurnLatency } from "./latency";
import { MicError, Microphone, type MicProblem } from "./mic";
import { prefs, type MicMode } from "./prefs";
import { closedReasonText, type TalkEvent } from "./protocol";
import { startCall } from "./session";
import { initialTalk, nextPhaseChange, phaseOf, talkReducer } from "./state";
import { transportChoice, type Transport, type TransportChoice } from "./transport";

// Errors after which the session is gone but the appliance is coming back (docs/errors.md): reconnect.
const RETRY_CODES = new Set(["coordinator-restarted", "coordinator-unavailable"]);
const MAX_RETRIES = 5;
const RETRY_AFTER_MS = 2_000;

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError("client-error", String(err), 0);
}

function nowSeconds(): number {
  return Date.now() / 1000;
}

// The route shows the conversation without a hashchange (that would reconnect): #/talk/<id>.
function showInRoute(sessionId: string | null): void {
  const hash = sessionId ? `#/talk/${encodeURIComponent(sessionId)}` : "#/talk";
  if (window.location.hash !== hash) {
    window.history.replaceState(window.history.state, "", `${window.location.pathname}${window.location.search}${hash}`);
  }
}

export interface HistoryLoad {
  loading: boolean;
  error: ApiError | null;
}

export function useTalk(routeSessionId: string | null, onConversationsChanged: () => void) {
  const [talk, dispatch] = useReducer(talkReducer, initialTalk);
  const [, setClock] = useState(0);
  const [sessionId, setSessionId] = useState<string | null>(null);
  const sessionRef = useRef<string | null>(null);
  const [stored, setStored] = useState<{ sessionId: string | null; lines: Line[] }>({ sessionId: null, lines: [] });
  const [historyLoad, setHistoryLoad] = useState<HistoryLoad>({ loading: false, error: null });
  const historyGen = useRef(0);
  const [live, setLive] = useState<Line[]>([]);
  const [latency, setLatency] = useState<TurnLatency[]>([]);
  const [transport, setTransport] = useState<Transport | null>(null);
  const [choice, setChoiceState] = useState<TransportChoice>(() => transportChoice(window.location.search, prefs.storedTransport()));
  const choiceRef = useRef(choice);
  choiceRef.current = choice;
  const [mode, setModeState] = useState<MicMode>(() => prefs.micMode());
  const [userMuted, setUserMuted] = useState(false);
  const [held, setHeld] = useState(false);
  const muted = mode === "push" ? !held : userMuted;
  const mutedRef = useRef(muted);
  mutedRef.current = muted;
  const [mic, setMic] = useState<Microphone | null>(null);
  const micRef = useRef<Microphone | null>(null);
  const [micProblem, setMicProblem] = useState<{ problem: MicProblem; detail: string } | null>(null);
  const [callError, setCallError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState("");
  const [needsGesture, setNeedsGesture] = useState(false);
  const videoRef = useRef<HTMLVideoElement | null>(null);
  const canvasRef = useRef<HTMLCanvasElement | null>(null);
  const connRef = useRef<Connection | null>(null);
  const abortRef = useRef<AbortController | null>(null);
  const callGen = useRef(0);
  const lastErrorCode = useRef("");
  const retries = useRef(0);
  const typedCount = useRef(0);
  const changed = useRef(onConversationsChanged);
  changed.current = onConversationsChanged;

  // --- the phase's clock (interrupted lasts a moment) ---
  const phase = phaseOf(talk, Date.now());
  useEffect(() => {
    const wait = nextPhaseChange(talk, Date.now());
    if (wait === null) return;
    const timer = window.setTimeout(() => setClock((n) => n + 1), wait + 20);
    return () => window.clearTimeout(timer);
  }, [talk]);

  // --- history ---
  const loadHistory = useCallback(async (id: string) => {
    const gen = ++historyGen.current;
    setHistoryLoad({ loading: true, error: null });
    try {
      const out = await data(api.GET("/api/sessions/{session_id}/history", { params: { path: { session_id: id } } }));
      if (gen !== historyGen.current) return;
      setStored({ sessionId: id, lines: fromStored(out.lines) });
      setHistoryLoad({ loading: false, error: null });
    } catch (err) {
      if (gen !== historyGen.current) return;
      setHistoryLoad({ loading: false, error: asApiError(err) });
    }
  }, []);

  const lines = useMemo(
    () => mergeHistory(stored.sessionId !== null && stored.sessionId === sessionId ? stored.lines : [], live),
    [stored, sessionId, live],
  );

  // A session the appliance made (the call's `session` event, or a typed message's answer) becomes the open one.
  const adopt = useCallback((id: string, resumed: boolean) => {
    if (sessionRef.current === id) return;
    const fresh = sessionRef.current === null;
    sessionRef.current = id;
    setSessionId(id);
    showInRoute(id);
    historyGen.current++;
    if (resumed || !fresh) void loadHistory(id);
    else {
      setStored({ sessionId: id, lines: [] });
      setHistoryLoad({ loading: false, error: null });
    }
    changed.current();
  }, [loadHistory]);

  // --- the microphone ---
  useEffect(() => {
    mic?.setMuted(muted);
  }, [mic, muted]);

  // --- the call ---
  const hooksFor = useCallback(
    (gen: number): CallHooks => {
      const current = () => gen === callGen.current;
      return {
        onEvent(event: TalkEvent) {
          if (!current()) return;
          if (event.type === "error") lastErrorCode.current = event.code;
          if (event.type === "session") retries.current = 0;
          dispatch({ type: "event", event, now: Date.now() });
          setLive((previous) => applyEvent(previous, event, nowSeconds()));
          if (event.type === "session") adopt(event.session_id, event.resumed);
          if (event.type === "turn") changed.current();
          if (event.type === "turn_end") {
            if (Object.keys(event.trace).length) {
              setLatency((previous) => pushLatency(previous, { turn: event.turn, status: event.status, trace: event.trace }));
            }
            changed.current();
          }
        },
        onPlayback(turn, playing) {
          if (current()) dispatch({ type: "playback", turn, playing });
        },
        onEnded(end: CallEnd) {
          if (!current()) return;
          callGen.current++;
          connRef.current = null;
          setTransport(null);
          setNeedsGesture(false);
          setHeld(false);
          micRef.current?.close();
          micRef.current = null;
          setMic(null);
          // The coordinator died mid-session (its error says so) and supervisord is restarting it: come back to
          // the same conversation by ourselves, a few times, as WebRTC's closed channel or the socket's 4503 say.
          const restarted = end.kind === "retry" || RETRY_CODES.has(lastErrorCode.current);
          lastErrorCode.current = "";
          if (restarted && retries.current < MAX_RETRIES) {
            retries.current++;
            dispatch({ type: "disconnected" });
            setNotice("Part of the appliance restarted; reconnecting to this conversation…");
            window.setTimeout(() => {
              if (gen + 1 === callGen.current && !connRef.current) void startRef.current?.();
            }, RETRY_AFTER_MS * retries.current);
            changed.current();
            return;
          }
          switch (end.kind) {
            case "retry":
              dispatch({ type: "failed", problem: { code: end.code, message: end.message } });
              setCallError(new ApiError(end.code, end.message, 0));
              break;
            case "closed":
              dispatch({ type: "disconnected" });
              setNotice(closedReasonText(end.reason));
              break;
            case "auth":
              dispatch({ type: "disconnected" });
              break;
            case "lost":
              dispatch({ type: "failed", problem: { code: "connection-lost", message: end.message } });
              setCallError(new ApiError("connection-lost", end.message, 0));
              break;
            case "refused":
              dispatch({ type: "failed", problem: { code: end.code, message: end.message } });
              setCallError(new ApiError(end.code, end.message, 0));
              break;
          }
          changed.current();
        },
        onNeedsGesture() {
          if (current()) setNeedsGesture(true);
        },
      };
    },
    [adopt],
  );

  const stopCall = useCallback(
    (keepMic = false) => {
      callGen.current++;
      abortRef.current?.abort();
      abortRef.current = null;
      connRef.current?.hangUp();
      connRef.current = null;
      setTransport(null);
      setNeedsGesture(false);
      setHeld(false);
      if (!keepMic) {
        micRef.current?.close();
        micRef.current = null;
        setMic(null);
      }
      dispatch({ type: "disconnected" });
    },
    [],
  );

  const startRef = useRef<(() => Promise<void>) | null>(null);
  const start = useCallback(async () => {
    if (connRef.current || abortRef.current) return;
    const controller = new AbortController();
    abortRef.current = controller;
    const gen = ++callGen.current;
    setCallError(null);
    setMicProblem(null);
    setNotice("");
    setNeedsGesture(false);
    dispatch({ type: "connect" });
    // Made now, inside the click: some browsers start sound only from a user's gesture.
    let audio: AudioContext | undefined;
    try {
      audio = new AudioContext({ sampleRate: 48_000, latencyHint: "interactive" });
      void audio.resume().catch(() => undefined);
    } catch {
      audio = undefined; // the player makes its own
    }
    const dropAudio = () => void audio?.close().catch(() => undefined);
    try {
      let microphone = micRef.current;
      if (!microphone || !microphone.live) {
        microphone?.close();
        try {
          microphone = await Microphone.open();
        } catch (err) {
          if (gen !== callGen.current) {
            dropAudio();
            return;
          }
          const problem = err instanceof MicError ? err.problem : "other";
          setMicProblem({ problem, detail: err instanceof Error ? err.message : String(err) });
          dispatch({ type: "disconnected" });
          dropAudio();
          return;
        }
        if (gen !== callGen.current) {
          microphone.close();
          dropAudio();
          return;
        }
        micRef.current = microphone;
        setMic(microphone);
      }
      microphone.setMuted(mutedRef.current);
      const connection = await startCall({
        choice: choiceRef.current,
        mic: microphone,
        sessionId: sessionRef.current,
        targets: { video: videoRef.current, canvas: canvasRef.current },
        hooks: hooksFor(gen),
        signal: controller.signal,
        audio,
        onFallback: (why) => {
          if (gen === callGen.current) setNotice(`WebRTC could not connect (${why.message}); the call uses the WebSocket instead.`);
        },
      });
      if (gen !== callGen.current) {
        connection.close();
        return;
      }
      connRef.current = connection;
      setTransport(connection.transport);
      if (connection.sessionId) adopt(connection.sessionId, true);
    } catch (err) {
      if (gen !== callGen.current || controller.signal.aborted) return;
      const error = asApiError(err);
      setCallError(error);
      dispatch({ type: "failed", problem: { code: error.code, message: error.message } });
      micRef.current?.close();
      micRef.current = null;
      setMic(null);
    } finally {
      if (abortRef.current === controller) abortRef.current = null;
    }
  }, [adopt, hooksFor]);
  startRef.current = start;

  const active = () => connRef.current !== null || abortRef.current !== null;

  // Leaving the page ends the call.
  useEffect(() => () => stopCall(), [stopCall]);

  // --- conversations ---
  const openConversation = useCallback(
    (id: string | null) => {
      const wasActive = active();
      if (wasActive) stopCall(true);
      sessionRef.current = id;
      setSessionId(id);
      setLive([]);
      setLatency([]);
      dispatch({ type: "clear-transcript" });
      setCallError(null);
      setNotice("");
      historyGen.current++;
      setStored({ sessionId: id, lines: [] });
      if (id) void loadHistory(id);
      else setHistoryLoad({ loading: false, error: null });
      if (wasActive) void start();
    },
    [loadHistory, start, stopCall],
  );

  // The route (#/talk/<id>) names the conversation: opening another one switches to it.
  useEffect(() => {
    if (routeSessionId !== sessionRef.current) openConversation(routeSessionId);
  }, [routeSessionId, openConversation]);

  const deleteConversation = useCallback(
    async (id: string) => {
      const open = id === sessionRef.current;
      if (open) stopCall();
      await data(api.DELETE("/api/sessions/{session_id}", { params: { path: { session_id: id } } }));
      if (open) {
        openConversation(null);
        window.location.hash = "#/talk";
      }
      changed.current();
    },
    [openConversation, stopCall],
  );

  // --- typed messages ---
  const sendText = useCallback(
    async (text: string): Promise<void> => {
      const key = `typed:${++typedCount.current}`;
      const sentFor = sessionRef.current;
      setLive((previous) => addTyped(previous, key, text, nowSeconds()));
      try {
        const out = (await data(api.POST("/chat", { body: { text, session_id: sentFor, stream: false } }))) as Schemas["ChatOut"];
        if (sentFor === null) {
          // The message started a conversation, unless another one was opened meanwhile.
          if (sessionRef.current !== null && sessionRef.current !== out.session_id) return;
          adopt(out.session_id, false);
        } else if (sessionRef.current !== sentFor) {
          return; // another conversation was opened meanwhile
        }
        setLive((previous) => settleTyped(previous, key, out.turn_id, out.reply, nowSeconds()));
        changed.current();
      } catch (err) {
        const error = asApiError(err);
        setLive((previous) => failTyped(previous, key, error.code));
        throw error;
      }
    },
    [adopt],
  );

  // --- choices ---
  const setChoice = useCallback((next: TransportChoice) => {
    prefs.setTransport(next);
    setChoiceState(next);
  }, []);
  const setMode = useCallback((next: MicMode) => {
    prefs.setMicMode(next);
    setModeState(next);
    setHeld(false);
    setUserMuted(false);
  }, []);

  const resumeAudio = useCallback(() => {
    void connRef.current
      ?.resumeAudio()
      .then(() => setNeedsGesture(false))
      .catch(() => undefined);
  }, []);

  return {
    talk,
    phase,
    sessionId,
    lines,
    historyLoad,
    latency,
    transport,
    choice,
    setChoice,
    mode,
    setMode,
    muted,
    userMuted,
    setUserMuted,
    held,
    setHeld,
    mic,
    micProblem,
    callError,
    notice,
    needsGesture,
    videoRef,
    canvasRef,
    start,
    hangUp: () => stopCall(),
    openConversation,
    deleteConversation,
    sendText,
    resumeAudio,
    dismissNotice: () => setNotice(""),
    dismissProblem: () => dispatch({ type: "dismiss-problem" }),
  };
}

export type Talk = ReturnType<typeof useTalk>;
