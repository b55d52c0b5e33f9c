// The microphone's input level (a <meter>) and a small waveform, read from its AnalyserNode every frame.
import { useEffect, useRef } from "react";
import type { Microphone } from "../mic";

export function LevelMeter({ mic, muted }: { mic: Microphone | null; muted: boolean }) {
  const meter = useRef<HTMLMeterElement>(null);
  const wave = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = wave.current;
    const paint = canvas?.getContext("2d") ?? null;
    let raf = 0;
    let level = 0;
    const draw = () => {
      raf = requestAnimationFrame(draw);
      const now = mic ? mic.level() : 0;
      level = Math.max(now, level * 0.85); // falls back gently
      if (meter.current) meter.current.value = level;
      if (!canvas || !paint) return;
      const { width, height } = canvas;
      paint.clearRect(0, 0, width, height);
      paint.lineWidth = 2;
      paint.strokeStyle = muted ? "#5d6470" : "#f2b84b";
      paint.beginPath();
      if (mic) {
        const samples = mic.waveform();
        const step = samples.length / width;
        for (let x = 0; x < width; x++) {
          const y = height / 2 - samples[Math.floor(x * step)] * height * 1.6;
          if (x === 0) paint.moveTo(x, y);
          else paint.lineTo(x, y);
        }
      } else {
        paint.moveTo(0, height / 2);
        paint.lineTo(width, height / 2);
      }
      paint.stroke();
    };
    draw();
    return () => cancelAnimationFrame(raf);
  }, [mic, muted]);
  return (
    <div className={`talk-level${muted ? " muted" : ""}`}>
      <canvas ref={wave} width={200} height={28} className="talk-wave" aria-hidden="true" />
      <meter ref={meter} min={0} max={1} low={0.25} high={0.85} optimum={0.5} value={0} aria-label="Microphone level" />
    </div>
  );
}
