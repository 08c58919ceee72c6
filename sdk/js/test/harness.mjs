// A minimal DOM-less stand-in for the browser globals the SDK reads (window, document, navigator,
// localStorage), so `npm test` runs in Node without a browser. Requests are real: Node's fetch, and
// a sendBeacon that really POSTs. Real-browser behaviour is tested in tests/test_sdk_js.py (Chromium).
import { createServer } from "node:http";

/** localStorage of one origin, shared by its tabs; counts writes and bytes written. */
export class Storage {
  constructor() {
    this.map = new Map();
    this.writes = 0;
    this.bytesWritten = 0;
  }
  get length() {
    return this.map.size;
  }
  key(i) {
    return Array.from(this.map.keys())[i] ?? null;
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.writes++;
    this.bytesWritten += String(k).length + String(v).length;
    this.map.set(String(k), String(v));
  }
  removeItem(k) {
    this.map.delete(String(k));
  }
  entries(prefix = "") {
    return Array.from(this.map.entries()).filter(([k]) => k.startsWith(prefix));
  }
}

/**
 * One tab's view of a shared Storage as Chromium gives it: reads come from this tab's copy, writes go
 * to the shared storage at once but reach the other tabs' copies only when they sync().
 */
export class LaggingView extends Storage {
  constructor(shared) {
    super();
    this.shared = shared;
    this.sync();
  }
  sync() {
    this.map = new Map(this.shared.map);
  }
  setItem(k, v) {
    super.setItem(k, v);
    this.shared.setItem(k, v);
  }
  removeItem(k) {
    super.removeItem(k);
    this.shared.removeItem(k);
  }
}

/**
 * navigator.locks of one origin, shared by its tabs (exclusive locks, ifAvailable): lock state is
 * the browser's, the same for every tab, unlike localStorage.
 */
export class Locks {
  constructor() {
    this.held = new Set();
    this.waiting = new Map();
  }
  request(name, options, callback) {
    if (typeof options === "function") [callback, options] = [options, {}];
    const run = async () => {
      this.held.add(name);
      try {
        return await callback({ name, mode: "exclusive" });
      } finally {
        this.held.delete(name);
        const next = (this.waiting.get(name) || []).shift();
        if (next) next();
      }
    };
    if (!this.held.has(name)) return run();
    if (options.ifAvailable) return Promise.resolve().then(() => callback(null));
    return new Promise((resolve, reject) => {
      if (!this.waiting.has(name)) this.waiting.set(name, []);
      this.waiting.get(name).push(() => run().then(resolve, reject));
    });
  }
}

/** Everything beacons sent, across tabs. */
export const beacons = [];

/**
 * Make a tab (window + document) of `url` the current global page; tabs of one origin share
 * `storage`. Returns the tab with hide()/leave() to fire the page events.
 */
export function openTab({ url = "https://shop.example/pricing?utm_source=news&utm_campaign=spring", storage, navigatorExtra = {} } = {}) {
  const location = new URL(url);
  const win = new EventTarget();
  const doc = new EventTarget();
  Object.assign(doc, { visibilityState: "visible", referrer: "https://search.example/", title: "Pricing" });
  Object.assign(win, { location, screen: { width: 1280, height: 800 }, localStorage: storage, document: doc });
  const nav = {
    userAgent: "Mozilla/5.0 (harness)",
    language: "en-US",
    sendBeacon(endpoint, body) {
      beacons.push({ endpoint, body: JSON.parse(body) });
      fetch(endpoint, { method: "POST", body, headers: { "Content-Type": "text/plain;charset=UTF-8" } }).catch(() => {});
      return true;
    },
    ...navigatorExtra,
  };
  const tab = {
    window: win,
    document: doc,
    navigator: nav,
    storage,
    activate() {
      for (const [name, value] of [["window", win], ["document", doc], ["navigator", nav], ["localStorage", storage]]) {
        Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
      }
      return tab;
    },
    hide() {
      doc.visibilityState = "hidden";
      doc.dispatchEvent(new Event("visibilitychange"));
    },
    leave() {
      tab.hide();
      win.dispatchEvent(new Event("pagehide"));
    },
  };
  return tab.activate();
}

/** Remove the browser globals: what server-side rendering sees. */
export function noBrowser() {
  for (const name of ["window", "document", "navigator", "localStorage"]) delete globalThis[name];
}

/** A real HTTP server recording batches; answer(n, req, res) may answer itself and return true. */
export async function server(answer) {
  const requests = [];
  const srv = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        body = {};
      }
      const rec = { at: Date.now(), url: req.url, headers: req.headers, body, ids: (body.batch || []).map((m) => m.messageId) };
      const n = requests.push(rec) - 1;
      if (answer && answer(n, req, res)) return;
      res.writeHead(202, { "Content-Type": "application/json" });
      res.end('{"status":"success"}');
    });
  });
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    requests,
    ids: () => requests.flatMap((r) => r.ids),
    close: () => {
      srv.closeAllConnections();
      return new Promise((resolve) => srv.close(resolve));
    },
  };
}

export async function until(predicate, timeout = 3000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
