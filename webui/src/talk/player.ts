// The WebSocket transport's player: each turn's speech scheduled on a 48 kHz AudioContext by its sample index
// (after a ~60 ms jitter buffer), the face frame whose index covers the playing sample drawn on a canvas, the
// idle loop between answers, `played` reports while a reply plays, and an interrupted turn cut at once.
import { FRAME_SAMPLES, SAMPLE_RATE_OUT, pcm16ToFloat } from "./protocol";

export const START_DELAY_S = 0.06; // the jitter buffer before a turn's first chunk plays
export const LATE_MARGIN_S = 0.02; // a chunk that arrives after its moment plays this soon, and the rest with it
export const REPORT_EVERY_S = 0.1;
export const END_GRACE_S = 0.05; // a turn whose last sound played this long ago has stopped (unless more comes)

// --- the scheduling math (pure) ---------------------------------------------------------------------------

// A turn's timeline on the context clock: sample s of the turn plays at base + s / rate; `end` is the sample
// after the last one scheduled.
export interface Timeline {
  base: number;
  end: number;
}

// Where a chunk of `samples` at sample `index` plays. The first chunk of a turn plays START_DELAY_S after it
// arrives; a later chunk that arrives too late moves the whole timeline (its start and what follows) later.
export function placeChunk(
  timeline: Timeline | null,
  index: number,
  samples: number,
  now: number,
  rate = SAMPLE_RATE_OUT,
  delay = START_DELAY_S,
): { timeline: Timeline; startAt: number } {
  let base = timeline ? timeline.base : now + delay - index / rate;
  let startAt = base + index / rate;
  if (startAt < now + LATE_MARGIN_S / 2) {
    const shift = now + LATE_MARGIN_S - startAt;
    base += shift;
    startAt += shift;
  }
  return { timeline: { base, end: Math.max(timeline?.end ?? 0, index + samples) }, startAt };
}

// How many of the turn's samples have been heard at `now` (the context clock less the output latency).
export function playedSamples(timeline: Timeline, now: number, rate = SAMPLE_RATE_OUT): number {
  const played = Math.floor((now - timeline.base) * rate + 1e-6); // 1e-6: a whole sample is not lost to rounding
  return Math.max(0, Math.min(timeline.end, played));
}

export function endsAt(timeline: Timeline, rate = SAMPLE_RATE_OUT): number {
  return timeline.base + timeline.end / rate;
}

// The face frame to show at sample `position`: the latest at or before it (the one covering it, or the last
// one if the covering frame never came); the frames before it have passed and are dropped.
export function chooseFrame(indices: number[], position: number): { show: number | null; drop: number[] } {
  const sorted = [...indices].sort((a, b) => a - b);
  let show: number | null = null;
  for (const index of sorted) {
    if (index <= position) show = index;
    else break;
  }
  if (show === null) return { show: null, drop: [] };
  return { show, drop: sorted.filter((index) => index < show!) };
}

// Whether a frame's moment is over at `position` (its 1600 samples have played).
export function framePassed(index: number, position: number): boolean {
  return index + FRAME_SAMPLES <= position;
}

// --- the player -------------------------------------------------------------------------------------------

export interface PlayerHooks {
  onPlayback(turn: number, playing: boolean): void;
  onPlayed(turn: number, samples: number): void;
}

interface TurnPlay {
  timeline: Timeline | null;
  sources: Set<AudioBufferSourceNode>;
  frames: Map<number, ImageBitmap>;
  started: boolean;
  lastReport: number;
  touched: number;
}

export class WsPlayer {
  private readonly ctx: AudioContext;
  private readonly out: GainNode;
  private readonly turns = new Map<number, TurnPlay>();
  private readonly stopped = new Set<number>();
  private idle: ImageBitmap | null = null;
  private idleIndex = -1;
  private drawn: ImageBitmap | null = null;
  private canvas: HTMLCanvasElement | null = null;
  private timer = 0;
  private raf = 0;
  private closed = false;

  // `ctx`: a context made (and resumed) in the click that started the call, as strict browsers want.
  constructor(
    private readonly hooks: PlayerHooks,
    ctx?: AudioContext,
  ) {
    this.ctx = ctx ?? new AudioContext({ sampleRate: SAMPLE_RATE_OUT, latencyHint: "interactive" });
    this.out = this.ctx.createGain();
    this.out.connect(this.ctx.destination);
    this.timer = window.setInterval(() => this.tick(), 50);
    this.raf = requestAnimationFrame(() => this.draw());
  }

  attach(canvas: HTMLCanvasElement | null): void {
    this.canvas = canvas;
    this.drawn = null;
  }

  // Rejects when the browser keeps the sound off until a click (the page then asks for one).
  async resume(): Promise<void> {
    if (this.ctx.state === "running") return;
    await Promise.race([this.ctx.resume(), new Promise((resolve) => window.setTimeout(resolve, 800))]);
    if ((this.ctx.state as string) !== "running") throw new Error("the browser keeps the sound off until a click");
  }

  private heardNow(): number {
    return this.ctx.currentTime - (this.ctx.outputLatency || 0);
  }

  private turn(turn: number): TurnPlay {
    let found = this.turns.get(turn);
    if (!found) {
      found = { timeline: null, sources: new Set(), frames: new Map(), started: false, lastReport: 0, touched: this.ctx.currentTime };
      this.turns.set(turn, found);
    }
    found.touched = this.ctx.currentTime;
    return found;
  }

