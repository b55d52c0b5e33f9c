// The stored conversations: reopen one, delete one (after a confirmation), or start a new one. On a phone the
// list folds away behind a button.
import { useState } from "react";
import { ApiError, type Schemas } from "../../api/client";
import { ErrorNote } from "../../components/ErrorNote";
import { formatLineTime } from "../history";

type Session = Schemas["SessionOut"];

export function Conversations(props: {
  sessions: Session[] | null;
  loading: boolean;
  error: ApiError | null;
  currentId: string | null;
  onOpen: (id: string) => void;
  onNew: () => void;
  onDelete: (id: string) => Promise<void>;
  onRetry: () => void;
}) {
  const [open, setOpen] = useState(false);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [deleteError, setDeleteError] = useState<ApiError | null>(null);
  const sessions = props.sessions ?? [];

  const remove = async (id: string) => {
    setDeleting(id);
    setDeleteError(null);
    try {
      await props.onDelete(id);
      setConfirming(null);
    } catch (err) {
      setDeleteError(err instanceof ApiError ? err : new ApiError("client-error", String(err), 0));
    } finally {
      setDeleting(null);
    }
  };

  return (
    <aside className={`talk-conversations card${open ? " open" : ""}`} aria-label="Conversations">
      <div className="talk-conversations-head">
        <button
          type="button"
          className="talk-conversations-toggle"
          aria-expanded={open}
          aria-controls="talk-conversation-list"
          onClick={() => setOpen(!open)}
        >
          Conversations{sessions.length ? ` (${sessions.length})` : ""}
          <span aria-hidden="true">{open ? "▴" : "▾"}</span>
        </button>
        <h2 className="talk-conversations-title">Conversations</h2>
        <button type="button" onClick={props.onNew}>
          New conversation
        </button>
      </div>
      <div id="talk-conversation-list" className="talk-conversation-body">
        <ErrorNote error={props.error} what="The conversations could not be loaded" />
        {props.error && (
          <button type="button" onClick={props.onRetry}>
            Retry
          </button>
        )}
        <ErrorNote error={deleteError} what="Not deleted" />
        {props.loading && !props.sessions && <p className="muted small">Loading…</p>}
        {!props.loading && !props.error && sessions.length === 0 && (
          <p className="muted small">No conversations yet. What you say is kept here.</p>
        )}
        <ul className="talk-conversation-list">
          {sessions.map((session) => {
            const current = session.session_id === props.currentId;
            const title = session.title.trim() || "Untitled conversation";
            return (
              <li key={session.session_id} className={current ? "current" : ""}>
                {confirming === session.session_id ? (
                  <div className="talk-confirm" role="group" aria-label={`Delete ${title}?`}>
                    <span className="small">Delete “{title}” and everything said in it?</span>
                    <div className="row">
                      <button
                        type="button"
                        className="danger"
                        disabled={deleting === session.session_id}
                        onClick={() => void remove(session.session_id)}
                      >
                        {deleting === session.session_id ? "Deleting…" : "Delete"}
                      </button>
                      <button type="button" onClick={() => setConfirming(null)}>
                        Keep
                      </button>
                    </div>
                  </div>
                ) : (
                  <div className="talk-conversation">
                    <button
                      type="button"
                      className="talk-conversation-open"
                      title={title}
                      aria-current={current ? "true" : undefined}
                      onClick={() => {
                        props.onOpen(session.session_id);
                        setOpen(false);
                      }}
                    >
                      <span className="talk-conversation-title">{title}</span>
                      <span className="muted small">
                        {session.turns} {session.turns === 1 ? "turn" : "turns"} · {formatLineTime(session.updated_at)}
                      </span>
                    </button>
                    <button
                      type="button"
                      className="talk-conversation-delete"
                      aria-label={`Delete ${title}`}
                      title="Delete"
                      onClick={() => setConfirming(session.session_id)}
                    >
                      <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
                        <path d="M5 7h14M10 7V4h4v3M7 7l1 13h8l1-13" stroke="currentColor" strokeWidth="2" fill="none" strokeLinejoin="round" />
                      </svg>
                    </button>
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      </div>
    </aside>
  );
}
