import { describe, expect, it } from "vitest";
import { formatSeconds, formatTrace, pushLatency } from "./latency";

describe("formatTrace", () => {
  it("names each stage in order with one decimal", () => {
    expect(formatTrace({ first_frame: 1.62, final: 0.94, first_audio: 1.58, first_token: 1.1, end: 3.229 })).toBe(
      "heard 0.9 s · first word 1.1 s · voice 1.6 s · face 1.6 s · done 3.2 s",
    );
  });

  it("leaves out what the trace lacks (an interrupted turn) and unknown stages", () => {
    expect(formatTrace({ final: 0.4, interrupted: 2.1 })).toBe("heard 0.4 s");
    expect(formatTrace({})).toBe("");
  });

  it("rounds long times to whole seconds and shows a dash for nonsense", () => {
    expect(formatSeconds(12.6)).toBe("13 s");
    expect(formatSeconds(-1)).toBe("–");
    expect(formatSeconds(Number.NaN)).toBe("–");
  });
});

describe("pushLatency", () => {
  it("keeps the newest few, newest first, and replaces a turn reported again", () => {
    let list = [1, 2, 3, 4, 5].reduce((acc, turn) => pushLatency(acc, { turn, status: "done", trace: { final: turn } }, 4), [] as ReturnType<typeof pushLatency>);
    expect(list.map((item) => item.turn)).toEqual([5, 4, 3, 2]);
    list = pushLatency(list, { turn: 4, status: "interrupted", trace: { final: 9 } }, 4);
    expect(list.map((item) => [item.turn, item.status])).toEqual([
      [4, "interrupted"],
      [5, "done"],
      [3, "done"],
      [2, "done"],
    ]);
  });
});
