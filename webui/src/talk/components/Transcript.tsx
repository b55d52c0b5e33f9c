// What the appliance hears while the user speaks (committed words, then the still-changing tail), and the
// latest final transcript.
export function Transcript(props: { partial: { committed: string; unstable: string } | null; final: string }) {
  const { partial } = props;
  return (
    <div className="talk-transcript">
      <div className="talk-heard">
        <span className="talk-label">Hearing</span>
        <p data-testid="partial" className="talk-partial">
          {partial ? (
            <>
              {partial.committed}
              {partial.committed && partial.unstable ? " " : ""}
              <span className="talk-unstable">{partial.unstable}</span>
            </>
          ) : null}
        </p>
      </div>
      <div className="talk-heard">
        <span className="talk-label">You said</span>
        <p data-testid="final" className="talk-final">
          {props.final}
        </p>
      </div>
    </div>
  );
}
