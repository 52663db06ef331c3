// A camera card's live view. With MediaMTX, WebRTC through its WHEP endpoint (the camera's `streams.webrtc` URL
// + "/whep"); without it, or when WebRTC fails, an MJPEG stream from the daemon (a signed URL from get_live_url);
// when neither is possible, a clear note saying why.

import { h, fill } from './ui.js';

const ICE_GATHER_MS = 2000;
const RETRY_MS = 4000;

/** Wait until ICE gathering is complete (or a short deadline: host candidates come at once on a LAN). */
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } };
    const t = setTimeout(resolve, ICE_GATHER_MS);
    pc.addEventListener('icegatheringstatechange', done);
  });
}

/**
 * Play a WHEP stream into `video`. Resolves with a session {close()} once the answer is applied; `onfail` runs if
 * the connection fails later.
 */
export async function playWhep(video, whepUrl, onfail) {
  const pc = new RTCPeerConnection({ iceServers: [] });
  let resource = null;
  const close = () => {
    pc.close();
    if (resource) fetch(resource, { method: 'DELETE' }).catch(() => {});
  };
  try {
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (ev) => {
      video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed') onfail('WebRTC connection failed');
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const res = await fetch(whepUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: pc.localDescription.sdp,
    });
    if (res.status !== 201) throw new Error(`MediaMTX answered ${res.status}`);
    const loc = res.headers.get('Location');
    if (loc) resource = new URL(loc, whepUrl).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  } catch (e) {
    close();
    throw e;
  }
  return { close };
}

export class LiveView {
  constructor(box, urls, name) {
    this.box = box;
    this.urls = urls;
    this.name = name;
    this.key = null;
    this.session = null;
    this.gen = 0;
    this.paused = false;
    this.hidden = false;
    this.timer = null;
  }

  /** Show `cam`; restarts only when what should be shown changes (status, stream URL). */
  update(cam) {
    this.cam = cam;
    let key = `off:${cam.status}`;
    if (cam.status === 'CONNECTED') key = cam.streams?.webrtc ? `webrtc:${cam.streams.webrtc}` : `mjpeg:${cam.device}`;
    if (key === this.key) return;
    this.key = key;
    this.restart();
  }

  setPaused(paused) {
    this.paused = paused;
    this.restart();
  }

  /** A page in the background streams nothing (phones, metered links); it resumes when shown again. */
  setHidden(hidden) {
    if (hidden === this.hidden) return;
    this.hidden = hidden;
    this.restart();
  }

  restart() {
    this.stop();
    const gen = this.gen;
    if (!this.key) return;
    if (this.paused) return this.note('Live view paused');
    if (this.hidden) return this.note('Live view paused while the page is hidden');
    if (this.key.startsWith('off:')) return this.note(`Camera ${this.cam.status.toLowerCase()}`);
    if (this.key.startsWith('webrtc:')) this.startWebrtc(gen);
    else this.startMjpeg(gen, null);
  }

  stop() {
    this.gen++;
    clearTimeout(this.timer);
    this.session?.close();
    this.session = null;
  }

  note(text) {
    fill(this.box, h('p', { class: 'note' }, text));
  }

  show(el, tag) {
    fill(this.box, el, h('span', { class: 'tag' }, tag));
  }

  retryLater(gen) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { if (gen === this.gen) this.restart(); }, RETRY_MS);
  }

  async startWebrtc(gen) {
    this.note('Connecting…');
    const video = h('video', { autoplay: true, playsInline: true, 'aria-label': `Live view of ${this.name}` });
    video.muted = true;
    video.dataset.live = 'webrtc';
    try {
      const session = await playWhep(video, `${this.cam.streams.webrtc}/whep`, (why) => {
        if (gen !== this.gen) return;
        this.note(`${why}; retrying…`);
        this.retryLater(gen);
      });
      if (gen !== this.gen) return session.close();
      this.session = session;
      this.show(video, 'WebRTC');
    } catch (e) {
      if (gen !== this.gen) return;
      this.startMjpeg(gen, `WebRTC failed (${e.message})`);
    }
  }

  async startMjpeg(gen, why) {
    let url = null;
    try {
      url = await this.urls.live(this.cam.device);
    } catch (e) {
      if (gen === this.gen) this.note(`Live view unavailable: ${e.message}`);
      return;
    }
    if (gen !== this.gen) return;
    if (!url) {
      const reason = why || 'no WebRTC stream (MediaMTX is off) and this daemon serves no MJPEG stream';
      this.note(`Live view unavailable: ${reason}`);
      if (why) this.retryLater(gen);
      return;
    }
    const img = h('img', { src: url, alt: `Live view of ${this.name}` });
    img.dataset.live = 'mjpeg';
    img.addEventListener('error', () => {
      if (gen !== this.gen) return;
      this.note('Live view interrupted; retrying…');
      this.retryLater(gen);
    });
    this.session = { close: () => img.removeAttribute('src') };
    this.show(img, 'MJPEG');
  }
}
