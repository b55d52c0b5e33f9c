// The Talk page against a fake appliance (fetch): stored history, conversations, typed messages, deleting,
// the demo-model note, and the kept choices. The live call needs a browser (see the report's Playwright run).
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const SID = "0123456789abcdef0123456789abcdef";

interface Call {
  method: string;
  path: string;
  body: unknown;
}

function fakeAppliance() {
  const calls: Call[] = [];
  let sessions = [{ session_id: SID, title: "Lunch plans", created_at: 1000, updated_at: 2000, turns: 1 }];
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(request.url);
    const text = request.method === "GET" || request.method === "DELETE" ? "" : await request.text();
    calls.push({ method: request.method, path: url.pathname, body: text ? JSON.parse(text) : null });
    if (url.pathname === "/api/sessions" && request.method === "GET") return json({ sessions });
    if (url.pathname === `/api/sessions/${SID}/history`) {
      return json({
        session_id: SID,
        lines: [
          { role: "user", text: "Where shall we eat?", turn_id: "t1", created_at: 1000 },
          { role: "assistant", text: "How about the noodle bar?", turn_id: "t1", created_at: 1001 },
        ],
      });
    }
    if (url.pathname === `/api/sessions/${SID}` && request.method === "DELETE") {
      sessions = [];
      return new Response(null, { status: 204 });
    }
    if (url.pathname === "/chat") {
      return json({ session_id: "f".repeat(32), turn_id: "t7", reply: "Hello there!", timings: {} });
    }
    if (url.pathname === "/health") {
      return json({ status: "ok", summary: { ready: 1, total: 1, restarts_last_hour: 0, problem: "" }, programs: [{ name: "llm", backend: "embedded" }] });
    }
    return json({ code: "not-found", message: "no such route" }, 404);
  });
  return { fetch, calls };
}

let appliance: ReturnType<typeof fakeAppliance>;

beforeEach(() => {
  vi.resetModules();
  localStorage.clear();
  appliance = fakeAppliance();
  vi.stubGlobal("fetch", appliance.fetch);
  vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(null); // jsdom draws nothing
  window.location.hash = "";
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

async function renderPage(sessionId: string | null) {
  const { TalkPage } = await import("../pages/Talk");
  return render(<TalkPage sessionId={sessionId} />);
}

describe("TalkPage", () => {
  it("loads the stored conversation with times, and shows the state and the demo-model note", async () => {
    await renderPage(SID);
    const history = await screen.findByTestId("history");
    await waitFor(() => expect(within(history).getAllByTestId("line-user")).toHaveLength(1));
    expect(within(history).getByTestId("line-assistant").textContent).toContain("How about the noodle bar?");
    expect(within(history).getAllByRole("listitem")[0].querySelector("time")).not.toBeNull();
    expect(screen.getByTestId("talk-state").textContent).toBe("disconnected");
    expect(screen.getByTestId("mic")).toHaveProperty("disabled", true);
    expect(await screen.findByText(/tiny embedded demo model/)).toBeTruthy();
    expect(screen.getByRole("link", { name: "Settings" }).getAttribute("href")).toBe("#/settings");
    expect((await screen.findAllByText("Lunch plans")).length).toBeGreaterThan(0);
  });

  it("sends a typed message in a new conversation and puts its session in the route", async () => {
    await renderPage(null);
    fireEvent.change(screen.getByLabelText("Message"), { target: { value: "Hi!" } });
    fireEvent.click(screen.getByRole("button", { name: "Send" }));
    await waitFor(() => expect(screen.getByTestId("line-assistant").textContent).toContain("Hello there!"));
    expect(screen.getByTestId("line-user").textContent).toContain("Hi!");
    expect(appliance.calls.find((call) => call.path === "/chat")?.body).toEqual({ text: "Hi!", session_id: null, stream: false });
    expect(window.location.hash).toBe(`#/talk/${"f".repeat(32)}`);
  });

  it("deletes a conversation only after confirming, and clears it when it was open", async () => {
    await renderPage(SID);
    await waitFor(() => expect(screen.getAllByTestId("line-user")).toHaveLength(1));
    fireEvent.click(await screen.findByRole("button", { name: "Delete Lunch plans" }));
    expect(appliance.calls.some((call) => call.method === "DELETE")).toBe(false);
    fireEvent.click(screen.getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(appliance.calls.some((call) => call.method === "DELETE" && call.path === `/api/sessions/${SID}`)).toBe(true));
    await waitFor(() => expect(screen.queryAllByTestId("line-user")).toHaveLength(0));
    expect(window.location.hash).toBe("#/talk");
  });

  it("keeps the microphone mode and the transport choice in this browser", async () => {
    await renderPage(null);
    const mode = screen.getByTestId("mic-mode");
    expect(mode.getAttribute("data-mode")).toBe("hands-free");
    await act(async () => fireEvent.click(mode));
    expect(mode.getAttribute("data-mode")).toBe("push");
    expect(localStorage.getItem("mynah.micMode")).toBe("push");
    expect(screen.getByTestId("mic").textContent).toMatch(/off until a call/i);
    fireEvent.change(screen.getByLabelText("Connection"), { target: { value: "websocket" } });
    expect(localStorage.getItem("mynah.transport")).toBe("websocket");
  });
});
