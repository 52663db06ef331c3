// Recordings and snapshots: paged lists with sizes, durations and thumbnails; play a recording in the page,
// view a snapshot, download, delete (after confirmation). Media elements load through short-lived signed URLs.

import { h, fill, $, breakable, toast, busy, errText, fmtBytes, fmtClock, fmtDate, confirmAction, showViewer } from './ui.js';

const KINDS = {
  recording: { list: 'list_recordings', del: 'delete_recording', pageSize: 10, label: 'Recording', id: 'recording' },
  snapshot: { list: 'list_snapshots', del: 'delete_snapshot', pageSize: 12, label: 'Snapshot', id: 'snapshot' },
};

export class Files {
  constructor(rpc, urls) {
    this.rpc = rpc;
    this.urls = urls;
    this.canDelete = false;
    this.offset = { recording: 0, snapshot: 0 };
    this.timers = {};
    $('#files-refresh').addEventListener('click', (ev) => busy(ev.currentTarget, () => this.loadAll()));
  }

  setRole(role) {
    this.canDelete = role === 'operator' || role === 'admin';
    this.offset = { recording: 0, snapshot: 0 };
  }

  loadAll() {
    return Promise.all([this.load('recording'), this.load('snapshot')]);
  }

  /** Reload one list soon (bursts of notifications cause one reload). */
  refreshSoon(kind) {
    clearTimeout(this.timers[kind]);
    this.timers[kind] = setTimeout(() => this.load(kind).catch(() => {}), 300);
  }

  async load(kind) {
    const k = KINDS[kind];
    let r = await this.rpc.call(k.list, { limit: k.pageSize, offset: this.offset[kind] });
    if (r.files.length === 0 && this.offset[kind] > 0 && r.total > 0) {
      // The page emptied (files deleted): show the last page that has files.
      this.offset[kind] = Math.max(0, Math.floor((r.total - 1) / k.pageSize) * k.pageSize);
      r = await this.rpc.call(k.list, { limit: k.pageSize, offset: this.offset[kind] });
    }
    $(`#${kind}s-total`).textContent = r.total ? `(${r.total})` : '';
    $(`#${kind}s-empty`).hidden = r.total > 0;
    const list = $(`#${kind}-list`);
    fill(list, r.files.map((f) => (kind === 'recording' ? this.recordingItem(f) : this.snapshotItem(f))));
    this.pager(kind, r.total);
  }

  pager(kind, total) {
    const k = KINDS[kind];
    const nav = $(`#${kind}s-pager`);
    const off = this.offset[kind];
    if (total <= k.pageSize) return fill(nav);
    const go = (delta) => () => { this.offset[kind] = Math.max(0, off + delta); this.load(kind).catch((e) => toast(errText(e), 'bad')); };
    const prev = h('button', { class: 'btn', type: 'button', disabled: off === 0, onclick: go(-k.pageSize) }, 'Previous');
    const next = h('button', { class: 'btn', type: 'button', disabled: off + k.pageSize >= total, onclick: go(k.pageSize) }, 'Next');
    fill(nav, h('span', {}, `${off + 1}–${Math.min(off + k.pageSize, total)} of ${total}`), prev, next);
  }

  recordingItem(f) {
    const facts = [fmtDate(f.modified_time), f.duration != null ? fmtClock(f.duration) : null, fmtBytes(f.file_size),
      f.width && f.height ? `${f.width}×${f.height}` : null].filter(Boolean).join(' · ');
    const play = h('button', { class: 'btn', type: 'button', dataset: { action: 'play' } }, 'Play');
    play.addEventListener('click', () => busy(play, () => this.play(f)));
    return h('li', { dataset: { name: f.filename } },
      h('span', { class: 'name' }, breakable(f.filename)),
      h('span', { class: 'facts' }, facts),
      h('span', { class: 'actions' }, play, this.downloadButton('recording', f), this.deleteButton('recording', f)));
  }

