// How quickly the last few turns were answered, from the end of the user's speech.
import { STAGES, formatTrace, type TurnLatency } from "../latency";

const LEGEND = STAGES.map((stage) => `${stage.label}: ${stage.title}`).join("\n");

export function LatencyReadout({ turns }: { turns: TurnLatency[] }) {
  return (
    <details className="talk-latency" open>
      <summary>Response time</summary>
      <div data-testid="latency">
        {turns.length === 0 ? (
          <p className="muted small">How fast each answer came, counted from the end of your speech.</p>
        ) : (
          <ol className="talk-latency-list">
            {turns.map((turn, i) => (
              <li key={turn.turn} className={i === 0 ? "latest" : "muted"} title={LEGEND}>
                <span className="talk-latency-turn">Turn {turn.turn}</span> {formatTrace(turn.trace)}
                {turn.status !== "done" && <span className="badge warn">{turn.status}</span>}
              </li>
            ))}
          </ol>
        )}
      </div>
    </details>
  );
}
