import { describe, expect, it } from "vitest";
import { faceRect, lipsCentre, lipsPoints, viewBox } from "./overlay";

describe("lipsPoints", () => {
  it("writes the contour as SVG points, rounded to a tenth of a pixel", () => {
    expect(lipsPoints([[10, 20], [15.26, 18.04], [20, 20], [15, 23]])).toBe("10,20 15.3,18 20,20 15,23");
  });

  it("draws nothing from fewer than three usable points", () => {
    expect(lipsPoints([])).toBe("");
    expect(lipsPoints([[1, 2], [3, 4]])).toBe("");
    expect(lipsPoints([[1, 2], [3, Number.NaN], [5, 6], [7]])).toBe("");
  });
});

describe("faceRect", () => {
  it("keeps a box inside the image", () => {
    expect(faceRect([100, 80, 200, 240], 512, 512)).toEqual({ x: 100, y: 80, width: 200, height: 240 });
  });

  it("clips a box that overhangs the image", () => {
    expect(faceRect([-10, 400, 100, 200], 512, 512)).toEqual({ x: 0, y: 400, width: 90, height: 112 });
  });

  it("refuses a box without area or of the wrong shape", () => {
    expect(faceRect([0, 0, 0, 50], 512, 512)).toBeNull();
    expect(faceRect([600, 0, 50, 50], 512, 512)).toBeNull();
    expect(faceRect([1, 2, 3], 512, 512)).toBeNull();
  });
});

describe("viewBox and centre", () => {
  it("uses the prepared image's pixels", () => {
    expect(viewBox({ width: 768, height: 768 })).toBe("0 0 768 768");
  });

  it("finds the middle of the mouth", () => {
    expect(lipsCentre([[0, 0], [10, 0], [10, 4], [0, 4]])).toEqual({ x: 5, y: 2 });
    expect(lipsCentre([])).toBeNull();
  });
});
