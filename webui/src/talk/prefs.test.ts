import { describe, expect, it } from "vitest";
import { usesDemoModel } from "./health";
import { isTextEntry, readMicMode } from "./prefs";
import { voiceChatUrl } from "./websocket";

describe("isTextEntry", () => {
  it("lets Space type in text fields and push-to-talk elsewhere", () => {
    const text = document.createElement("input");
    const box = document.createElement("input");
    box.type = "checkbox";
    expect(isTextEntry(text)).toBe(true);
    expect(isTextEntry(document.createElement("textarea"))).toBe(true);
    expect(isTextEntry(box)).toBe(false);
    expect(isTextEntry(document.createElement("button"))).toBe(false);
    expect(isTextEntry(document.body)).toBe(false);
    expect(isTextEntry(null)).toBe(false);
  });
});

describe("readMicMode", () => {
  it("is hands-free unless push-to-talk was kept", () => {
    expect(readMicMode("push")).toBe("push");
    expect(readMicMode(null)).toBe("hands-free");
    expect(readMicMode("nonsense")).toBe("hands-free");
  });
});

describe("usesDemoModel", () => {
  const program = (name: string, backend: string) => ({ name, backend });
  it("is true only when the llm program runs the embedded backend", () => {
    expect(usesDemoModel({ programs: [program("stt", "embedded"), program("llm", "embedded")] } as never)).toBe(true);
    expect(usesDemoModel({ programs: [program("llm", "ollama")] } as never)).toBe(false);
    expect(usesDemoModel(null)).toBe(false);
  });
});

describe("voiceChatUrl", () => {
  it("uses wss on https and passes the session to resume", () => {
    expect(voiceChatUrl({ protocol: "https:", host: "box.local:8443" }, "abc")).toBe("wss://box.local:8443/voice-chat?session_id=abc");
    expect(voiceChatUrl({ protocol: "http:", host: "127.0.0.1:8765" }, null)).toBe("ws://127.0.0.1:8765/voice-chat");
  });
});
