// The conversation: each line with its time; the answer grows as it is written; an interrupted answer keeps
// only what was heard, a failed one shows its code.
import { useEffect, useRef } from "react";
import type { ApiError } from "../../api/client";
import { ErrorNote } from "../../components/ErrorNote";
import { formatLineTime, type Line } from "../history";

export function History(props: { lines: Line[]; loading: boolean; error: ApiError | null; onRetry: () => void }) {
  const { lines } = props;
  const list = useRef<HTMLOListElement>(null);
  const pinned = useRef(true); // follow the newest line unless the user scrolled up

  useEffect(() => {
    const element = list.current;
    if (element && pinned.current) element.scrollTop = element.scrollHeight;
  }, [lines]);

  return (
    <div className="talk-history-wrap">
      {props.error && (
        <div className="row">
          <ErrorNote error={props.error} what="The conversation could not be loaded" />
          <button type="button" onClick={props.onRetry}>
            Retry
          </button>
        </div>
      )}
      <ol
        ref={list}
        className="talk-history"
        data-testid="history"
        aria-label="Conversation"
        aria-busy={props.loading}
        tabIndex={0}
        onScroll={(event) => {
          const element = event.currentTarget;
          pinned.current = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
        }}
      >
        {props.loading && lines.length === 0 && <li className="muted talk-history-empty">Loading the conversation…</li>}
        {!props.loading && lines.length === 0 && !props.error && (
          <li className="muted talk-history-empty">Nothing said yet. Start talking, or type a message below.</li>
        )}
        {lines.map((line) => (
          <li key={line.key} data-testid={`line-${line.role}`} className={`talk-line ${line.role} ${line.status}`}>
            <div className="talk-line-head">
              <span className="talk-who">{line.role === "user" ? "You" : "Avatar"}</span>
              <time dateTime={new Date(line.at * 1000).toISOString()}>{formatLineTime(line.at)}</time>
              {line.status === "interrupted" && <span className="badge warn">interrupted</span>}
              {line.status === "failed" && (
                <span className="badge bad">
                  failed <code>{line.code}</code>
                </span>
              )}
              {line.status === "pending" && <span className="badge">sending…</span>}
            </div>
            <p className="talk-text">
              {line.text ||
                (line.status === "streaming" ? (
                  <span className="muted">…</span>
                ) : line.status === "interrupted" ? (
                  <span className="muted">(interrupted before any of it was heard)</span>
                ) : null)}
              {line.status === "streaming" && line.text && <span className="talk-cursor" aria-hidden="true" />}
            </p>
          </li>
        ))}
      </ol>
    </div>
  );
}
