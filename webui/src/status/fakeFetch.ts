// For component tests only: a fake appliance behind fetch. Import it before anything that imports the API
// client, which keeps the fetch it finds when the module loads.
export type Handler = (request: Request) => Response | Promise<Response>;

export const routes = new Map<string, Handler>();
export const requests: { method: string; path: string; body: unknown }[] = [];

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
  const request = input instanceof Request ? input : new Request(input, init);
  const path = new URL(request.url).pathname;
  const text = await request.clone().text();
  requests.push({ method: request.method, path, body: text ? JSON.parse(text) : undefined });
  const handler = routes.get(`${request.method} ${path}`);
  return handler ? handler(request) : json({ code: "not-found", message: `no fake for ${request.method} ${path}` }, 404);
}) as typeof fetch;

export function resetFake(): void {
  routes.clear();
  requests.length = 0;
}
