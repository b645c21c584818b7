/**
 * The demo page: wires the DOM of index.html to the sylkRTC-2 client module.
 *
 * Query parameters: `ice=loopback` trickles only 127.0.0.1 candidates (tests on one host).
 * For tests and curious developers, the live objects are on `window.demo`.
 */

import { ChatPanel } from './chat.js';
import { ChatSessionPanel } from './chat-session.js';
import { ContactsPanel } from './contacts.js';
import { SylkClient, computeHa1, defaultUrl } from './sylkrtc-client.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const loopbackOnly = params.get('ice') === 'loopback';

/** Live state, exposed for tests and the console. */
const demo = {
  client: null,
  account: null,
  call: null,
  incoming: null,
  lastStats: null,
  dtmfSent: '',
  /** Every call state shown, in order (all calls of this page). */
  callStates: [],
  log: [],
  chat: null,
  chatSession: null,
  contacts: null,
};
window.demo = demo;

let wantRegistered = false;
let statsTimer = null;

function log(text) {
  const line = `${new Date().toISOString().slice(11, 23)} ${text}`;
  demo.log.push(line);
  const li = document.createElement('li');
  li.textContent = line;
  $('log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

function setText(id, text, state) {
  const el = $(id);
  el.textContent = text;
  if (state !== undefined) el.dataset.state = state;
}

function refreshButtons() {
  const ready = demo.client?.state === 'ready';
  const registered = demo.account?.registration === 'registered';
  const busy = Boolean(demo.call) || Boolean(demo.incoming);
  $('register').disabled = !ready;
  $('unregister').disabled = !ready || !demo.account || demo.account.registration === 'unregistered';
  $('call').disabled = !ready || !demo.account || busy;
  $('hangup').disabled = !demo.call;
  for (const b of $('keypad').querySelectorAll('button')) b.disabled = demo.call?.state !== 'established';
  $('call').title = registered ? '' : 'calls work without registering, but you will not receive calls';
}

// --- connection --------------------------------------------------------------------------------

async function connect() {
  $('banner').hidden = true;
  const client = new SylkClient(defaultUrl(), {
    candidateFilter: loopbackOnly ? (c) => c.split(' ')[4] === '127.0.0.1' : undefined,
  });
  demo.client = client;
  demo.account = null;
  client.addEventListener('state', (e) => {
    const labels = { connecting: 'connecting…', ready: 'connected', closed: 'disconnected' };
    setText('conn', labels[e.detail.state] ?? e.detail.state, e.detail.state);
    refreshButtons();
  });
  client.addEventListener('close', (e) => onConnectionLost(`The connection to the gateway was lost (code ${e.detail.code}${e.detail.reason ? `, ${e.detail.reason}` : ''}).`));
  log(`connecting to ${client.url}`);
  try {
    await client.connect();
  } catch (err) {
    onConnectionLost(`Could not connect to the gateway: ${err.message}.`);
    return;
  }
  log('connected (sylkRTC-2)');
  if (wantRegistered) await register();
}

function onConnectionLost(text) {
  log(text);
  setText('banner-text', `${text} Calls have ended and the account is no longer registered.`);
  $('banner').hidden = false;
  demo.account = null;
  setText('reg-state', 'unregistered', 'unregistered');
  hideIncoming();
  demo.chatSession.attach(null);
  demo.contacts.attach(null);
  refreshButtons();
}

// --- account -----------------------------------------------------------------------------------

async function register() {
  const address = $('address').value.trim().replace(/^sips?:/, '');
  const password = $('password').value;
  const at = address.indexOf('@');
  if (at < 1 || at === address.length - 1) {
    setText('reg-reason', 'address must be user@domain');
    return;
  }
  try {
    if (demo.account && demo.account.address !== address) {
      await demo.account.remove();
      demo.account = null;
    }
    if (!demo.account) {
      const ha1 = computeHa1(address.slice(0, at), address.slice(at + 1), password);
      const account = await demo.client.addAccount(address, ha1, { userAgent: 'sylk-gateway demo', chat: true });
      account.addEventListener('registration', (e) => {
        setText('reg-state', e.detail.state, e.detail.state);
        setText('reg-reason', e.detail.reason ? `(${e.detail.reason})` : '');
        log(`registration ${e.detail.state}${e.detail.reason ? `: ${e.detail.reason}` : ''}`);
        refreshButtons();
      });
      account.addEventListener('incoming', (e) => onIncoming(e.detail.call));
      account.addEventListener('missed', (e) => log(`missed call from ${e.detail.originator?.uri ?? '?'}`));
      demo.chat.attach(account);
      demo.chatSession.attach(account);
      demo.contacts.attach(account);
      demo.account = account;
    }
    wantRegistered = true;
    await demo.account.register();
  } catch (err) {
    setText('reg-state', 'failed', 'failed');
    setText('reg-reason', `(${err.message})`);
    log(`register: ${err.message}`);
  }
  refreshButtons();
}

async function unregister() {
  wantRegistered = false;
  try {
    await demo.account?.unregister();
  } catch (err) {
    log(`unregister: ${err.message}`);
  }
  refreshButtons();
}

// --- calls -------------------------------------------------------------------------------------

async function localMedia() {
  return navigator.mediaDevices.getUserMedia({ audio: true, video: $('video').checked });
}

function trackCall(call) {
  demo.call = call;
  setText('call-peer', `${call.direction === 'incoming' ? 'from' : 'to'} ${call.remote.uri ?? '?'}`);
  setText('call-reason', '');
  call.addEventListener('state', (e) => {
    const { state, reason } = e.detail;
    demo.callStates.push(state);
    setText('call-state', state, state);
    setText('call-reason', reason ? `(${reason})` : '');
    log(`call ${state}${reason ? `: ${reason}` : ''}`);
    if (state === 'terminated') {
      if (demo.call === call) demo.call = null;
      if (demo.incoming === call) hideIncoming();
      clearInterval(statsTimer);
      statsTimer = null;
      $('remote-video').hidden = true;
    }
    refreshButtons();
  });
  call.addEventListener('track', (e) => {
    $('remote-audio').srcObject = e.detail.stream;
    if (e.detail.track.kind === 'video') {
      $('remote-video').srcObject = e.detail.stream;
      $('remote-video').hidden = false;
    }
  });
  clearInterval(statsTimer);
  statsTimer = setInterval(() => updateStats(call), 1000);
  refreshButtons();
}

async function updateStats(call) {
  const s = await call.stats();
  demo.lastStats = s;
  setText('st-codec', s.codec ?? '-');
  setText('st-sent', String(s.packetsSent));
  setText('st-received', String(s.packetsReceived));
  setText('st-bytes', String(s.bytesReceived));
  setText('st-lost', String(s.packetsLost));
  setText('st-rtt', s.rtt === null ? '-' : `${Math.round(s.rtt * 1000)} ms`);
}

async function startCall() {
  const target = $('target').value.trim();
  if (!target) return;
  let stream;
  try {
    stream = await localMedia();
  } catch (err) {
    log(`microphone: ${err.message}`);
    setText('call-reason', `(no microphone: ${err.message})`);
    return;
  }
  setText('call-state', 'calling', 'calling');
  try {
    const call = await demo.account.call(target, stream);
    if (call.state !== 'terminated') trackCall(call);
  } catch (err) {
    setText('call-state', 'terminated', 'terminated');
    setText('call-reason', `(${err.message})`);
    log(`call: ${err.message}`);
  }
  refreshButtons();
}

function onIncoming(call) {
  log(`incoming call from ${call.remote.uri}`);
  if (demo.call || demo.incoming) {
    log('busy: declining');
    call.terminate().catch(() => {});
    return;
  }
  demo.incoming = call;
  setText('incoming-from', call.remote.display_name ? `${call.remote.display_name} <${call.remote.uri}>` : call.remote.uri);
  $('incoming').hidden = false;
  setText('call-state', 'incoming', 'incoming');
  call.addEventListener('state', (e) => {
    // Until answered (then trackCall shows its states): declined here, or cancelled remotely.
    if (e.detail.state === 'terminated' && demo.call !== call) {
      if (demo.incoming === call) hideIncoming();
      setText('call-state', 'terminated', 'terminated');
      setText('call-reason', e.detail.reason ? `(${e.detail.reason})` : '');
      log(`incoming call ended: ${e.detail.reason ?? ''}`);
    }
  });
  refreshButtons();
}

function hideIncoming() {
  demo.incoming = null;
  $('incoming').hidden = true;
  refreshButtons();
}

async function answer() {
  const call = demo.incoming;
  if (!call) return;
  hideIncoming();
  try {
    const stream = await localMedia();
    trackCall(call);
    await call.answer(stream);
  } catch (err) {
    log(`answer: ${err.message}`);
  }
}

async function decline() {
  const call = demo.incoming;
  hideIncoming();
  await call?.terminate().catch((err) => log(`decline: ${err.message}`));
}

async function hangup() {
  await demo.call?.terminate().catch((err) => log(`hangup: ${err.message}`));
}

// --- wiring ------------------------------------------------------------------------------------

for (const key of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#']) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = key;
  b.dataset.key = key;
  b.addEventListener('click', () => {
    if (demo.call?.sendDtmf(key)) {
      demo.dtmfSent += key;
      log(`DTMF ${key}`);
    }
  });
  $('keypad').append(b);
}
$('account-form').addEventListener('submit', (e) => {
  e.preventDefault();
  register();
});
$('unregister').addEventListener('click', unregister);
$('call-form').addEventListener('submit', (e) => {
  e.preventDefault();
  startCall();
});
$('hangup').addEventListener('click', hangup);
$('answer').addEventListener('click', answer);
$('decline').addEventListener('click', decline);
$('reconnect').addEventListener('click', connect);
demo.chat = new ChatPanel({ log });
demo.chatSession = new ChatSessionPanel({ log });
demo.contacts = new ContactsPanel({ log });
refreshButtons();
connect();
