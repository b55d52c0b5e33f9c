import { useEffect, useState } from "react";
import { AvatarPage } from "./pages/Avatar";
import { InsecurePage } from "./pages/Insecure";
import { PairPage } from "./pages/Pair";
import { SettingsPage } from "./pages/Settings";
import { StatusPage } from "./pages/Status";
import { TalkPage } from "./pages/Talk";
import { VoicesPage } from "./pages/Voices";
import { ROUTES, type Route, useRoute } from "./lib/route";
import { getToken, onTokenLost } from "./lib/token";

const LABELS: Record<Route, string> = {
  talk: "Talk",
  voices: "Voices",
  avatar: "Avatar",
  status: "Status",
  settings: "Settings",
};

export function App() {
  const [token, setToken] = useState(getToken());
  const { route, param } = useRoute();
  useEffect(() => onTokenLost(() => setToken(null)), []);

  // Browsers give the microphone only to secure pages (HTTPS, or this machine itself).
  if (!window.isSecureContext) return <InsecurePage />;
  if (!token) return <PairPage onPaired={() => setToken(getToken())} />;
  return (
    <div className="shell">
      <nav className="nav" aria-label="Pages">
        <span className="brand" aria-hidden="true">
          Mynah
        </span>
        {ROUTES.map((name) => (
          <a key={name} href={`#/${name}`} aria-current={route === name ? "page" : undefined}>
            {LABELS[name]}
          </a>
        ))}
      </nav>
      <main className="main">
        {route === "talk" && <TalkPage sessionId={param} />}
        {route === "voices" && <VoicesPage />}
        {route === "avatar" && <AvatarPage />}
        {route === "status" && <StatusPage />}
        {route === "settings" && <SettingsPage />}
      </main>
    </div>
  );
}
