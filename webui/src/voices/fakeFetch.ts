// For tests: a fetch that answers from routes and remembers every call. openapi-fetch keeps the fetch it found
// when the client is made, so a test installs this before anything imports the client:
//   const fake = await vi.hoisted(async () => (await import("./fakeFetch")).installFakeFetch());

export interface FakeCall {
  method: string;
  path: string;
  headers: Headers;
  body: unknown; // FormData, or the text of a JSON body
}

type Answer = (call: FakeCall) => Response | Promise<Response>;

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

export function installFakeFetch() {
  const calls: FakeCall[] = [];
  const routes: { method: string; path: string | RegExp; answer: Answer }[] = [];
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = typeof input === "object" && "url" in input ? input : undefined;
    const url = new URL(request ? request.url : String(input), "http://localhost");
    const method = (init?.method ?? request?.method ?? "GET").toUpperCase();
    const headers = new Headers(init?.headers ?? request?.headers);
    let body: unknown = init?.body;
    if (body === undefined && request && request.body !== null) body = await request.clone().text();
    const call = { method, path: url.pathname, headers, body };
    calls.push(call);
    // The newest route first, so a test can change an answer.
    const route = [...routes]
      .reverse()
      .find((r) => r.method === method && (typeof r.path === "string" ? r.path === call.path : r.path.test(call.path)));
    return route ? route.answer(call) : json(404, { code: "not-routed", message: `${method} ${call.path}` });
  }) as typeof fetch;
  return {
    calls,
    on(method: string, path: string | RegExp, answer: Answer | Response) {
      routes.push({ method, path, answer: typeof answer === "function" ? answer : () => answer.clone() });
    },
    reset() {
      calls.length = 0;
      routes.length = 0;
    },
  };
}
