// Mono PCM from the microphone, as float chunks: an AudioWorklet where the browser has one, a ScriptProcessor
// where it does not. The page encodes the chunks as a WAV itself (wav.ts), so no codec touches the sample.

export interface MicCapture {
  sampleRate: number;
  // Stops the microphone and hands back what was recorded.
  stop(): Float32Array[];
}

const PROCESSOR = "mynah-capture";
const CHUNK_FRAMES = 2048; // ~43 ms at 48 kHz: the level meter's pace

// Runs on the audio thread: collects the (down-mixed, mono) input and posts it in chunks.
const WORKLET_SOURCE = `
class MynahCapture extends AudioWorkletProcessor {
  constructor() { super(); this.buffer = new Float32Array(${CHUNK_FRAMES}); this.filled = 0; }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let read = 0;
      while (read < channel.length) {
        const take = Math.min(channel.length - read, this.buffer.length - this.filled);
        this.buffer.set(channel.subarray(read, read + take), this.filled);
        this.filled += take; read += take;
        if (this.filled === this.buffer.length) { this.port.postMessage(this.buffer.slice(0)); this.filled = 0; }
      }
    }
    return true;
  }
}
registerProcessor("${PROCESSOR}", MynahCapture);
`;

export function canRecord(): boolean {
  return typeof navigator !== "undefined" && !!navigator.mediaDevices?.getUserMedia && typeof AudioContext !== "undefined";
}

async function captureNode(context: AudioContext, onChunk: (chunk: Float32Array) => void): Promise<AudioNode> {
  if (context.audioWorklet && typeof AudioWorkletNode !== "undefined") {
    const url = URL.createObjectURL(new Blob([WORKLET_SOURCE], { type: "text/javascript" }));
    try {
      await context.audioWorklet.addModule(url);
    } finally {
      URL.revokeObjectURL(url);
    }
    const node = new AudioWorkletNode(context, PROCESSOR, {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: "explicit", // the browser mixes a stereo microphone down to mono
      channelInterpretation: "speakers",
    });
    node.port.onmessage = (event: MessageEvent<Float32Array>) => onChunk(event.data);
    return node;
  }
  const processor = context.createScriptProcessor(CHUNK_FRAMES * 2, 1, 1);
  processor.onaudioprocess = (event) => onChunk(event.inputBuffer.getChannelData(0).slice(0));
  return processor;
}

// Opens the microphone (this is where the browser asks) and records until stop(); onChunk hears each chunk.
export async function startMicCapture(onChunk: (chunk: Float32Array, sampleRate: number) => void): Promise<MicCapture> {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext();
  const chunks: Float32Array[] = [];
  let recording = true;
  try {
    await context.resume(); // Safari starts a context suspended
    const source = context.createMediaStreamSource(stream);
    const node = await captureNode(context, (chunk) => {
      if (!recording) return;
      chunks.push(chunk);
      onChunk(chunk, context.sampleRate);
    });
    // Nothing is heard: the capture node only runs while something downstream pulls it.
    const mute = context.createGain();
    mute.gain.value = 0;
    source.connect(node);
    node.connect(mute);
    mute.connect(context.destination);
  } catch (err) {
    stream.getTracks().forEach((track) => track.stop());
    void context.close();
    throw err;
  }
  return {
    sampleRate: context.sampleRate,
    stop() {
      recording = false;
      stream.getTracks().forEach((track) => track.stop());
      void context.close();
      return chunks;
    },
  };
}
