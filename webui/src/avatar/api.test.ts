import { describe, expect, it } from "vitest";
import { avatarAdvice, answerKind, generateForm, readGenerateAnswer } from "./api";

describe("answerKind", () => {
  it("takes 202 as a job and a 200 MP4 as the video", () => {
    expect(answerKind(202, "application/json")).toBe("job");
    expect(answerKind(200, "video/mp4")).toBe("video");
    expect(answerKind(200, null)).toBe("video");
  });

  it("takes a JSON 200 as a job and anything else as unexpected", () => {
    expect(answerKind(200, "application/json; charset=utf-8")).toBe("job");
    expect(answerKind(200, "text/html")).toBe("unexpected");
    expect(answerKind(204, "video/mp4")).toBe("unexpected");
  });
});

describe("readGenerateAnswer", () => {
  it("reads the job of a 202", async () => {
    const body = JSON.stringify({ job_id: "j1", status: "queued", events_url: "/api/jobs/j1/events" });
    const answer = await readGenerateAnswer(
      new Response(body, { status: 202, headers: { "Content-Type": "application/json" } }),
    );
    expect(answer).toEqual({ kind: "job", job: { job_id: "j1", status: "queued", events_url: "/api/jobs/j1/events" } });
  });

  it("reads the MP4 of a 200", async () => {
    const mp4 = new Uint8Array([0, 0, 0, 24, 102, 116, 121, 112]);
    const answer = await readGenerateAnswer(new Response(mp4, { status: 200, headers: { "Content-Type": "video/mp4" } }));
    expect(answer.kind).toBe("video");
    if (answer.kind !== "video") return;
    expect(answer.video.type).toBe("video/mp4");
    expect(new Uint8Array(await answer.video.arrayBuffer())).toEqual(mp4);
  });

  it("refuses a job without an id and an answer that is not a video", async () => {
    await expect(
      readGenerateAnswer(new Response("{}", { status: 202, headers: { "Content-Type": "application/json" } })),
    ).rejects.toMatchObject({ code: "unexpected-answer" });
    await expect(
      readGenerateAnswer(new Response("<html>", { status: 200, headers: { "Content-Type": "text/html" } })),
    ).rejects.toMatchObject({ code: "unexpected-answer" });
  });
});

describe("generateForm", () => {
  it("sends the text, the avatar and the 512 resolution", () => {
    const form = generateForm("  Hello there.  ", "0123456789abcdef-512");
    expect(form.get("text")).toBe("Hello there.");
    expect(form.get("avatar_id")).toBe("0123456789abcdef-512");
    expect(form.get("resolution")).toBe("512");
  });

  it("leaves the avatar out for the one in use", () => {
    expect(generateForm("Hi", null).has("avatar_id")).toBe(false);
  });
});

describe("avatarAdvice", () => {
  it("explains the portrait refusals", () => {
    expect(avatarAdvice("avatar-no-face")).toMatch(/No face/);
    expect(avatarAdvice("avatar-several-faces")).toMatch(/one person/);
    expect(avatarAdvice("avatar-unsupported-format")).toMatch(/PNG, JPEG or WebP/);
    expect(avatarAdvice("something-else")).toBeNull();
  });
});
