// Short-lived signed URLs for elements that cannot send an Authorization header (<img>, <video>, downloads).
// The daemon signs one path for a few minutes (get_download_url → signed_url, expires_at); they are cached per
// file and renewed a minute before they expire, so a page of thumbnails costs one call per new file.

const RENEW_BEFORE_MS = 60000;

export class SignedUrls {
  constructor(rpc) {
    this.rpc = rpc;
    this.cache = new Map();
    this.liveSupported = true;
  }

  key(kind, name) {
    return `${kind}/${name}`;
  }

  /** A signed URL for a recording or snapshot (kind: 'recording' | 'snapshot'). */
  async file(kind, name) {
    const k = this.key(kind, name);
    const hit = this.cache.get(k);
    if (hit && hit.expires - Date.now() > RENEW_BEFORE_MS) return hit.url;
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
