// Hash routes (#/talk, #/voices, ...): the gateway serves one page at "/", so no route needs the server.
import { useEffect, useState } from "react";

export const ROUTES = ["talk", "voices", "avatar", "status", "settings"] as const;
export type Route = (typeof ROUTES)[number];

export function parseRoute(hash: string): { route: Route; param: string | null } {
  const [name, param] = hash.replace(/^#\/?/, "").split("/", 2);
  const route = (ROUTES as readonly string[]).includes(name) ? (name as Route) : "talk";
  return { route, param: param ? decodeURIComponent(param) : null };
}

export function useRoute(): { route: Route; param: string | null } {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const changed = () => setHash(window.location.hash);
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return parseRoute(hash);
}

export function go(route: Route, param?: string): void {
  window.location.hash = param ? `#/${route}/${encodeURIComponent(param)}` : `#/${route}`;
}
