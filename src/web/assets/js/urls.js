// Short-lived signed URLs for elements that cannot send an Authorization header (<img>, <video>, downloads).
// The daemon signs one path for a few minutes (get_download_url → signed_url, expires_at); they are cached per
// file and renewed a minute before they expire, so a page of thumbnails costs one call per new file.
//
// The daemon limits calls per connection (security.rate_limiting.requests_per_minute, 120 by default), so thumbnail
// URLs are fetched in the background under a budget of their own: one call at a time, at most
// BACKGROUND_PER_MINUTE in any minute, the most recently asked first (paging quickly loads the page on screen
// first), skipping thumbnails no longer on the page; a call refused with "Rate limit exceeded" waits and is
// retried. What the user clicks (play, view, download) never waits behind thumbnails.

const RENEW_BEFORE_MS = 60000;
const WINDOW_MS = 60000;
const BACKGROUND_PER_MINUTE = 40;
const RATE_LIMITED = -32002;
const RATE_LIMITED_PAUSE_MS = 5000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class SignedUrls {
  constructor(rpc) {
    this.rpc = rpc;
    this.cache = new Map();
    this.liveSupported = true;
    this.queue = [];
    this.sent = [];
    this.draining = false;
  }

  cached(kind, name) {
    const hit = this.cache.get(this.key(kind, name));
    return hit && hit.expires - Date.now() > RENEW_BEFORE_MS ? hit.url : null;
  }

  /**
   * A signed URL for a thumbnail, fetched in the background under the budget above. `wanted()` says whether the
   * element still needs it once its turn comes (a thumbnail of a page left behind does not); if not, the promise
   * rejects with null.
   */
  thumb(kind, name, wanted) {
    const hit = this.cached(kind, name);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, name, wanted, resolve, reject });
      // After the current task, so the list that asked is on the page by then.
      setTimeout(() => this.drain(), 0);
    });
  }

  /** Milliseconds until the background budget allows one more call (0: now). */
  budgetWait() {
    const now = Date.now();
    this.sent = this.sent.filter((t) => now - t < WINDOW_MS);
    return this.sent.length < BACKGROUND_PER_MINUTE ? 0 : this.sent[0] + WINDOW_MS - now;
  }

  async drain() {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        const job = this.queue.pop();
        if (!job.wanted()) { job.reject(null); continue; }
        const hit = this.cached(job.kind, job.name);
        if (hit) { job.resolve(hit); continue; }
        const wait = this.budgetWait();
        if (wait > 0) {
          this.queue.push(job);
          await sleep(wait);
          continue;
        }
        this.sent.push(Date.now());
        try {
          job.resolve(await this.file(job.kind, job.name));
        } catch (e) {
          if (e?.code !== RATE_LIMITED) { job.reject(e); continue; }
          // Other calls of this page used the allowance: wait, then try again.
          this.queue.push(job);
          await sleep(RATE_LIMITED_PAUSE_MS);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  key(kind, name) {
    return `${kind}/${name}`;
  }

  /** A signed URL for a recording or snapshot (kind: 'recording' | 'snapshot'). */
  async file(kind, name) {
    const hit = this.cached(kind, name);
    if (hit) return hit;
    const k = this.key(kind, name);
    const r = await this.rpc.call('get_download_url', { file_type: kind, filename: name });
    if (!r.signed_url) throw new Error('This daemon does not issue signed URLs');
    const expires = Date.parse(r.expires_at) || Date.now() + 5 * 60000;
    this.cache.set(k, { url: r.signed_url, expires });
    return r.signed_url;
  }

  /** Forget a file's URL (after deleting it, or when the server refused it). */
  forget(kind, name) {
    this.cache.delete(this.key(kind, name));
  }

  clear() {
    this.cache.clear();
    this.liveSupported = true;
    for (const job of this.queue.splice(0)) job.reject(null);
  }

  /**
   * A signed MJPEG URL for a camera's live view, or null when this daemon cannot serve one (it has no
   * get_live_url method: then the page says the live view is unavailable instead of asking again).
   */
  async live(device) {
    if (!this.liveSupported) return null;
    try {
      const r = await this.rpc.call('get_live_url', { device });
      return r.url || null;
    } catch (e) {
      if (e.code === -32601) {
        this.liveSupported = false;
        return null;
      }
      throw e;
    }
  }
}
