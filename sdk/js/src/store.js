/**
 * Where the browser SDK keeps things: localStorage when it works, else (and in memory-only mode)
 * a Map that writes nothing.
 *
 * Unsent messages are stored one key each (`{prefix}:q:{writeKey}:{messageId}` holding
 * `{ o: owner tab, t: queued at, m: message }`), so queueing or delivering one message writes or
 * removes one small key, never the whole queue. Each tab that holds messages refreshes a heartbeat
 * key (`{prefix}:tab:{tabId}`); a tab adopts stored messages only when their owner's heartbeat is
 * gone (the owner's page was left) or stale (it crashed), and claims them under a Web Lock
 * (`navigator.locks`, where available) so two tabs never adopt the same message.
 *
 * The claim lock alone is not enough: Chromium caches localStorage in each renderer process and
 * passes other tabs' writes on asynchronously, so a tab that takes the claim lock right after another
 * may still read the departed owner in `o` instead of the adopter and adopt the same messages again.
 * So the adopter also takes a Web Lock named for the departed owner (`{lock}:{owner}`, if available)
 * and holds it for ADOPT_HOLD_MS (or until its page is left): lock state is kept by the browser, the
 * same for every tab, and a tab that cannot take it leaves that owner's messages alone; by the time
 * it is released every tab reads the adopter (alive) as the owner.
 */

/** A heartbeat older than this marks its tab as gone (hidden tabs' timers may run once a minute). */
export const STALE_TAB_MS = 3 * 60 * 1000;
/** How often a tab refreshes its heartbeat. */
export const HEARTBEAT_MS = 10 * 1000;
/** How long an adopter holds the lock named for the departed owner (outlasting localStorage's propagation to other tabs). */
export const ADOPT_HOLD_MS = HEARTBEAT_MS;

function memoryStorage() {
  const memory = new Map();
  return {
    kind: "memory",
    get: (k) => (memory.has(k) ? memory.get(k) : null),
    set: (k, v) => {
      memory.set(k, String(v));
    },
    remove: (k) => {
      memory.delete(k);
    },
    keys: () => Array.from(memory.keys()),
  };
}

/** localStorage when asked for and usable (it throws in some private modes and sandboxed frames), else memory. */
export function openStorage(persistence) {
  if (persistence !== "memory") {
    try {
      const ls = globalThis.localStorage;
      const probe = "__nsa_probe__";
      ls.setItem(probe, probe);
      ls.removeItem(probe);
      return {
        kind: "localStorage",
        get: (k) => {
          try {
            return ls.getItem(k);
          } catch {
            return null;
          }
        },
        set: (k, v) => {
          try {
            ls.setItem(k, v);
            return true;
          } catch {
            return false; // full: the value lives in memory only
          }
        },
        remove: (k) => {
          try {
            ls.removeItem(k);
          } catch {
            // unavailable
          }
        },
        keys: () => {
          const out = [];
          try {
            for (let i = 0; i < ls.length; i++) out.push(ls.key(i));
          } catch {
            // unavailable
          }
          return out;
        },
      };
    } catch {
      // fall through to memory
    }
  }
  return memoryStorage();
}

/** The stored unsent messages of one write key, owned per tab. */
export class MessageStore {
  constructor(storage, prefix, writeKey, tabId) {
    this.storage = storage;
    this.tabId = tabId;
    this.queuePrefix = `${prefix}:q:${writeKey}:`;
    this.tabPrefix = `${prefix}:tab:`;
    this.lockName = `${prefix}:claim:${writeKey}`;
    this.holds = new Set(); // releases of the departed owners' locks this tab holds
  }

  get persistent() {
    return this.storage.kind !== "memory";
  }

  /** Store one message (one key). */
  add(message, queuedAt) {
    if (!this.persistent) return;
    this.storage.set(this.queuePrefix + message.messageId, JSON.stringify({ o: this.tabId, t: queuedAt, m: message }));
  }

  /** Forget messages (one key each). */
  remove(messages) {
    if (!this.persistent) return;
    for (const m of messages) this.storage.remove(this.queuePrefix + m.messageId);
  }

  /** This tab is alive and holds its messages. */
  beat(now = Date.now()) {
    if (this.persistent) this.storage.set(this.tabPrefix + this.tabId, String(now));
  }

  /** This tab is going away: its stored messages may be adopted at once by the next page load. */
  leave() {
    if (this.persistent) this.storage.remove(this.tabPrefix + this.tabId);
    for (const release of Array.from(this.holds)) release();
  }

