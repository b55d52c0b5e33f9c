// When the microphone cannot be had: blocked by the browser (how to allow it), missing, or busy; and a retry.
import type { MicProblem } from "../mic";

export function MicProblemPanel(props: { problem: MicProblem; detail: string; onRetry: () => void }) {
  if (props.problem === "blocked") {
    return (
      <div className="card talk-mic-problem" data-testid="mic-blocked" role="alert">
        <h2>The microphone is blocked</h2>
        <p>This browser is not letting the page use your microphone, so the avatar cannot hear you.</p>
        <ol className="small">
          <li>
            Click the lock (or tune) icon at the left of the address bar, or open this site's settings.
          </li>
          <li>Set <strong>Microphone</strong> to <strong>Allow</strong>.</li>
          <li>Press <strong>Try again</strong> (some browsers want the page reloaded first).</li>
        </ol>
        <p className="muted small">You can still type messages below.</p>
        <button type="button" className="primary" onClick={props.onRetry}>
          Try again
        </button>
      </div>
    );
  }
  const text: Record<Exclude<MicProblem, "blocked">, { title: string; body: string }> = {
    missing: {
      title: "No microphone found",
      body: "This device has no microphone the browser can use. Plug one in (or pick one in the system's sound settings), then try again.",
    },
    busy: {
      title: "The microphone is busy",
      body: "Another program or tab is holding the microphone, or it failed to start. Close the other one, then try again.",
    },
    unsupported: {
      title: "No microphone here",
      body: "This browser does not give a microphone to this page. Use a current Chrome, Edge, Firefox or Safari, over HTTPS or on the appliance itself.",
    },
    other: {
      title: "The microphone could not be opened",
      body: "Something went wrong while opening the microphone.",
    },
  };
  const { title, body } = text[props.problem];
  return (
    <div className="card talk-mic-problem" data-testid="mic-problem" role="alert">
      <h2>{title}</h2>
      <p>{body}</p>
      {props.detail && <p className="muted small">The browser said: {props.detail}</p>}
      <button type="button" className="primary" onClick={props.onRetry}>
        Try again
      </button>
    </div>
  );
}
