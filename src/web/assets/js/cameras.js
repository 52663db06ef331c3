// The camera grid: one card per camera, kept current by camera_status_update and recording_status_update
// notifications. Cards are updated in place so their live views keep playing.

import { h, fill, $, toast, busy, errText, fmtClock } from './ui.js';
import { LiveView } from './live.js';

const DURATIONS = [
  ['', 'Until stopped'],
  ['10', '10 s'],
  ['30', '30 s'],
  ['60', '1 min'],
  ['300', '5 min'],
  ['900', '15 min'],
];

export class Cameras {
  constructor(rpc, urls, hooks) {
    this.rpc = rpc;
    this.urls = urls;
    this.hooks = hooks; // {snapshotTaken(name), recordingsChanged()}
    this.cams = new Map();
    this.cards = new Map();
    this.canControl = false;
    this.grid = $('#camera-grid');
    setInterval(() => this.tick(), 1000);
    document.addEventListener('visibilitychange', () => {
      for (const card of this.cards.values()) card.live.setHidden(document.hidden);
    });
  }

  /** Start every live view again (after a reconnect: a daemon restart ended their streams). */
  restartLive() {
    for (const card of this.cards.values()) card.live.restart();
  }

  /** Role changed (sign-in): rebuild every card with or without the control buttons. */
  setRole(role) {
    this.canControl = role === 'operator' || role === 'admin';
    this.clear();
  }

  clear() {
    for (const card of this.cards.values()) card.live.stop();
    this.cards.clear();
    this.cams.clear();
    fill(this.grid);
  }

  async load() {
    const r = await this.rpc.call('get_camera_list');
    const seen = new Set();
    for (const cam of r.cameras) {
      seen.add(cam.device);
      this.upsert(cam, cam.recording ? Date.now() - (cam.elapsed_time || 0) * 1000 : null);
    }
    for (const device of [...this.cams.keys()]) if (!seen.has(device)) this.remove(device);
    this.summary();
    if (!this.loadedOnce) {
      this.loadedOnce = true;
      performance.mark('cameras-ready');
      document.body.dataset.ready = 'cameras';
    }
  }

  onNotification(method, p) {
    if (method === 'camera_status_update' && p.device) {
      const prev = this.cams.get(p.device) || {};
      this.upsert({ ...prev, ...p }, prev.recStart ?? null);
      this.summary();
    } else if (method === 'recording_status_update' && p.device && this.cams.has(p.device)) {
      const cam = this.cams.get(p.device);
      const on = p.status === 'STARTED';
      this.upsert({ ...cam, recording: on, current_file: on ? p.filename : null }, on ? Date.now() : null);
      if (p.status === 'FAILED') toast(`Recording on ${cam.name} failed: ${p.error || 'unknown error'}`, 'bad');
      if (!on) this.hooks.recordingsChanged();
    }
  }

  upsert(cam, recStart) {
    cam.recStart = cam.recording ? (recStart ?? Date.now()) : null;
    this.cams.set(cam.device, cam);
    let card = this.cards.get(cam.device);
    if (!card) {
      card = this.build(cam);
      this.cards.set(cam.device, card);
      this.grid.append(card.el);
    }
    this.render(card, cam);
  }

  remove(device) {
    const card = this.cards.get(device);
    card?.live.stop();
    card?.el.remove();
    this.cards.delete(device);
    this.cams.delete(device);
  }

  summary() {
    const all = [...this.cams.values()];
    const connected = all.filter((c) => c.status === 'CONNECTED').length;
    $('#camera-count').textContent = all.length ? `${connected} of ${all.length} connected` : '';
    $('#cameras-empty').hidden = all.length > 0;
  }

  build(cam) {
    const id = `cam-${cam.device.replace(/[^a-z0-9]/gi, '-')}`;
    const parts = {
      title: h('h2', { id }),
      meta: h('div', { class: 'meta' }),
      badge: h('span', { class: 'badge' }),
      stage: h('div', { class: 'stage' }),
      rec: h('span', { class: 'tag rec-tag', hidden: true }),
      shot: null,
    };
    parts.wrap = h('div', { class: 'live' }, parts.stage, parts.rec);
    const live = new LiveView(parts.stage, this.urls, cam.name || cam.device);
    const pause = h('button', { class: 'live-toggle', type: 'button', 'aria-pressed': 'false', 'aria-label': 'Pause the live view' }, 'Pause');
    pause.addEventListener('click', () => {
      const paused = pause.getAttribute('aria-pressed') !== 'true';
      pause.setAttribute('aria-pressed', String(paused));
      pause.textContent = paused ? 'Resume' : 'Pause';
      pause.setAttribute('aria-label', paused ? 'Resume the live view' : 'Pause the live view');
      live.setPaused(paused);
    });
    parts.wrap.append(pause);
    const controls = h('div', { class: 'controls', hidden: !this.canControl });
    if (this.canControl) this.buildControls(cam.device, controls, parts);
    const el = h('li', { class: 'camera panel', 'aria-labelledby': id, dataset: { device: cam.device } },
      h('header', {}, h('div', {}, parts.title, parts.meta), parts.badge),
      parts.wrap,
      controls);
    return { el, parts, live };
  }

