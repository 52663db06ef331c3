// Start-up: sign-in, the connection indicator, navigation between the three views, and the wiring of
// notifications to the views.

import { $, toast, errText, closeViewer } from './ui.js';
import { Rpc } from './rpc.js';
import { loadCredential, saveCredential, clearCredential } from './session.js';
import { SignedUrls } from './urls.js';
import { Cameras } from './cameras.js';
import { Files } from './files.js';
import { System } from './system.js';

const VIEWS = ['cameras', 'files', 'system'];
const STATE_TEXT = {
  online: 'Connected',
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

const wsPath = document.querySelector('meta[name="camera-service-ws-path"]')?.content || '/ws';
const rpc = new Rpc(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${wsPath}`);
const urls = new SignedUrls(rpc);
const files = new Files(rpc, urls);
const cameras = new Cameras(rpc, urls, {
  snapshotTaken: () => files.refreshSoon('snapshot'),
  recordingsChanged: () => files.refreshSoon('recording'),
});
const system = new System(rpc);
let signedIn = false;

function currentView() {
  const v = location.hash.replace('#', '');
  return VIEWS.includes(v) ? v : 'cameras';
}

function showView() {
  const view = currentView();
  for (const v of VIEWS) $(`#view-${v}`).hidden = !signedIn || v !== view;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  system.show(signedIn && view === 'system');
  if (signedIn && view === 'files') files.loadAll().catch((e) => toast(errText(e), 'bad'));
}

function showSignIn(message) {
  signedIn = false;
  $('#connecting').hidden = true;
  $('#signin').hidden = false;
  $('#nav').hidden = $('#who').hidden = $('#signout').hidden = true;
  const err = $('#signin-error');
  err.textContent = message || '';
  err.hidden = !message;
  $('#signin-submit').disabled = false;
  showView();
  $('#token').focus();
}

function showApp(result) {
  signedIn = true;
  $('#signin').hidden = $('#connecting').hidden = true;
  $('#nav').hidden = $('#who').hidden = $('#signout').hidden = false;
  $('#who').textContent = `${result.user_id || 'signed in'} · ${result.role}`;
  showView();
}

/** Load what the views show (after sign-in, and again after every reconnect: the daemon may have restarted). */
async function loadAll() {
  try {
    await cameras.load();
    if (currentView() === 'files') await files.loadAll();
    if (currentView() === 'system') await system.refresh();
  } catch (e) {
    toast(`Loading failed: ${errText(e)}`, 'bad');
  }
}

rpc.addEventListener('state', (ev) => {
  const { state, retryIn } = ev.detail;
  const el = $('#conn');
  el.dataset.state = state;
  el.textContent = state === 'reconnecting' && retryIn ? `Reconnecting in ${retryIn} s…` : STATE_TEXT[state];
  if (signedIn && state === 'reconnecting' && retryIn !== undefined) system.event('connection', 'lost; reconnecting');
  if (!signedIn && state === 'reconnecting') {
    $('#connecting').hidden = !$('#signin').hidden;
    const err = $('#signin-error');
    err.textContent = `Cannot reach the camera service at ${location.host}; retrying…`;
    err.hidden = false;
    $('#signin-submit').disabled = false;
  }
});

rpc.addEventListener('authenticated', (ev) => {
  const { result, first } = ev.detail;
  if (first) {
    const role = result.role;
    urls.clear();
    cameras.setRole(role);
    files.setRole(role);
    system.setRole(role);
    showApp(result);
  } else {
    system.event('connection', 're-established and authenticated again');
    cameras.restartLive();
  }
  loadAll();
});

rpc.addEventListener('auth-failed', (ev) => {
  clearCredential();
  cameras.clear();
  closeViewer();
  const m = ev.detail.message;
  showSignIn(/[.!]$/.test(m) ? m : `Sign-in failed: the service did not accept this credential (${m}).`);
});

rpc.addEventListener('notification', (ev) => {
  const { method, params } = ev.detail;
  system.onNotification(method, params);
  cameras.onNotification(method, params);
  if (method === 'recording_status_update' && params.status !== 'STARTED' && currentView() === 'files') {
    files.refreshSoon('recording');
  }
});

$('#signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('#token').value.trim();
  if (!token) return showSignIn('Enter a token or an API key.');
  const type = $('#auth-type').value;
  saveCredential(token, type, $('#remember').checked);
  $('#signin-submit').disabled = true;
  $('#signin-error').hidden = true;
  $('#token').value = '';
  rpc.start({ token, type });
});

$('#signout').addEventListener('click', () => {
  clearCredential();
  rpc.stop();
  cameras.clear();
  closeViewer();
  showSignIn();
});

$('#viewer-close').addEventListener('click', closeViewer);
window.addEventListener('hashchange', showView);

const saved = loadCredential();
if (saved) {
  $('#remember').checked = !!saved.remember;
  $('#connecting').hidden = false;
  rpc.start(saved);
} else {
  showSignIn();
}