  speech(turn: number, index: number, pcm: Uint8Array): void {
    if (this.closed || this.stopped.has(turn)) return;
    const samples = pcm16ToFloat(pcm);
    if (!samples.length) return;
    const play = this.turn(turn);
    const { timeline, startAt } = placeChunk(play.timeline, index, samples.length, this.ctx.currentTime);
    play.timeline = timeline;
    const buffer = this.ctx.createBuffer(1, samples.length, SAMPLE_RATE_OUT);
    buffer.copyToChannel(samples, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.out);
    source.onended = () => play.sources.delete(source);
    play.sources.add(source);
    source.start(startAt);
    if (!play.started) {
      play.started = true;
      this.hooks.onPlayback(turn, true);
    }
  }

  face(turn: number, index: number, jpeg: Uint8Array): void {
    if (this.closed || this.stopped.has(turn)) return;
    const play = this.turn(turn);
    void decode(jpeg).then((bitmap) => {
      if (!bitmap) return;
      const current = this.turns.get(turn);
      const position = current?.timeline ? playedSamples(current.timeline, this.heardNow()) : -1;
      if (this.closed || current !== play || (position > 0 && framePassed(index, position))) {
        bitmap.close(); // interrupted, over, or too late to show
        return;
      }
      play.frames.get(index)?.close();
      play.frames.set(index, bitmap);
    });
  }

  idleFrame(index: number, jpeg: Uint8Array): void {
    if (this.closed) return;
    void decode(jpeg).then((bitmap) => {
      if (!bitmap) return;
      if (this.closed || index < this.idleIndex) {
        bitmap.close();
        return;
      }
      if (this.idle && this.idle !== this.drawn) this.idle.close();
      this.idle = bitmap;
      this.idleIndex = index;
    });
  }

  // Barge-in: this turn's sound stops now, its frames go, and anything of it still arriving is ignored.
  interrupt(turn: number): void {
    this.stopped.add(turn);
    const play = this.turns.get(turn);
    if (!play) return;
    this.turns.delete(turn);
    for (const source of play.sources) {
      try {
        source.stop();
      } catch {
        // not started yet or already stopped
      }
    }
    this.dropFrames(play);
    if (play.started) this.hooks.onPlayback(turn, false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    window.clearInterval(this.timer);
    cancelAnimationFrame(this.raf);
    for (const turn of [...this.turns.keys()]) this.interrupt(turn);
    this.idle?.close();
    void this.ctx.close().catch(() => undefined);
  }

  private dropFrames(play: TurnPlay): void {
    for (const bitmap of play.frames.values()) if (bitmap !== this.drawn) bitmap.close();
    play.frames.clear();
  }

  // Every 50 ms: playback reports, and the end of a turn's sound.
  private tick(): void {
    const now = this.heardNow();
    for (const [turn, play] of this.turns) {
      if (!play.timeline) {
        if (this.ctx.currentTime - play.touched > 5) {
          this.dropFrames(play); // frames whose speech never came
          this.turns.delete(turn);
        }
        continue;
      }
      const played = playedSamples(play.timeline, now);
      if (now > endsAt(play.timeline) + END_GRACE_S && play.sources.size === 0) {
        this.hooks.onPlayed(turn, play.timeline.end); // heard to the end
        this.dropFrames(play);
        this.turns.delete(turn);
        if (play.started) this.hooks.onPlayback(turn, false);
        continue;
      }
      if (played > 0 && now - play.lastReport >= REPORT_EVERY_S) {
        play.lastReport = now;
        this.hooks.onPlayed(turn, played);
      }
    }
  }

  // The picture for this moment: the playing turn's face, else the idle loop.
  private draw(): void {
    if (this.closed) return;
    this.raf = requestAnimationFrame(() => this.draw());
    const now = this.heardNow();
    let picture: ImageBitmap | null = null;
    for (const play of this.turns.values()) {
      if (!play.timeline || now < play.timeline.base) continue;
      const position = playedSamples(play.timeline, now);
      const { show, drop } = chooseFrame([...play.frames.keys()], position);
      for (const index of drop) {
        const bitmap = play.frames.get(index);
        play.frames.delete(index);
        if (bitmap && bitmap !== this.drawn) bitmap.close();
      }
      if (show !== null) picture = play.frames.get(show) ?? null;
      else if (this.drawn && !this.isIdle(this.drawn)) picture = this.drawn; // keep the last face until the next
    }
    picture ??= this.idle;
    if (!picture || picture === this.drawn || !this.canvas) return;
    const canvas = this.canvas;
    if (canvas.width !== picture.width || canvas.height !== picture.height) {
      canvas.width = picture.width;
      canvas.height = picture.height;
    }
    canvas.getContext("2d")?.drawImage(picture, 0, 0);
    const previous = this.drawn;
    this.drawn = picture;
    if (previous && previous !== this.idle && !this.isHeld(previous)) previous.close();
  }

  private isIdle(bitmap: ImageBitmap): boolean {
    return bitmap === this.idle;
  }

  private isHeld(bitmap: ImageBitmap): boolean {
    for (const play of this.turns.values()) for (const held of play.frames.values()) if (held === bitmap) return true;
    return false;
  }
}

async function decode(jpeg: Uint8Array): Promise<ImageBitmap | null> {
  try {
    return await createImageBitmap(new Blob([jpeg as BlobPart], { type: "image/jpeg" }));
  } catch {
    return null; // a broken frame is skipped
  }
}
