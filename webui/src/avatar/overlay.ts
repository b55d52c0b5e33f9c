// The face and lips drawn over a prepared portrait, in the image's own pixels (an SVG viewBox of its size).
import type { Avatar } from "./api";

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

// An SVG points string for the outer lip contour; "" when there is nothing to draw.
export function lipsPoints(lips: readonly (readonly number[])[]): string {
  const usable = lips.filter((point) => point.length >= 2 && Number.isFinite(point[0]) && Number.isFinite(point[1]));
  if (usable.length < 3) return ""; // fewer than three points make no outline
  return usable.map(([x, y]) => `${round(x)},${round(y)}`).join(" ");
}

// The face box as an SVG rect, clipped to the image; null when it has no area.
export function faceRect(box: readonly number[], width: number, height: number): Rect | null {
  if (box.length !== 4 || box.some((value) => !Number.isFinite(value))) return null;
  const [x, y, w, h] = box;
  const left = Math.max(0, x);
  const top = Math.max(0, y);
  const right = Math.min(width, x + w);
  const bottom = Math.min(height, y + h);
  if (right <= left || bottom <= top) return null;
  return { x: left, y: top, width: right - left, height: bottom - top };
}

export function viewBox(avatar: Pick<Avatar, "width" | "height">): string {
  return `0 0 ${avatar.width} ${avatar.height}`;
}

// The mouth's middle, for a label: the mean of the lip points.
export function lipsCentre(lips: readonly (readonly number[])[]): { x: number; y: number } | null {
  if (lips.length === 0) return null;
  const sum = lips.reduce((acc, [x, y]) => ({ x: acc.x + x, y: acc.y + y }), { x: 0, y: 0 });
  return { x: round(sum.x / lips.length), y: round(sum.y / lips.length) };
}
