import { requests, resetFake, routes, json } from "../status/fakeFetch"; // first: it replaces fetch
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { getDevice, getToken } from "../lib/token";
import { PairPage } from "../pages/Pair";
import { deviceNameFrom } from "./deviceName";

beforeEach(() => {
  resetFake();
  localStorage.clear();
});
afterEach(cleanup);

function fill(code: string, name?: string) {
  fireEvent.change(screen.getByLabelText("Pairing code"), { target: { value: code } });
  if (name !== undefined) fireEvent.change(screen.getByLabelText("Device name"), { target: { value: name } });
}

describe("PairPage", () => {
  it("names the device from the browser", () => {
    render(<PairPage onPaired={() => {}} />);
    expect(screen.getByLabelText("Device name")).toHaveProperty("value", deviceNameFrom(navigator.userAgent));
    const code = screen.getByLabelText("Pairing code");
    expect(code.id).toBe("pair-code");
    expect(code.getAttribute("inputmode")).toBe("numeric");
    expect(code.getAttribute("autocomplete")).toBe("one-time-code");
  });

  it("trades the code for a token, keeps it, and says so", async () => {
    routes.set("POST /api/pair", () => json({ token: "tok-1", device_id: "dev-1" }));
    const onPaired = vi.fn();
    render(<PairPage onPaired={onPaired} />);
    fill("123 456", "Kitchen tablet");
    fireEvent.submit(screen.getByLabelText("Pairing code").closest("form")!);
    await waitFor(() => expect(onPaired).toHaveBeenCalledOnce());
    expect(requests).toEqual([{ method: "POST", path: "/api/pair", body: { code: "123456", device_name: "Kitchen tablet" } }]);
    expect(getToken()).toBe("tok-1");
    expect(getDevice()).toEqual({ deviceId: "dev-1", name: "Kitchen tablet" });
  });

  it("checks the code's shape before spending one of the few tries", () => {
    render(<PairPage onPaired={() => {}} />);
    fill("1234");
    fireEvent.click(screen.getByRole("button", { name: "Pair" }));
    expect(screen.getByRole("alert").textContent).toMatch(/6 digits/);
    expect(requests).toEqual([]);
  });

  it("says a wrong code is wrong, used or expired", async () => {
    routes.set("POST /api/pair", () => json({ code: "pairing-code-invalid", message: "the pairing code is wrong" }, 403));
    const onPaired = vi.fn();
    render(<PairPage onPaired={onPaired} />);
    fill("000000");
    fireEvent.click(screen.getByRole("button", { name: "Pair" }));
    expect(await screen.findByText(/wrong, used or expired: get a fresh code/)).toBeTruthy();
    expect(onPaired).not.toHaveBeenCalled();
    expect(getToken()).toBeNull();
  });

  it("waits out the rate limit the appliance asks for", async () => {
    routes.set("POST /api/pair", () =>
      json({ code: "pairing-rate-limited", message: "too many wrong pairing codes" }, 429, { "Retry-After": "30" }),
    );
    render(<PairPage onPaired={() => {}} />);
    fill("111111");
    fireEvent.click(screen.getByRole("button", { name: "Pair" }));
    const button = await screen.findByRole("button", { name: "Wait 30 s" });
    expect(button).toHaveProperty("disabled", true);
    expect(screen.getByRole("alert").textContent).toMatch(/Try again in 30 s/);
  });

  it("says when the appliance does not answer", async () => {
    routes.set("POST /api/pair", () => {
      throw new TypeError("Failed to fetch");
    });
    render(<PairPage onPaired={() => {}} />);
    fill("222222");
    fireEvent.click(screen.getByRole("button", { name: "Pair" }));
    expect(await screen.findByText(/does not answer/)).toBeTruthy();
  });
});
