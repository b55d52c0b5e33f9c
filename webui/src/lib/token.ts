// The device token from pairing, kept in this browser (localStorage) until the device is revoked.
const KEY = "mynah.token";
const DEVICE_KEY = "mynah.device";

export interface StoredDevice {
  deviceId: string;
  name: string;
}

export function getToken(): string | null {
  return localStorage.getItem(KEY);
}

export function setToken(token: string, device: StoredDevice): void {
  localStorage.setItem(KEY, token);
  localStorage.setItem(DEVICE_KEY, JSON.stringify(device));
}

export function getDevice(): StoredDevice | null {
  try {
    const raw = localStorage.getItem(DEVICE_KEY);
    return raw ? (JSON.parse(raw) as StoredDevice) : null;
  } catch {
    return null;
  }
}

export function clearToken(): void {
  localStorage.removeItem(KEY);
  localStorage.removeItem(DEVICE_KEY);
}

// Listeners hear when the token stops working (revoked, or the appliance forgot it): the app shows pairing.
const lost = new Set<() => void>();
export function onTokenLost(listener: () => void): () => void {
  lost.add(listener);
  return () => lost.delete(listener);
}
export function tokenLost(): void {
  clearToken();
  lost.forEach((listener) => listener());
}
