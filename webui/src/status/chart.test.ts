import { describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { MARGIN, chartKeys, chartLayout, isSecondsKey, medians, niceTicks, stageLabel, turnMark } from "./chart";

type Turn = Schemas["TurnStatusOut"];
let serial = 0;
const turn = (stages: Record<string, number>, over: Partial<Turn> = {}): Turn => ({
  turn_id: `t${++serial}`,
  session_id: "s",
  started_at: 1_700_000_000 + serial,
  status: "done",
  error_code: "",
  stages,
  ...over,
});

const voice = (scale = 1) =>
  turn({ final: 0.2 * scale, first_token: 0.5 * scale, first_audio: 0.8 * scale, first_frame: 0.9 * scale, end: 3 * scale });
const text = () => turn({ queue_s: 0, first_token_s: 0.4, total_s: 1.6, prompt_tokens: 120, generated_tokens: 40 });

describe("niceTicks", () => {
  it("steps at round numbers up to the first tick at or above the max", () => {
    expect(niceTicks(3)).toEqual({ top: 3, step: 1, ticks: [0, 1, 2, 3] });
    expect(niceTicks(3.2)).toEqual({ top: 4, step: 1, ticks: [0, 1, 2, 3, 4] });
    expect(niceTicks(0.9)).toEqual({ top: 1, step: 0.25, ticks: [0, 0.25, 0.5, 0.75, 1] });
    expect(niceTicks(17)).toEqual({ top: 20, step: 5, ticks: [0, 5, 10, 15, 20] });
    expect(niceTicks(7.5).ticks).toEqual([0, 2, 4, 6, 8]);
  });

  it("has a scale even with nothing to show", () => {
    expect(niceTicks(0).top).toBe(1);
    expect(niceTicks(Number.NaN).top).toBe(1);
  });

  it("never leaves the max above the top", () => {
    for (const max of [0.013, 0.1, 0.37, 1, 1.01, 2.5, 9.99, 42, 123.4]) {
      const { top, ticks } = niceTicks(max);
      expect(top).toBeGreaterThanOrEqual(max);
      expect(ticks.length).toBeLessThanOrEqual(7);
    }
  });
});

describe("chartKeys", () => {
  it("keeps the voice stages in their order, then the text turns' seconds", () => {
    const turns = [text(), turn({ end: 2, final: 0.1 }), turn({ first_audio: 1 })];
    expect(chartKeys(turns)).toEqual(["final", "first_audio", "end", "queue_s", "first_token_s", "total_s"]);
  });

  it("leaves token counts off a seconds axis", () => {
    expect(isSecondsKey("prompt_tokens")).toBe(false);
    expect(isSecondsKey("total_s")).toBe(true);
    expect(chartKeys([text()])).not.toContain("prompt_tokens");
  });

  it("labels stages for people", () => {
    expect(stageLabel("first_audio")).toBe("first audio");
    expect(stageLabel("decode_s")).toBe("decode");
  });
});

describe("turnMark", () => {
  it("marks failed and interrupted turns with their code", () => {
    expect(turnMark(turn({}, { status: "failed", error_code: "llm-unreachable" }))).toEqual({
      code: "llm-unreachable",
      failed: true,
    });
    expect(turnMark(turn({}, { status: "failed" }))).toEqual({ code: "failed", failed: true });
    expect(turnMark(turn({}, { error_code: "interrupted" }))).toEqual({ code: "interrupted", failed: false });
    expect(turnMark(voice())).toBeNull();
  });
});

describe("chartLayout", () => {
  it("puts the oldest turn on the left and scales bars to the top tick", () => {
    const newest = voice(1); // end 3 s
    const oldest = voice(0.5); // end 1.5 s
    const layout = chartLayout([newest, oldest], { width: 400, height: 200 });
    expect(layout.max).toBe(3);
    expect(layout.top).toBe(3);
    expect(layout.groups.map((g) => g.turn)).toEqual([oldest, newest]);

    const { plot } = layout;
    expect(plot).toEqual({ left: MARGIN.left, top: MARGIN.top, right: 400 - MARGIN.right, bottom: 200 - MARGIN.bottom });
    const end = layout.groups[1].bars.find((b) => b.key === "end")!;
    expect(end.y).toBeCloseTo(plot.top); // the max reaches the top
    expect(end.height).toBeCloseTo(plot.bottom - plot.top);
    const halfEnd = layout.groups[0].bars.find((b) => b.key === "end")!;
    expect(halfEnd.height).toBeCloseTo((plot.bottom - plot.top) / 2);
    expect(layout.ticks[0]).toEqual({ value: 0, y: plot.bottom });
    expect(layout.ticks.at(-1)!.y).toBeCloseTo(plot.top);
  });

  it("lays bars side by side inside their group, without overlap", () => {
    const layout = chartLayout([voice(), text()], { width: 400, height: 200 });
    for (const group of layout.groups) {
      for (const [i, bar] of group.bars.entries()) {
        expect(bar.x).toBeGreaterThanOrEqual(group.x);
        expect(bar.x + bar.width).toBeLessThanOrEqual(group.x + group.width + 1e-9);
        if (i > 0) expect(bar.x).toBeCloseTo(group.bars[i - 1].x + group.bars[i - 1].width);
      }
      expect(group.x + group.width).toBeLessThanOrEqual(layout.plot.right + 1e-9);
    }
    // The text turn (oldest, on the left) has only its own three stages.
    expect(layout.groups[0].bars.map((b) => b.key)).toEqual(["queue_s", "first_token_s", "total_s"]);
    expect(layout.groups[1].bars).toHaveLength(5);
  });

  it("grows wider than offered when many turns need room", () => {
    const turns = Array.from({ length: 30 }, () => voice());
    const layout = chartLayout(turns, { width: 320, height: 200, minGroupWidth: 20 });
    expect(layout.width).toBe(MARGIN.left + 30 * 20 + MARGIN.right);
    expect(layout.groups[29].x + layout.groups[29].width).toBeCloseTo(layout.plot.right);
  });

  it("labels a few groups, always the newest", () => {
    const layout = chartLayout(Array.from({ length: 30 }, () => voice()), { width: 900, height: 200 });
    const labelled = layout.groups.filter((g) => g.showLabel);
    expect(labelled.length).toBeLessThanOrEqual(6);
    expect(layout.groups[29].showLabel).toBe(true);
  });

  it("draws an empty chart for turns without timings", () => {
    const layout = chartLayout([turn({}, { status: "running" })], { width: 300, height: 160 });
    expect(layout.keys).toEqual([]);
    expect(layout.groups[0].bars).toEqual([]);
    expect(layout.top).toBe(1);
  });
});

describe("medians", () => {
  it("takes the middle value of each stage over the turns that have it", () => {
    const turns = [turn({ end: 1 }), turn({ end: 3 }), turn({ end: 2, final: 0.4 }), turn({ end: 10, final: 0.2 })];
    const result = medians(turns, ["final", "end", "first_audio"]);
    expect(result.map((m) => m.key)).toEqual(["final", "end"]);
    expect(result[0].value).toBeCloseTo(0.3);
    expect(result[1].value).toBe(2.5);
  });
});
