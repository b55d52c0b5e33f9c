// A 16-bit PCM WAV made in the browser from the recorder's float samples: no codec, so the trainer hears
// exactly what the microphone gave.

// The samples of all chunks, one after another.
export function joinChunks(chunks: readonly Float32Array[]): Float32Array {
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const joined = new Float32Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

// One float sample (-1..1, clipped beyond) as a signed 16-bit integer.
export function toInt16(sample: number): number {
  const clipped = Number.isNaN(sample) ? 0 : Math.max(-1, Math.min(1, sample));
  return clipped < 0 ? Math.round(clipped * 0x8000) : Math.round(clipped * 0x7fff);
}

const HEADER_BYTES = 44;

// A mono 16-bit little-endian PCM WAV file of `chunks` at `sampleRate`.
export function encodeWav(chunks: readonly Float32Array[], sampleRate: number): ArrayBuffer {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw new RangeError(`bad sample rate ${sampleRate}`);
  const frames = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const dataBytes = frames * 2;
  const buffer = new ArrayBuffer(HEADER_BYTES + dataBytes);
  const view = new DataView(buffer);
  const ascii = (offset: number, text: string) => {
    for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
  };
  ascii(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true); // the fmt chunk's size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  ascii(36, "data");
  view.setUint32(40, dataBytes, true);
  let offset = HEADER_BYTES;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, offset += 2) view.setInt16(offset, toInt16(chunk[i]), true);
  }
  return buffer;
}

export function wavBlob(chunks: readonly Float32Array[], sampleRate: number): Blob {
  return new Blob([encodeWav(chunks, sampleRate)], { type: "audio/wav" });
}

// The loudness of a chunk in dBFS (its RMS; -Infinity for silence).
export function rmsDbfs(chunk: Float32Array): number {
  if (chunk.length === 0) return -Infinity;
  let sum = 0;
  for (let i = 0; i < chunk.length; i++) sum += chunk[i] * chunk[i];
  const rms = Math.sqrt(sum / chunk.length);
  return rms > 0 ? 20 * Math.log10(rms) : -Infinity;
}

// A level meter's fill (0..1) for a loudness: -60 dBFS and below is empty, 0 dBFS full.
export function meterLevel(dbfs: number, floorDb = -60): number {
  if (!(dbfs > floorDb)) return 0;
  return Math.min(1, (dbfs - floorDb) / -floorDb);
}