  buildControls(device, controls, parts) {
    const snap = h('button', { class: 'btn', type: 'button', dataset: { action: 'snapshot' } }, 'Snapshot');
    snap.addEventListener('click', () => busy(snap, () => this.snapshot(device, parts)));
    const duration = h('select', { 'aria-label': 'Recording length', dataset: { role: 'duration' } },
      DURATIONS.map(([v, label]) => h('option', { value: v }, label)));
    const record = h('button', { class: 'btn rec', type: 'button', dataset: { action: 'record' } }, 'Record');
    record.addEventListener('click', () => busy(record, () => this.record(device, duration.value)));
    const stop = h('button', { class: 'btn danger solid', type: 'button', dataset: { action: 'stop' } }, 'Stop');
    stop.addEventListener('click', () => busy(stop, () => this.stop(device)));
    parts.record = record;
    parts.duration = duration;
    parts.stop = stop;
    parts.snap = snap;
    controls.append(snap, record, duration, stop);
  }

  render(card, cam) {
    const { parts } = card;
    parts.title.textContent = cam.name || cam.device;
    const res = cam.status === 'CONNECTED' && cam.resolution ? `${cam.resolution} · ${cam.fps} fps` : '';
    fill(parts.meta, [cam.device, res].filter(Boolean).join(' · '));
    parts.badge.className = `badge ${cam.status}`;
    parts.badge.textContent = cam.status;
    if (parts.record) {
      const connected = cam.status === 'CONNECTED';
      parts.record.hidden = parts.duration.hidden = !!cam.recording;
      parts.stop.hidden = !cam.recording;
      parts.record.disabled = parts.snap.disabled = !connected;
    }
    card.live.name = cam.name || cam.device;
    card.live.update(cam);
    this.tickCard(card, cam);
  }

  tick() {
    for (const [device, card] of this.cards) this.tickCard(card, this.cams.get(device));
  }

  tickCard(card, cam) {
    const rec = card.parts.rec;
    rec.hidden = !cam?.recording;
    if (cam?.recording) rec.textContent = `● REC ${fmtClock((Date.now() - cam.recStart) / 1000)}`;
  }

  async snapshot(device, parts) {
    try {
      const r = await this.rpc.call('take_snapshot', { device }, 60000);
      if (r.status !== 'completed') {
        toast(`Snapshot failed: ${r.error || 'unknown error'}`, 'bad');
        return;
      }
      toast(`Snapshot saved: ${r.filename}`, 'ok');
      this.hooks.snapshotTaken(r.filename);
      const url = await this.urls.file('snapshot', r.filename);
      parts.shot?.remove();
      parts.shot = h('img', { class: 'shot', src: url, alt: `Snapshot ${r.filename}`, dataset: { name: r.filename } });
      parts.wrap.append(parts.shot);
      const shot = parts.shot;
      setTimeout(() => shot.remove(), 8000);
    } catch (e) {
      toast(`Snapshot failed: ${errText(e)}`, 'bad');
    }
  }

  async record(device, seconds) {
    const params = { device };
    if (seconds) params.duration_seconds = Number(seconds);
    try {
      const r = await this.rpc.call('start_recording', params, 60000);
      const cam = this.cams.get(device);
      this.upsert({ ...cam, recording: true, current_file: r.filename }, Date.now());
      toast(`Recording started: ${r.filename}${r.duration ? ` (${r.duration} s)` : ''}`, 'ok');
    } catch (e) {
      toast(`Could not start recording: ${errText(e)}`, 'bad');
    }
  }

  async stop(device) {
    try {
      const r = await this.rpc.call('stop_recording', { device }, 60000);
      const cam = this.cams.get(device);
      this.upsert({ ...cam, recording: false, current_file: null }, null);
      toast(`Recording saved: ${r.filename} (${fmtClock(r.duration)})`, 'ok');
      this.hooks.recordingsChanged();
    } catch (e) {
      toast(`Could not stop recording: ${errText(e)}`, 'bad');
    }
  }
}
