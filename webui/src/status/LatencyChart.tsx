// Recent turns' stage latencies: an SVG bar chart (one group of bars per turn, oldest left), a legend, the
// medians, and the same numbers as a table for screen readers and anyone who prefers one.
import { useEffect, useId, useRef, useState } from "react";
import type { Schemas } from "../api/client";
import { type ChartLayout, type Group, MARGIN, chartLayout, medians, stageColor, stageLabel } from "./chart";
import { formatClock, formatHourMinute, formatLatency } from "./format";

type Turn = Schemas["TurnStatusOut"];
const HEIGHT = 220;

// The width of an element, following resizes (a fixed guess until it is measured, or where ResizeObserver is
// missing). The element comes from a callback ref, so one that appears later (after the first turns) counts.
function useWidth(element: HTMLElement | null, fallback: number): number {
  const [width, setWidth] = useState(fallback);
  useEffect(() => {
    if (!element) return;
    if (element.clientWidth) setWidth(element.clientWidth);
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.floor(entry.contentRect.width)));
    observer.observe(element);
    return () => observer.disconnect();
  }, [element]);
  return width;
}

// A time label under its group, kept inside the chart at both ends.
function labelPlace(group: Group, index: number, count: number): { x: number; textAnchor: "start" | "middle" | "end" } {
  if (count > 1 && index === count - 1) return { x: group.x + group.width, textAnchor: "end" };
  if (count > 1 && index === 0) return { x: group.x, textAnchor: "start" };
  return { x: group.x + group.width / 2, textAnchor: "middle" };
}

function tickLabel(value: number): string {
  return value === 0 ? "0" : formatLatency(value);
}

function describe(turns: Turn[], layout: ChartLayout): string {
  const failed = turns.filter((t) => t.status === "failed").length;
  const parts = [
    `${turns.length} recent turn${turns.length === 1 ? "" : "s"}, oldest on the left.`,
    layout.keys.length ? `Stages: ${layout.keys.map(stageLabel).join(", ")}.` : "No stage timings yet.",
    layout.max > 0 ? `Longest: ${formatLatency(layout.max)}.` : "",
    failed ? `${failed} failed.` : "",
  ];
  return parts.filter(Boolean).join(" ");
}

function Chart({
  turns,
  layout,
  titleId,
  descId,
  scrollRef,
}: {
  turns: Turn[];
  layout: ChartLayout;
  titleId: string;
  descId: string;
  scrollRef: (element: HTMLDivElement | null) => void;
}) {
  const { plot } = layout;
  const colorOf = (key: string) => stageColor(key, layout.keys.indexOf(key));
  const plotWidth = layout.width - plot.left;
  return (
    <div className="chart-frame">
      {/* The value axis stays put while the bars scroll sideways on a narrow screen. */}
      <svg className="latency-chart chart-axis-labels" width={plot.left} height={layout.height} aria-hidden="true">
        {layout.ticks.map((tick) => (
          <text key={tick.value} x={plot.left - 6} y={tick.y} dy="0.32em" textAnchor="end">
            {tickLabel(tick.value)}
          </text>
        ))}
      </svg>
      <div className="chart-scroll" ref={scrollRef}>
        <svg
          className="latency-chart"
          width={plotWidth}
          height={layout.height}
          viewBox={`${plot.left} 0 ${plotWidth} ${layout.height}`}
          role="img"
          aria-labelledby={`${titleId} ${descId}`}
        >
          <title id={titleId}>Stage latencies of recent turns</title>
          <desc id={descId}>{describe(turns, layout)}</desc>
          {layout.ticks.map((tick) => (
            <line key={tick.value} className="chart-tick" x1={plot.left} x2={plot.right} y1={tick.y} y2={tick.y} />
          ))}
          {layout.groups.map((group, i) => (
            <g key={group.turn.turn_id}>
              <title>
                {`${formatClock(group.turn.started_at)} · ${group.turn.status}` +
                  (group.mark ? ` (${group.mark.code})` : "") +
                  group.bars.map((b) => `\n${stageLabel(b.key)}: ${formatLatency(b.value)}`).join("")}
              </title>
              {/* A transparent hit area so the group's tooltip shows over its whole column. */}
              <rect x={group.x} y={plot.top} width={group.width} height={plot.bottom - plot.top} fill="transparent" />
              {group.bars.map((bar) => (
                <rect
                  key={bar.key}
                  x={bar.x}
                  y={bar.y}
                  width={Math.max(bar.width - 1, 1)}
                  height={Math.max(bar.height, bar.value > 0 ? 1 : 0)}
                  fill={colorOf(bar.key)}
                />
              ))}
              {group.mark && (
                <text
                  className={group.mark.failed ? "chart-mark failed" : "chart-mark"}
                  x={group.x + group.width / 2}
                  y={plot.top - 5}
                  textAnchor="middle"
                >
                  {group.mark.failed ? "✕" : "!"}
                </text>
              )}
              {group.showLabel && (
                <text className="chart-label" y={plot.bottom + 16} {...labelPlace(group, i, layout.groups.length)}>
                  {formatHourMinute(group.turn.started_at)}
                </text>
              )}
            </g>
          ))}
          <line className="chart-axis" x1={plot.left} x2={plot.right} y1={plot.bottom} y2={plot.bottom} />
        </svg>
      </div>
    </div>
  );
}

