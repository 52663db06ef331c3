// The system panel: health, version, resources, storage with its thresholds, MediaMTX, the retention policy
// (admins can change it) and a live log of every notification received. Figures refresh while the panel is shown.

import { h, fill, $, toast, busy, errText, fmtBytes, fmtUptime, fmtTime, factsTable, stateWord } from './ui.js';

const REFRESH_MS = 10000;
const LOG_LIMIT = 200;

export class System {
  constructor(rpc) {
    this.rpc = rpc;
    this.isAdmin = false;
    this.visible = false;
    this.timer = null;
    this.serverInfo = null;
    this.log = $('#event-log');
    $('#events-clear').addEventListener('click', () => fill(this.log));
  }

  setRole(role) {
    this.isAdmin = role === 'admin';
    this.serverInfo = null;
    $('#system-admin-only').hidden = this.isAdmin;
    fill($('#system-cards'));
  }

  show(visible) {
    this.visible = visible;
    clearInterval(this.timer);
    if (!visible || !this.isAdmin) return;
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  /** Add a line to the event log (notifications and connection events). */
  event(kind, text) {
    const now = new Date();
    this.log.prepend(h('li', {}, h('time', { datetime: now.toISOString() }, fmtTime(now)),
      h('span', { class: 'what' }, h('span', { class: 'kind' }, kind), ' ', text)));
    while (this.log.children.length > LOG_LIMIT) this.log.lastElementChild.remove();
  }

  onNotification(method, p) {
    let text;
    if (method === 'camera_status_update') {
      text = `${p.device} ${p.status}${p.name ? ` (${p.name})` : ''}${p.resolution ? ` ${p.resolution}@${p.fps}` : ''}`;
    } else if (method === 'recording_status_update') {
      text = `${p.device} ${p.status} ${p.filename || ''}${p.error ? ` error: ${p.error}` : ''}`;
    } else {
      text = JSON.stringify(p);
    }
    this.event(method, text);
  }

  async refresh() {
    if (!this.isAdmin || this.rpc.state !== 'online') return;
    try {
      const [status, metrics, storage, retention] = await Promise.all([
        this.rpc.call('get_status'),
        this.rpc.call('get_metrics'),
        this.rpc.call('get_storage_info'),
        this.rpc.call('get_retention_policy').catch(() => null),
      ]);
      this.serverInfo = this.serverInfo || await this.rpc.call('get_server_info');
      this.render(status, metrics, storage, retention);
      $('#system-updated').textContent = `Updated ${fmtTime()}`;
    } catch (e) {
      $('#system-updated').textContent = `Update failed: ${errText(e)}`;
    }
  }

  render(status, metrics, storage, retention) {
    const cards = $('#system-cards');
    const card = (title, ...body) => h('section', { class: 'panel', 'aria-label': title }, h('h2', {}, title), ...body);
    const info = this.serverInfo || {};
    const comps = Object.entries(status.components || {});
    const next = [
      card('Health', factsTable([
        ['Overall', stateWord(status.status)],
        ...comps.map(([name, word]) => [name.replace(/_/g, ' '), stateWord(word)]),
      ])),
      card('Service', factsTable([
        ['Version', `${info.version || status.version}${info.git_commit ? ` (${info.git_commit})` : ''}`],
        ['Uptime', fmtUptime(status.uptime)],
        info.architecture && ['Architecture', info.architecture],
        ['Cameras watched', info.max_cameras ?? '–'],
      ])),
      card('Resources', factsTable([
        ['CPU', `${Number(metrics.cpu_usage).toFixed(1)} %`],
        ['Memory', `${Number(metrics.memory_usage).toFixed(1)} MiB`],
        metrics.threads != null && ['Threads', metrics.threads],
        ['Connections', `${metrics.active_connections} open${metrics.total_connections != null ? `, ${metrics.total_connections} since start` : ''}`],
        ['Requests', `${metrics.total_requests} (${(Number(metrics.error_rate) * 100).toFixed(1)} % errors)`],
        metrics.latency_ms && ['Latency p50 / p99', `${metrics.latency_ms.p50} / ${metrics.latency_ms.p99} ms`],
      ])),
      this.storageCard(card, storage),
      card('MediaMTX', factsTable([
        ['State', stateWord(status.components?.mediamtx_controller || 'unknown')],
        ['Details', status.details?.mediamtx || '–'],
      ])),
    ];
    if (retention) {
      // A form someone is editing is kept as it is; the other cards refresh.
      const editing = this.retentionEl?.isConnected && (this.retentionEl.dataset.dirty || this.retentionEl.contains(document.activeElement));
      if (!editing) this.retentionEl = this.retentionCard(card, retention);
      next.push(this.retentionEl);
    }
    // Swap cards one by one, so the one being edited is never detached (it would lose focus).
    next.forEach((el, i) => {
      const cur = cards.children[i];
      if (cur === el) return;
      if (cur) cur.replaceWith(el);
      else cards.append(el);
    });
    while (cards.children.length > next.length) cards.lastElementChild.remove();
  }

  storageCard(card, s) {
    const used = Number(s.usage_percentage ?? s.used_percent);
    const meter = h('meter', { min: 0, max: 100, low: s.warn_threshold, high: s.block_threshold, optimum: 0, value: used,
      'aria-label': 'Disk used' }, `${used} %`);
    const level = s.critical_space_warning ? 'unhealthy' : s.low_space_warning ? 'degraded' : 'healthy';
    const word = s.critical_space_warning ? 'critical' : s.low_space_warning ? 'low' : 'ok';
    return card('Storage', meter, factsTable([
      ['Used', h('span', {}, `${used.toFixed(1)} % of ${fmtBytes(s.total_space)} `, h('span', { class: `state ${level}` }, word))],
      ['Free', fmtBytes(s.available_space)],
      ['Recordings', fmtBytes(s.recordings_size)],
      ['Snapshots', fmtBytes(s.snapshots_size)],
      ['Warn / block at', `${s.warn_threshold} % / ${s.block_threshold} %`],
    ]));
  }

  retentionCard(card, r) {
    const current = r.source === 'policy'
      ? `${r.policy_type}${r.enabled ? '' : ' (disabled)'}${r.max_age_days ? `: older than ${r.max_age_days} days` : ''}${r.max_size_gb ? `: above ${r.max_size_gb} GB` : ''}`
      : `from configuration (recordings after ${r.config.recordings.cleanup_after_days || '∞'} days${r.config.recordings.auto_cleanup ? '' : ', automatic cleanup off'})`;
    const type = h('select', { id: 'retention-type', name: 'policy_type' },
      ['age', 'size', 'manual'].map((t) => h('option', { value: t, selected: r.policy_type === t }, t)));
    const days = h('input', { id: 'retention-days', type: 'number', min: '0.01', step: 'any', value: String(r.max_age_days ?? 30) });
    const gb = h('input', { id: 'retention-gb', type: 'number', min: '0.01', step: 'any', value: String(r.max_size_gb ?? 10) });
    const enabled = h('input', { id: 'retention-enabled', type: 'checkbox', checked: r.enabled !== false });
    const save = h('button', { class: 'btn primary', type: 'submit' }, 'Save policy');
    const sync = () => {
      days.parentElement.hidden = type.value !== 'age';
      gb.parentElement.hidden = type.value !== 'size';
    };
    type.addEventListener('change', sync);
    const dirty = () => { form.closest('section').dataset.dirty = '1'; };
    const form = h('form', { class: 'form-row', 'aria-label': 'Retention policy' },
      h('label', {}, 'Policy', type),
      h('label', {}, 'Max age (days)', days),
      h('label', {}, 'Max size (GB)', gb),
      h('label', { class: 'check' }, enabled, 'Enabled'),
      save);
    form.addEventListener('input', dirty);
    form.addEventListener('change', dirty);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(save, () => this.saveRetention(type.value, enabled.checked, Number(days.value), Number(gb.value)));
    });
    sync();
    return card('Retention', factsTable([['Current', current], ['Cleanup every', fmtUptime(r.cleanup_interval)]]), form);
  }

  async saveRetention(policyType, enabled, days, gb) {
    const params = { policy_type: policyType, enabled };
    if (policyType === 'age') params.max_age_days = days;
    if (policyType === 'size') params.max_size_gb = gb;
    try {
      await this.rpc.call('set_retention_policy', params);
      toast('Retention policy saved', 'ok');
      document.activeElement?.blur();
      this.retentionEl = null;
      await this.refresh();
    } catch (e) {
      toast(`Could not save the policy: ${errText(e)}`, 'bad');
    }
  }
}
