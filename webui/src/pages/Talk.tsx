// Talk to the avatar: a live voice call (WebRTC, else the WebSocket), the conversation with its history, typed
// messages, and the stored conversations. The engine is src/talk/ (useTalk); this page lays it out.
import { useEffect, useState } from "react";
import { api, data } from "../api/client";
import { useLoaded } from "../lib/hooks";
import { go } from "../lib/route";
import { AvatarStage } from "../talk/components/AvatarStage";
import { CallControls } from "../talk/components/CallControls";
import { Composer } from "../talk/components/Composer";
import { Conversations } from "../talk/components/Conversations";
import { History } from "../talk/components/History";
import { LatencyReadout } from "../talk/components/LatencyReadout";
import { MicProblemPanel } from "../talk/components/MicProblemPanel";
import { Transcript } from "../talk/components/Transcript";
import { ErrorNote } from "../components/ErrorNote";
import { usesDemoModel } from "../talk/health";
import { isTextEntry } from "../talk/prefs";
import { useTalk } from "../talk/useTalk";
import "./Talk.css";

function useDemoModel(): boolean {
  const [demo, setDemo] = useState(false);
  useEffect(() => {
    let gone = false;
    api
      .GET("/health")
      .then((result) => {
        if (!gone) setDemo(usesDemoModel(result.data ?? result.error));
      })
      .catch(() => undefined);
    return () => {
      gone = true;
    };
  }, []);
  return demo;
}

// Push-to-talk on the Space bar, anywhere but a text field.
function useSpaceToTalk(enabled: boolean, setHeld: (held: boolean) => void): void {
  useEffect(() => {
    if (!enabled) return;
    const down = (event: KeyboardEvent) => {
      if (event.code !== "Space" || isTextEntry(document.activeElement)) return;
      event.preventDefault();
      if (!event.repeat) setHeld(true);
    };
    const up = (event: KeyboardEvent) => {
      if (event.code !== "Space" || isTextEntry(document.activeElement)) return;
      event.preventDefault();
      setHeld(false);
    };
    const release = () => setHeld(false);
    window.addEventListener("keydown", down);
    window.addEventListener("keyup", up);
    window.addEventListener("blur", release);
    return () => {
      window.removeEventListener("keydown", down);
      window.removeEventListener("keyup", up);
      window.removeEventListener("blur", release);
      setHeld(false);
    };
  }, [enabled, setHeld]);
}

export function TalkPage({ sessionId }: { sessionId: string | null }) {
  const sessions = useLoaded(() => data(api.GET("/api/sessions", { params: { query: { limit: 100 } } })));
  const talk = useTalk(sessionId, sessions.reload);
  const demo = useDemoModel();
  const live = talk.transport !== null;
  useSpaceToTalk(talk.mode === "push" && live, talk.setHeld);

  const current = sessions.value?.sessions.find((session) => session.session_id === talk.sessionId);
  const firstWords = talk.lines.find((line) => line.role === "user")?.text;
  const title = (talk.sessionId && current?.title.trim()) || firstWords || "New conversation";

  return (
    <section className="page talk-page">
      <header className="talk-head">
        <h1>Talk</h1>
        <span className="talk-title muted" title={title}>
          {title}
        </span>
      </header>
      {demo && (
        <p className="note small talk-demo">
          Replies come from the tiny embedded demo model; set up Ollama in <a href="#/settings">Settings</a> for real
          answers.
        </p>
      )}
      <div className="talk-layout">
        <Conversations
          sessions={sessions.value?.sessions ?? null}
          loading={sessions.loading}
          error={sessions.error}
          currentId={talk.sessionId}
          onOpen={(id) => {
            talk.openConversation(id);
            go("talk", id);
          }}
          onNew={() => {
            talk.openConversation(null);
            go("talk");
          }}
          onDelete={talk.deleteConversation}
          onRetry={() => void sessions.reload()}
        />
        <div className="talk-main">
          <AvatarStage
            phase={talk.phase}
            transport={talk.transport}
            videoRef={talk.videoRef}
            canvasRef={talk.canvasRef}
            needsGesture={talk.needsGesture}
            onResumeAudio={talk.resumeAudio}
          />
          {talk.micProblem && (
            <MicProblemPanel problem={talk.micProblem.problem} detail={talk.micProblem.detail} onRetry={() => void talk.start()} />
          )}
          <ErrorNote error={talk.callError} what="The call stopped" />
          {talk.talk.link === "live" && talk.talk.problem && (
            <p className="error small talk-notice" role="status">
              {talk.talk.problem.message} <code>{talk.talk.problem.code}</code>{" "}
              <button type="button" className="talk-link" onClick={talk.dismissProblem}>
                Dismiss
              </button>
            </p>
          )}
          {talk.notice && (
            <p className="note small talk-notice" role="status">
              {talk.notice}{" "}
              <button type="button" className="talk-link" onClick={talk.dismissNotice}>
                Dismiss
              </button>
            </p>
          )}
          <CallControls talk={talk} />
          <Transcript partial={talk.talk.partial} final={talk.talk.final} />
          <LatencyReadout turns={talk.latency} />
        </div>
        <div className="talk-chat card">
          <h2>Conversation</h2>
          <History
            lines={talk.lines}
            loading={talk.historyLoad.loading}
            error={talk.historyLoad.error}
            onRetry={() => talk.sessionId && talk.openConversation(talk.sessionId)}
          />
          <Composer onSend={talk.sendText} />
        </div>
      </div>
    </section>
  );
}