  snapshotItem(f) {
    const img = h('img', { alt: `Snapshot ${f.filename}`, loading: 'lazy', decoding: 'async' });
    this.urls.thumb('snapshot', f.filename, () => img.isConnected)
      .then((u) => { img.src = u; })
      .catch((e) => { if (e) img.alt = 'Preview unavailable'; });
    const open = h('button', { class: 'thumb', type: 'button', 'aria-label': `View ${f.filename}` }, img);
    open.addEventListener('click', () => this.view(f));
    const facts = [fmtDate(f.modified_time), fmtBytes(f.file_size), f.width && f.height ? `${f.width}×${f.height}` : null]
      .filter(Boolean).join(' · ');
    return h('li', { dataset: { name: f.filename } }, open,
      h('span', { class: 'name' }, breakable(f.filename)),
      h('span', { class: 'facts' }, facts),
      h('span', { class: 'actions' }, this.downloadButton('snapshot', f), this.deleteButton('snapshot', f)));
  }

  downloadButton(kind, f) {
    const b = h('button', { class: 'btn', type: 'button', dataset: { action: 'download' } }, 'Download');
    b.addEventListener('click', () => busy(b, async () => {
      try {
        const url = await this.urls.file(kind, f.filename);
        const a = h('a', { href: url, download: f.filename, hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
      } catch (e) {
        toast(`Download failed: ${errText(e)}`, 'bad');
      }
    }));
    return b;
  }

  deleteButton(kind, f) {
    if (!this.canDelete) return null;
    const k = KINDS[kind];
    const b = h('button', { class: 'btn danger', type: 'button', dataset: { action: 'delete' } }, 'Delete');
    b.addEventListener('click', async () => {
      const ok = await confirmAction(`Delete ${k.label.toLowerCase()}?`, `${f.filename} will be removed from the box. This cannot be undone.`);
      if (!ok) return;
      await busy(b, async () => {
        try {
          await this.rpc.call(k.del, { filename: f.filename });
          this.urls.forget(kind, f.filename);
          toast(`${k.label} deleted: ${f.filename}`, 'ok');
          await this.load(kind);
        } catch (e) {
          toast(`Could not delete ${f.filename}: ${errText(e)}`, 'bad');
        }
      });
    });
    return b;
  }

  /** Play a recording in the page; the player seeks with Range requests on the signed URL. */
  async play(f) {
    let url;
    try {
      url = await this.urls.file('recording', f.filename);
    } catch (e) {
      return toast(`Cannot play ${f.filename}: ${errText(e)}`, 'bad');
    }
    const video = h('video', { controls: true, autoplay: true, playsInline: true, preload: 'metadata', src: url, 'aria-label': `Recording ${f.filename}` });
    video.muted = true;
    video.dataset.name = f.filename;
    let renewed = false;
    video.addEventListener('error', async () => {
      // A URL that expired while playing: fetch a fresh one once and continue where it stopped.
      if (renewed) return toast(`Cannot play ${f.filename}`, 'bad');
      renewed = true;
      const at = video.currentTime;
      this.urls.forget('recording', f.filename);
      try {
        video.src = await this.urls.file('recording', f.filename);
        video.currentTime = at;
        video.play().catch(() => {});
      } catch (e) {
        toast(`Cannot play ${f.filename}: ${errText(e)}`, 'bad');
      }
    });
    const facts = h('p', { class: 'facts' }, [fmtDate(f.modified_time), f.duration != null ? fmtClock(f.duration) : null, fmtBytes(f.file_size)].filter(Boolean).join(' · '));
    showViewer(f.filename, [video, facts], () => video.removeAttribute('src'));
  }

  async view(f) {
    try {
      const url = await this.urls.file('snapshot', f.filename);
      const facts = h('p', { class: 'facts' }, [fmtDate(f.modified_time), fmtBytes(f.file_size), f.width && f.height ? `${f.width}×${f.height}` : null].filter(Boolean).join(' · '));
      showViewer(f.filename, [h('img', { src: url, alt: `Snapshot ${f.filename}` }), facts]);
    } catch (e) {
      toast(`Cannot show ${f.filename}: ${errText(e)}`, 'bad');
    }
  }
}
