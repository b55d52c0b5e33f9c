// The microphone: getUserMedia with the browser's echo cancellation, muting (track.enabled: WebRTC sends
// silence, the WebSocket capture zeros), a level and a waveform (AnalyserNode), and for the WebSocket
// 16 kHz mono PCM16 chunks from an AudioWorklet built from a string (a Blob URL: Vite needs nothing special).
import { SAMPLE_RATE_IN } from "./protocol";

export const CHUNK_SAMPLES = 640; // 40 ms at 16 kHz

export type MicProblem = "blocked" | "missing" | "busy" | "unsupported" | "other";

export function classifyMicError(err: unknown): MicProblem {
  const name = err instanceof Error || (typeof err === "object" && err !== null) ? String((err as { name?: unknown }).name) : "";
  switch (name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return "blocked";
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return "missing";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "busy";
    case "TypeError":
      return "unsupported";
    default:
      return "other";
  }
}

export class MicError extends Error {
  constructor(
    readonly problem: MicProblem,
    message: string,
  ) {
    super(message);
    this.name = "MicError";
  }
}

// Float samples at `inRate` in, 16-bit chunks of `chunk` samples at `outRate` out: each output sample is the
// mean of the input samples of its span (a box filter against aliasing). Self-contained on purpose: its
// source text is also the AudioWorklet's (see WORKLET below), so it may use nothing from outside itself.
export function createPcm16Chunker(inRate: number, outRate: number, chunk: number): (input: Float32Array) => Int16Array[] {
  const step = inRate / outRate;
  let out = new Int16Array(chunk);
  let filled = 0;
  let sum = 0;
  let count = 0;
  let consumed = 0;
  let next = step;
  return function push(input: Float32Array): Int16Array[] {
    const done: Int16Array[] = [];
    for (let i = 0; i < input.length; i++) {
      sum += input[i];
      count += 1;
      consumed += 1;
      if (consumed + 1e-9 >= next) {
        const mean = Math.max(-1, Math.min(1, sum / count));
        out[filled++] = mean < 0 ? Math.round(mean * 32768) : Math.round(mean * 32767);
        sum = 0;
        count = 0;
        next += step;
        if (filled === chunk) {
          done.push(out);
          out = new Int16Array(chunk);
          filled = 0;
        }
      }
    }
    return done;
  };
}

const WORKLET = `
const createPcm16Chunker = ${createPcm16Chunker.toString()};
class MynahMic extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.push = createPcm16Chunker(sampleRate, o.rate, o.chunk);
    this.silence = new Float32Array(128);
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    for (const pcm of this.push(channel || this.silence)) this.port.postMessage(pcm.buffer, [pcm.buffer]);
    return true;
  }
}
registerProcessor("mynah-mic", MynahMic);
`;

// 0..1 from the loudness of some samples: -60 dBFS and below is 0, full scale is 1.
export function levelOf(samples: Float32Array): number {
  if (!samples.length) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / samples.length);
  if (rms <= 0) return 0;
  const db = 20 * Math.log10(rms);
  return Math.max(0, Math.min(1, (db + 60) / 60));
}

export const MIC_CONSTRAINTS: MediaStreamConstraints = {
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  video: false,
};

export class Microphone {
  private readonly analysisCtx: AudioContext;
  private readonly analyser: AnalyserNode;
  private readonly samples: Float32Array<ArrayBuffer>;
  private capture: { ctx: AudioContext; node: AudioWorkletNode; url: string } | null = null;
  private closed = false;

  private constructor(readonly stream: MediaStream) {
    this.analysisCtx = new AudioContext();
    this.analyser = this.analysisCtx.createAnalyser();
    this.analyser.fftSize = 1024;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.analysisCtx.createMediaStreamSource(stream).connect(this.analyser);
  }

  static async open(): Promise<Microphone> {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new MicError("unsupported", "This browser gives no microphone to this page.");
    }
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(MIC_CONSTRAINTS);
    } catch (err) {
      throw new MicError(classifyMicError(err), err instanceof Error ? err.message : String(err));
    }
    const mic = new Microphone(stream);
    await mic.analysisCtx.resume().catch(() => undefined);
    return mic;
  }

  get track(): MediaStreamTrack {
    return this.stream.getAudioTracks()[0];
  }

  get live(): boolean {
    return !this.closed && this.track?.readyState === "live";
  }

  setMuted(muted: boolean): void {
    for (const track of this.stream.getAudioTracks()) track.enabled = !muted;
  }

  get muted(): boolean {
    return !(this.track?.enabled ?? false);
  }

  level(): number {
    this.analyser.getFloatTimeDomainData(this.samples);
    return levelOf(this.samples);
  }

  // The latest ~20 ms of the signal, for a waveform.
  waveform(): Float32Array {
    this.analyser.getFloatTimeDomainData(this.samples);
    return this.samples;
  }

  // 16 kHz mono PCM16 chunks of CHUNK_SAMPLES to `send`, until stopPcm() or close(); muted, they are zeros.
  async startPcm(send: (pcm: ArrayBuffer) => void): Promise<void> {
    this.stopPcm();
    const url = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
    let ctx: AudioContext;
    let source: MediaStreamAudioSourceNode;
    try {
      ctx = new AudioContext({ sampleRate: SAMPLE_RATE_IN });
      source = ctx.createMediaStreamSource(this.stream);
    } catch {
      // Some browsers cannot feed a 16 kHz context from the microphone: the worklet resamples instead.
      ctx = new AudioContext();
      source = ctx.createMediaStreamSource(this.stream);
    }
    await ctx.audioWorklet.addModule(url);
    const node = new AudioWorkletNode(ctx, "mynah-mic", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { rate: SAMPLE_RATE_IN, chunk: CHUNK_SAMPLES },
    });
    node.port.onmessage = (event: MessageEvent<ArrayBuffer>) => send(event.data);
    source.connect(node);
    const sink = ctx.createGain();
    sink.gain.value = 0; // keeps the worklet pulled without playing the microphone back
    node.connect(sink).connect(ctx.destination);
    await ctx.resume().catch(() => undefined);
    this.capture = { ctx, node, url };
  }

  stopPcm(): void {
    if (!this.capture) return;
    const { ctx, node, url } = this.capture;
    this.capture = null;
    node.port.onmessage = null;
    node.disconnect();
    void ctx.close().catch(() => undefined);
    URL.revokeObjectURL(url);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPcm();
    for (const track of this.stream.getTracks()) track.stop();
    void this.analysisCtx.close().catch(() => undefined);
  }
}
