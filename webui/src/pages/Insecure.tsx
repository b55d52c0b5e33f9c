// Shown when this page is not a secure context (plain http:// from another machine): browsers then refuse the
// microphone, so Mynah cannot listen. The fix is the https:// address, trusted once per device.
import "../pair/pair.css";

const TRUST_STEPS: { system: string; steps: string }[] = [
  {
    system: "Android",
    steps:
      "Download ca.pem, then Settings > Security > Encryption & credentials > Install a certificate > CA certificate, and pick the file.",
  },
  {
    system: "iPhone / iPad",
    steps:
      "Download ca.pem in Safari and allow it; install the profile in Settings (Profile Downloaded, or General > VPN & Device Management); then turn on full trust in Settings > General > About > Certificate Trust Settings.",
  },
  {
    system: "Windows (Chrome, Edge)",
    steps:
      "Open ca.pem > Install Certificate > Local Machine > Place all certificates in: Trusted Root Certification Authorities.",
  },
  {
    system: "macOS (Chrome, Safari)",
    steps: "Open ca.pem in Keychain Access (System keychain), open the certificate, and set Trust to Always Trust.",
  },
  {
    system: "Linux (Chrome)",
    steps: "Settings > Privacy and security > Security > Manage certificates > Authorities > Import, pick ca.pem, and trust it for websites.",
  },
  {
    system: "Firefox (any computer)",
    steps:
      "Firefox keeps its own list: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import, pick ca.pem, and tick “Trust this CA to identify websites”.",
  },
];

export function InsecurePage() {
  const secureUrl = `https://${window.location.host}/`;
  return (
    <main className="insecure-page stack">
      <h1>Open Mynah over HTTPS</h1>
      <p>
        Browsers let a page use the microphone only when it is served over HTTPS (or opened on the box itself, at
        localhost). This page came over plain HTTP, so Mynah could not hear you here.
      </p>

      <section className="card stack" aria-labelledby="insecure-link">
        <h2 id="insecure-link" style={{ margin: 0 }}>
          Use the secure address
        </h2>
        <a className="https-link" href={secureUrl}>
          {secureUrl}
        </a>
        <p className="muted small" style={{ margin: 0 }}>
          If the browser warns that the connection is not private, this device does not trust the appliance's
          certificate yet: do the one-time step below.
        </p>
      </section>

      <section className="card stack" aria-labelledby="insecure-ca">
        <h2 id="insecure-ca" style={{ margin: 0 }}>
          Trust the appliance once per device
        </h2>
        <p style={{ margin: 0 }}>
          Mynah makes its own certificate authority, so no internet service is involved. Download it and install it
          once on each device that opens Mynah:
        </p>
        <p style={{ margin: 0 }}>
          <a className="button" href="/ca.pem">
            Download the certificate (ca.pem)
          </a>
        </p>
        <dl className="small">
          {TRUST_STEPS.map(({ system, steps }) => (
            <div key={system}>
              <dt>{system}</dt>
              <dd>{steps}</dd>
            </div>
          ))}
        </dl>
        <p className="note small" style={{ margin: 0 }}>
          Before trusting it, compare fingerprints: <code>mynah certs</code> on the box prints the certificate's
          SHA-256 fingerprint, and the device shows one when you open or install the file. They must match.
        </p>
      </section>

      <section className="card stack" aria-labelledby="insecure-local">
        <h2 id="insecure-local" style={{ margin: 0 }}>
          If the secure address does not open
        </h2>
        <p className="small" style={{ margin: 0 }}>
          The appliance may listen only on the box itself: HTTPS is on when <code>host</code> in the{" "}
          <code>[gateway]</code> section of <code>mynah.toml</code> is an address other devices can reach (e.g.{" "}
          <code>"0.0.0.0"</code>), and off for <code>127.0.0.1</code>. Change it, restart with{" "}
          <code>mynah down</code> then <code>mynah up</code>, and check that <code>[security] tls</code> is not{" "}
          <code>"off"</code>.
        </p>
      </section>
    </main>
  );
}