  /**
   * Take the Web Lock `name` if no tab holds it, and hold it for ADOPT_HOLD_MS or until leave()
   * (the browser releases it when the page goes away). Resolves true when taken, false when another
   * tab holds it (or the request failed).
   */
  _holdIfAvailable(locks, name) {
    return new Promise((taken) => {
      try {
        Promise.resolve(locks.request(name, { ifAvailable: true }, (lock) => {
          taken(lock !== null);
          if (lock === null) return undefined;
          return new Promise((resolve) => {
            const release = () => {
              clearTimeout(timer);
              this.holds.delete(release);
              resolve();
            };
            const timer = setTimeout(release, ADOPT_HOLD_MS);
            this.holds.add(release);
          });
        })).catch(() => taken(false));
      } catch {
        taken(false);
      }
    });
  }

  _alive(owner, now) {
    if (owner === this.tabId) return true;
    const beat = Number(this.storage.get(this.tabPrefix + owner));
    return Number.isFinite(beat) && beat > 0 && now - beat < STALE_TAB_MS;
  }

  /**
   * Take over the stored messages whose tab is gone (and, with `own`, this tab's own stored
   * messages not in `held`, e.g. given up on earlier): those younger than maxAge become this tab's
   * (returned as `claimed`, each `{ message, queuedAt }`, oldest first), older ones are removed
   * (returned as `expired`). At most `room` are claimed. Resolves once done; never rejects.
   */
  claimOrphans(maxAge, room, held, own, now = Date.now()) {
    const empty = { claimed: [], expired: [] };
    if (!this.persistent || room <= 0) return Promise.resolve(empty);
    const nav = typeof navigator !== "undefined" ? navigator : undefined;
    const locks = nav && nav.locks && typeof nav.locks.request === "function" ? nav.locks : null;
    // the stored messages whose tab is gone (or ours, with own) and not held: { key, entry: { o, t, m } }
    const orphans = () => {
      const found = [];
      for (const key of this.storage.keys()) {
        if (key && key.startsWith(this.tabPrefix) && key !== this.tabPrefix + this.tabId) {
          // a crashed tab's heartbeat: gone once stale, so heartbeats of dead tabs do not pile up
          const beat = Number(this.storage.get(key));
          if (!(now - beat < STALE_TAB_MS)) this.storage.remove(key);
          continue;
        }
        if (!key || !key.startsWith(this.queuePrefix)) continue;
        let entry;
        try {
          entry = JSON.parse(this.storage.get(key));
        } catch {
          entry = null;
        }
        if (!entry || !entry.m || typeof entry.m.messageId !== "string" || typeof entry.t !== "number") {
          this.storage.remove(key);
          continue;
        }
        if (held.has(entry.m.messageId)) continue;
        if (!(own && entry.o === this.tabId) && this._alive(entry.o, now)) continue;
        found.push({ key, entry });
      }
      return found;
    };
    // make the orphans this tab's (all of them, or those of the owners in mine)
    const take = (found, mine) => {
      const claimed = [];
      const expired = [];
      for (const { key, entry } of found) {
        if (mine && !mine.has(entry.o)) continue;
        if (now - entry.t >= maxAge) {
          this.storage.remove(key);
          expired.push(entry.m);
          continue;
        }
        claimed.push(entry);
      }
      claimed.sort((a, b) => a.t - b.t);
      const taken = claimed.slice(0, room);
      for (const entry of taken) {
        entry.o = this.tabId;
        this.storage.set(this.queuePrefix + entry.m.messageId, JSON.stringify(entry));
      }
      return { claimed: taken.map((e) => ({ message: e.m, queuedAt: e.t })), expired };
    };
    // under the claim lock: another tab's localStorage view may lag behind this one's, so the
    // departed owner's lock decides which tab adopts its messages
    const claimLocked = async () => {
      const found = orphans();
      const mine = new Set([this.tabId]);
      for (const owner of new Set(found.map((f) => f.entry.o))) {
        if (!mine.has(owner) && (await this._holdIfAvailable(locks, `${this.lockName}:${owner}`))) mine.add(owner);
      }
      return take(found, mine);
    };
    if (locks) {
      try {
        return Promise.resolve(locks.request(this.lockName, claimLocked)).catch(() => empty);
      } catch {
        // fall back to the unlocked claim
      }
    }
    try {
      return Promise.resolve(take(orphans(), null));
    } catch {
      return Promise.resolve(empty);
    }
  }
}