function TurnsTable({ turns, keys }: { turns: Turn[]; keys: string[] }) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Started</th>
            <th scope="col">Outcome</th>
            {keys.map((key) => (
              <th scope="col" key={key}>
                {stageLabel(key)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {turns.map((turn) => (
            <tr key={turn.turn_id}>
              <td>{formatClock(turn.started_at)}</td>
              <td>
                {turn.status}
                {turn.error_code && (
                  <>
                    {" "}
                    <code>{turn.error_code}</code>
                  </>
                )}
              </td>
              {keys.map((key) => (
                <td key={key}>{Number.isFinite(turn.stages[key]) ? formatLatency(turn.stages[key]) : "–"}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// Where the chart is wider than the screen (a phone), start scrolled to the newest turns, on the right.
function useScrolledToEnd(element: HTMLElement | null, contentWidth: number) {
  const done = useRef(false);
  useEffect(() => {
    if (!element || done.current || element.scrollWidth <= element.clientWidth) return;
    element.scrollLeft = element.scrollWidth;
    done.current = true;
  }, [element, contentWidth]);
}

export function LatencyChart({ turns }: { turns: Turn[] }) {
  const [element, setElement] = useState<HTMLDivElement | null>(null);
  const width = useWidth(element, 640);
  const titleId = useId();
  const descId = useId();
  // `width` is the scroll area's, beside the fixed axis: the layout's width counts the axis too.
  const layout = chartLayout(turns, { width: width + MARGIN.left, height: HEIGHT });
  useScrolledToEnd(element, layout.width);
  if (!turns.length) return <p className="muted">No turns yet: talk to Mynah and each turn's timings appear here.</p>;
  const typical = medians(turns, layout.keys);
  const failed = turns.filter((t) => t.status === "failed");
  return (
    <div className="stack">
      <ul className="chart-legend small" aria-label="Legend">
        {layout.keys.map((key) => (
          <li key={key}>
            <span className="swatch" style={{ background: stageColor(key, layout.keys.indexOf(key)) }} aria-hidden="true" />
            {stageLabel(key)}
          </li>
        ))}
        <li>
          <span className="chart-mark failed" aria-hidden="true">
            ✕
          </span>{" "}
          failed
        </li>
        <li>
          <span className="chart-mark" aria-hidden="true">
            !
          </span>{" "}
          interrupted
        </li>
      </ul>
      <Chart turns={turns} layout={layout} titleId={titleId} descId={descId} scrollRef={setElement} />
      <p className="muted small" style={{ margin: 0 }}>
        Voice turns count from the end of your speech; text turns from the request. Hover over a column for its numbers, or open the table below.
      </p>
      {typical.length > 0 && (
        <p className="small" style={{ margin: 0 }}>
          Median: {typical.map((m) => `${stageLabel(m.key)} ${formatLatency(m.value)}`).join(" · ")}
        </p>
      )}
      {failed.length > 0 && (
        <p className="small" style={{ margin: 0 }}>
          Failed:{" "}
          {failed.map((t, i) => (
            <span key={t.turn_id}>
              {i > 0 && ", "}
              {formatClock(t.started_at)} <code>{t.error_code || "failed"}</code>
            </span>
          ))}
        </p>
      )}
      <details>
        <summary>Show as a table</summary>
        <TurnsTable turns={turns} keys={layout.keys} />
      </details>
    </div>
  );
}
