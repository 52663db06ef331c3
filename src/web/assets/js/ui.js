// Small DOM and formatting helpers shared by the views. No framework: elements are built with h() and updated in
// place, so a live video is never torn down by a re-render.

/** Element builder: h('button', {class: 'btn', onclick: f}, 'Label'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** A file name that wraps after `_` and `-` rather than in the middle of a word. */
export function breakable(name) {
  const span = h('span', {});
  for (const part of String(name).split(/(?<=[_-])/)) span.append(part, h('wbr'));
  return span;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Seconds as 1:05 or 1:02:03. */
export function fmtClock(s) {
  s = Math.max(0, Math.floor(Number(s) || 0));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (x) => String(x).padStart(2, '0');
  return hh ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

/** Seconds as "3 d 4 h", "5 h 2 min", "42 s". */
export function fmtUptime(s) {
  s = Math.floor(Number(s) || 0);
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), mi = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${hr} h`;
  if (hr) return `${hr} h ${mi} min`;
  if (mi) return `${mi} min ${s % 60} s`;
  return `${s} s`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export function fmtDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? (iso || '–') : dateFmt.format(d);
}

export function fmtTime(d = new Date()) {
  return timeFmt.format(d);
}

/** A short-lived message in the corner (also read out by screen readers). */
export function toast(message, kind = 'info', ms = 5000) {
  const el = h('div', { class: `toast ${kind}` }, message);
  $('#toasts').append(el);
  setTimeout(() => el.remove(), kind === 'bad' ? ms * 2 : ms);
}

/** Ask before something irreversible; resolves true when confirmed. */
export function confirmAction(title, text, okLabel = 'Delete') {
  const dlg = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
  });
}

/** Show content (a video, a picture) in the viewer dialog; `onclose` runs when it closes. */
export function showViewer(title, content, onclose) {
  const dlg = $('#viewer');
  $('#viewer-title').textContent = title;
  fill($('#viewer-body'), content);
  dlg.addEventListener('close', () => { fill($('#viewer-body')); onclose?.(); }, { once: true });
  dlg.showModal();
}

export function closeViewer() {
  const dlg = $('#viewer');
  if (dlg.open) dlg.close();
}

/** Disable a button while `work` runs. */
export async function busy(button, work) {
  button.disabled = true;
  try { return await work(); } finally { button.disabled = false; }
}

/** Message of an RPC or network error, for people. */
export function errText(e) {
  if (!e) return 'Unknown error';
  const reason = e.data?.reason ? `: ${e.data.reason}` : '';
  return `${e.message || String(e)}${reason}`;
}

/** A rows-of-facts table: [[label, value], ...]; values may be nodes. */
export function factsTable(rows) {
  return h('table', { class: 'facts-table' },
    h('tbody', {}, rows.filter(Boolean).map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))));
}

export function stateWord(word) {
  return h('span', { class: `state ${word}` }, word);
}
