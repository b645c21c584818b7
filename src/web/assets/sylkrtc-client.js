/**
 * A small sylkRTC-2 client: one WebSocket connection, SIP accounts on it, and audio/video calls
 * through the gateway. Written as a readable example for integrators; the demo page uses it.
 *
 * Protocol summary (see the gateway's sylkRTC spec, sections 3-7):
 *  - connect to `wss://HOST/webrtcgateway/ws` with subprotocol `sylkRTC-2`; the server says
 *    `{"sylkrtc":"ready-event"}` when it accepts requests;
 *  - every request carries a `transaction` id and is answered by `ack` or `error`;
 *  - `ping` every 5 s keeps the connection (and NATs) alive;
 *  - `account-add` (address + HA1 = md5(user:domain:password)), `account-register` →
 *    `account-event`/`registration-state` (registering, registered, failed);
 *  - outgoing call: `session-create` with the offer taken right after setLocalDescription
 *    (no candidates), then one `session-trickle` per candidate and `candidates: []` at the end;
 *    `session-event`/`state` reports progress, ringing, accepted (+ answer SDP), established,
 *    terminated (+ reason);
 *  - incoming call: `account-event`/`incoming-session` with the offer, answered with
 *    `session-answer` (+ trickle) or declined with `session-terminate`.
 *
 * Events are DOM events (`EventTarget`); their payload is in `event.detail`.
 *
 * @example
 * import { SylkClient, computeHa1 } from './sylkrtc-client.js';
 * const client = new SylkClient('wss://gw.example.com/webrtcgateway/ws');
 * await client.connect();
 * const account = await client.addAccount('alice@example.com', computeHa1('alice', 'example.com', 'secret'));
 * account.addEventListener('registration', (e) => console.log(e.detail.state));
 * await account.register();
 * const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
 * const call = await account.call('bob@example.com', stream);
 * call.addEventListener('state', (e) => console.log(e.detail.state, e.detail.reason));
 *
 * @module sylkrtc-client
 */

import { md5 } from './md5.js';
import { ChatSession } from './msrp-chat.js';

export { ChatSession, parseCpim } from './msrp-chat.js';

/** The WebSocket subprotocol spoken by this client. */
export const SUBPROTOCOL = 'sylkRTC-2';

/**
 * The SIP digest HA1 the gateway expects as the account password: md5("user:domain:password").
 * @param {string} user
 * @param {string} domain the realm; for SylkServer-style setups the SIP domain
 * @param {string} password
 * @returns {string} 32 hex digits
 */
export function computeHa1(user, domain, password) {
  return md5(`${user}:${domain}:${password}`);
}

/**
 * The WebSocket URL of the gateway that served the current page.
 * @param {Location} [loc]
 * @returns {string}
 */
export function defaultUrl(loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/webrtcgateway/ws`;
}

let counter = 0;
/** A fresh random id for transactions and sessions. */
function newId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  counter += 1;
  return `${Date.now().toString(16)}-${counter}-${Math.random().toString(16).slice(2)}`;
}

/** Dispatches a CustomEvent `type` with `detail` on `target`. */
function emit(target, type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}

/**
 * One sylkRTC-2 connection.
 *
 * Events:
 *  - `state` `{state}`: `connecting`, `ready`, `closed`;
 *  - `close` `{code, reason, wasClean}`: the WebSocket closed (after `connect()` resolved);
 *  - `message` `{message}`: every message received (for logging).
 */
export class SylkClient extends EventTarget {
  /**
   * @param {string} [url] WebSocket URL, default: the gateway that served this page
   * @param {object} [options]
   * @param {number} [options.pingInterval=5000] ms between `ping` requests (0: none)
   * @param {number} [options.requestTimeout=10000] ms to wait for an ack
   * @param {RTCConfiguration} [options.rtcConfig] for every RTCPeerConnection; default no ICE
   *   servers (the gateway answers with its own candidates)
   * @param {(candidate: string) => boolean} [options.candidateFilter] which local candidates
   *   to trickle (default: all)
   */
  constructor(url = defaultUrl(), options = {}) {
    super();
    this.url = url;
    this.pingInterval = options.pingInterval ?? 5000;
    this.requestTimeout = options.requestTimeout ?? 10000;
    this.rtcConfig = options.rtcConfig ?? { iceServers: [] };
    this.candidateFilter = options.candidateFilter ?? (() => true);
    /** @type {'idle'|'connecting'|'ready'|'closed'} */
    this.state = 'idle';
    /** @type {Map<string, Account>} */
    this.accounts = new Map();
    /** @type {Map<string, Call>} */
    this.calls = new Map();
    this._pending = new Map();
    this._ws = null;
    this._pingTimer = null;
  }

  /**
   * Opens the WebSocket and resolves when the server's `ready-event` arrives. A client
   * connects once: after a `close`, make a new SylkClient (accounts and calls do not survive
   * the connection on the server either).
   * @returns {Promise<void>}
   */
  connect() {
    if (this.state !== 'idle') return Promise.reject(new Error(`cannot connect in state ${this.state}`));
    this._setState('connecting');
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, SUBPROTOCOL);
      this._ws = ws;
      let ready = false;
      ws.onmessage = (e) => {
        let msg;
        try {
          msg = JSON.parse(e.data);
        } catch {
          return;
        }
        emit(this, 'message', { message: msg });
        if (msg.sylkrtc === 'ready-event' && !ready) {
          ready = true;
          this._setState('ready');
          this._startPing();
          resolve();
          return;
        }
        this._handle(msg);
      };
      ws.onclose = (e) => {
        this._stopPing();
        this._ws = null;
        for (const { reject: fail, timer } of this._pending.values()) {
          clearTimeout(timer);
          fail(new Error('connection closed'));
        }
        this._pending.clear();
        // Calls cannot survive the connection: the gateway hangs them up (spec section 3).
        for (const call of [...this.calls.values()]) call._terminated('Connection lost');
        for (const account of this.accounts.values()) account._setRegistration('unregistered', 'Connection lost');
        this.accounts.clear();
        this._setState('closed');
        if (!ready) {
          reject(new Error(`WebSocket closed before ready (code ${e.code})`));
        } else {
          emit(this, 'close', { code: e.code, reason: e.reason, wasClean: e.wasClean });
        }
      };
    });
  }

  /** Closes the connection (the gateway then unregisters accounts and ends calls). */
  close() {
    this._ws?.close(1000, 'bye');
  }

  /**
   * Sends a request and resolves with its `ack` (rejects with the `error` text or on timeout).
   * @param {string} kind e.g. `account-add`
   * @param {object} [fields] the other fields of the request
   * @returns {Promise<object>}
   */
  request(kind, fields = {}) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error('not connected'));
    }
    const transaction = newId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(transaction);
        reject(new Error(`${kind}: no reply`));
      }, this.requestTimeout);
      this._pending.set(transaction, { resolve, reject, timer, kind });
      this._ws.send(JSON.stringify({ sylkrtc: kind, transaction, ...fields }));
    });
  }

  /**
   * Adds a SIP account to this connection (`account-add`).
   * @param {string} address `user@domain`
   * @param {string} ha1 see {@link computeHa1}
   * @param {{displayName?: string, userAgent?: string, chat?: boolean}} [options] `chat`:
   *   take incoming chat sessions over MSRP (the gateway's extension, see msrp-chat.js)
   * @returns {Promise<Account>}
   */
  async addAccount(address, ha1, options = {}) {
    if (this.accounts.has(address)) throw new Error(`account ${address} already added`);
    const fields = { account: address, password: ha1 };
    if (options.displayName) fields.display_name = options.displayName;
    if (options.userAgent) fields.user_agent = options.userAgent;
    if (options.chat) fields.chat = true;
    await this.request('account-add', fields);
    const account = new Account(this, address);
    this.accounts.set(address, account);
    return account;
  }

  _setState(state) {
    this.state = state;
    emit(this, 'state', { state });
  }

  _startPing() {
    if (this.pingInterval > 0) {
      this._pingTimer = setInterval(() => {
        this.request('ping').catch(() => {});
      }, this.pingInterval);
    }
  }

  _stopPing() {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
  }

  /** Routes one message from the server. */
  _handle(msg) {
    switch (msg.sylkrtc) {
      case 'ack':
      case 'error': {
        const p = this._pending.get(msg.transaction);
        if (!p) return;
        this._pending.delete(msg.transaction);
        clearTimeout(p.timer);
        if (msg.sylkrtc === 'ack') p.resolve(msg);
        else p.reject(new Error(`${p.kind}: ${msg.error}`));
        return;
      }
      case 'account-event':
        this.accounts.get(msg.account)?._handle(msg);
        return;
      case 'session-event':
        this.calls.get(msg.session)?._handle(msg);
        return;
      default:
    }
  }
}

/**
 * A SIP account on a connection.
 *
 * Events:
 *  - `registration` `{state, reason}`: `registering`, `registered`, `failed`, `unregistered`;
 *  - `incoming` `{call}`: an incoming {@link Call} waiting for `answer()` or `terminate()`;
 *  - `incoming-chat` `{chat}`: an incoming chat-only {@link ChatSession} (MSRP, needs
 *    `addAccount(..., {chat: true})`) waiting for `answer()` or `terminate()`;
 *  - `missed` `{originator}`: a call that ended before it was answered;
 *  - `message` `{message}`: a received message `{id, contact, displayName, contentType,
 *    content, timestamp, direction: 'incoming', state}` (a `delivered` notification goes
 *    back by itself when the sender asked for one, as sylkrtc.js does);
 *  - `message-state` `{id, state, code, reason}`: a message changed state (`accepted`,
 *    `failed`, `delivered`, `displayed`, ...);
 *  - `history` `{messages}`: what {@link Account#syncConversations} brought, in order;
 *  - `sync` `{type, action, content}`: another connection of the account sent a message,
 *    read or removed a conversation;
 *  - `addressbook` `{addressbook: {contacts, groups, policies}}`: what
 *    {@link Account#fetchAddressbook} brought;
 *  - `addressbook-updated` `{type, action, entry}`: a change made here or on another
 *    connection of the account; `addressbook-update-failed` `{type, action, id, error}`;
 *  - `presence` `{contact, uri, state, activities, note, timestamp}`: what the gateway
 *    learnt of a watched contact (`state`: `open`, `closed`, `unknown`; the gateway's
 *    extension, after each fetch and on every change).
 *
 * Messaging needs the account registered on this connection (`Account not authenticated`).
 */
export class Account extends EventTarget {
  /**
   * @param {SylkClient} client
   * @param {string} address
   */
  constructor(client, address) {
    super();
    this.client = client;
    this.address = address;
    /** @type {'unregistered'|'registering'|'registered'|'failed'} */
    this.registration = 'unregistered';
  }

  /** Sends `account-register`; the outcome arrives as `registration` events. */
  async register() {
    await this.client.request('account-register', { account: this.address });
  }

  /** Sends `account-unregister` (the server sends no event for it, so we report it). */
  async unregister() {
    await this.client.request('account-unregister', { account: this.address });
    this._setRegistration('unregistered', null);
  }

  /** Removes the account from the connection (`account-remove`). */
  async remove() {
    await this.client.request('account-remove', { account: this.address });
    this.client.accounts.delete(this.address);
    this._setRegistration('unregistered', null);
  }

  /**
   * Calls `uri` with the tracks of `stream` (`session-create` + trickle).
   * @param {string} uri `user@domain` or `sip:user@domain`
   * @param {MediaStream} stream local microphone (and camera)
   * @returns {Promise<Call>} resolves once the request is acked; follow `state` events
   */
  async call(uri, stream) {
    const call = new Call(this, newId(), 'outgoing', { uri: uri.replace(/^sips?:/, '') });
    this.client.calls.set(call.id, call);
    try {
      await call._start(stream);
    } catch (err) {
      call._terminated(err.message);
      throw err;
    }
    return call;
  }

  /**
   * Starts a chat session over MSRP with `uri` (`session-create` with `media: ["chat"]`).
   * @param {string} uri `user@domain`
   * @returns {Promise<ChatSession>} resolves once the request is acked; follow `state` events
   */
  async startChat(uri) {
    const chat = new ChatSession(this, newId(), 'outgoing', { uri: uri.replace(/^sips?:/, '') });
    this.client.calls.set(chat.id, chat);
    try {
      await chat._start();
    } catch (err) {
      chat._terminated(err.message);
      throw err;
    }
    return chat;
  }

  /**
   * Sends a message (`account-message`); its state follows as `message-state` events.
   * @param {string} uri `user@domain`
   * @param {string} content
   * @param {string} [contentType='text/plain']
   * @returns {Promise<object>} the message as sent (`{id, contact, ..., state: 'pending'}`)
   */
  async sendMessage(uri, content, contentType = 'text/plain') {
    const message = {
      id: newId(),
      contact: uri.replace(/^sips?:/, ''),
      contentType,
      content,
      timestamp: new Date().toISOString(),
      direction: 'outgoing',
      state: 'pending',
    };
    await this.client.request('account-message', {
      account: this.address,
      uri: message.contact,
      message_id: message.id,
      content,
      content_type: contentType,
      timestamp: message.timestamp,
    });
    return message;
  }

  /**
   * Tells the sender of a received message what became of it (an IMDN).
   * @param {object} message as in a `message` event
   * @param {'delivered'|'displayed'|'failed'|'forbidden'|'error'} state
   */
  async sendDisposition(message, state) {
    await this.client.request('account-disposition-notification', {
      account: this.address,
      uri: message.contact,
      message_id: message.id,
      state,
      timestamp: message.timestamp,
    });
  }

  /**
   * Asks for the stored history (`account-sync-conversations`): a `history` event follows.
   * @param {string} [afterId] only what came after this message
   */
  async syncConversations(afterId) {
    const fields = { account: this.address };
    if (afterId) fields.message_id = afterId;
    await this.client.request('account-sync-conversations', fields);
  }

  /** Marks a conversation read here and on the account's other devices. */
  async markConversationRead(contact) {
    await this.client.request('account-mark-conversation-read', { account: this.address, contact });
  }

  /** Asks for the addressbook (`account-fetch-addressbook`): an `addressbook` event follows. */
  async fetchAddressbook() {
    await this.client.request('account-fetch-addressbook', { account: this.address });
  }

  /**
   * Changes the addressbook (`account-update-addressbook`); the outcome arrives as an
   * `addressbook-updated` or `addressbook-update-failed` event.
   * @param {'add'|'update'|'delete'} action
   * @param {'contact'|'group'|'policy'} type
   * @param {object|string} data the entry (for `delete`, the entry or its id)
   */
  async updateAddressbook(action, type, data) {
    await this.client.request('account-update-addressbook', { account: this.address, action, type, data });
  }

  /**
   * Publishes the user's own presence (`account-publish-presence`, the gateway's extension).
   * @param {'online'|'away'|'busy'|'offline'} state
   * @param {string} [note]
   */
  async publishPresence(state, note) {
    const fields = { account: this.address, state };
    if (note) fields.note = note;
    await this.client.request('account-publish-presence', fields);
  }

  _setRegistration(state, reason) {
    this.registration = state;
    emit(this, 'registration', { state, reason: reason ?? null });
  }

  _handle(msg) {
    switch (msg.event) {
      case 'registration-state':
        this._setRegistration(msg.state, msg.reason);
        break;
      case 'incoming-session': {
        if ((msg.media ?? []).includes('chat') && !msg.sdp) {
          const chat = new ChatSession(this, msg.session, 'incoming', msg.originator ?? {});
          this.client.calls.set(chat.id, chat);
          emit(this, 'incoming-chat', { chat });
          break;
        }
        const call = new Call(this, msg.session, 'incoming', msg.originator ?? {});
        call.remoteSdp = msg.sdp;
        this.client.calls.set(call.id, call);
        emit(this, 'incoming', { call });
        break;
      }
      case 'missed-session':
        emit(this, 'missed', { originator: msg.originator });
        break;
      case 'message': {
        const message = {
          id: msg.message_id,
          contact: msg.sender?.uri,
          displayName: msg.sender?.display_name ?? null,
          contentType: msg.content_type,
          content: msg.content,
          timestamp: msg.timestamp,
          direction: 'incoming',
          state: 'received',
        };
        emit(this, 'message', { message });
        if ((msg.disposition_notification ?? []).includes('positive-delivery')) {
          this.sendDisposition(message, 'delivered').catch(() => {});
        }
        break;
      }
      case 'disposition-notification':
        emit(this, 'message-state', { id: msg.message_id, state: msg.state, code: msg.code, reason: msg.reason });
        break;
      case 'sync-conversations':
        emit(this, 'history', {
          messages: (msg.messages ?? []).map((m) => ({
            id: m.message_id,
            contact: m.contact,
            contentType: m.content_type,
            content: m.content,
            timestamp: m.timestamp,
            direction: m.direction,
            state: m.state,
          })),
        });
        break;
      case 'sync':
        emit(this, 'sync', { type: msg.type, action: msg.action, content: msg.content });
        break;
      case 'addressbook-fetched':
        emit(this, 'addressbook', { addressbook: msg.addressbook ?? { contacts: [], groups: [], policies: [] } });
        break;
      case 'addressbook-updated':
        emit(this, 'addressbook-updated', { type: msg.type, action: msg.action, entry: msg[msg.type] });
        break;
      case 'addressbook-update-failed':
        emit(this, 'addressbook-update-failed', { type: msg.type, action: msg.action, id: msg.id, error: msg.error });
        break;
      case 'presence':
        emit(this, 'presence', {
          contact: msg.contact,
          uri: msg.uri,
          state: msg.state,
          activities: msg.activities ?? [],
          note: msg.note ?? null,
          timestamp: msg.timestamp,
        });
        break;
      default:
    }
  }
}

/**
 * One call (a sylkRTC session) and its RTCPeerConnection.
 *
 * Events:
 *  - `state` `{state, reason}`: `incoming`, `progress`, `proceeding`, `ringing`, `early-media`,
 *    `accepted`, `established`, `terminated`;
 *  - `track` `{stream}`: remote media to play.
 */
export class Call extends EventTarget {
  /**
   * @param {Account} account
   * @param {string} id session id
   * @param {'incoming'|'outgoing'} direction
   * @param {{uri?: string, display_name?: string}} remote the other party
   */
  constructor(account, id, direction, remote) {
    super();
    this.account = account;
    this.client = account.client;
    this.id = id;
    this.direction = direction;
    this.remote = remote;
    this.state = direction === 'incoming' ? 'incoming' : 'new';
    this.reason = null;
    this.remoteSdp = null;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    this.remoteStream = new MediaStream();
    this._trickleReady = false;
    this._trickleQueue = [];
    this._localStream = null;
    this._chain = Promise.resolve();
  }

  /**
   * Answers an incoming call with the tracks of `stream` (`session-answer` + trickle).
   * @param {MediaStream} stream
   */
  async answer(stream) {
    if (this.direction !== 'incoming' || this.state !== 'incoming') throw new Error('nothing to answer');
    this._createPc(stream);
    try {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: this.remoteSdp });
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      const sent = this.client.request('session-answer', { session: this.id, sdp: this.pc.localDescription.sdp });
      this._flushTrickle();
      await sent;
    } catch (err) {
      this.terminate().catch(() => {});
      this._terminated(err.message);
      throw err;
    }
  }

  /**
   * Hangs up, cancels or declines (`session-terminate`). The server then reports `terminated`;
   * like sylkrtc.js we also end locally if that event does not come within 2 s.
   */
  async terminate() {
    if (this.state === 'terminated') return;
    setTimeout(() => this._terminated('Local hangup'), 2000);
    await this.client.request('session-terminate', { session: this.id });
  }

  /**
   * Sends DTMF in the media as RFC 4733 telephone-events (RTCDTMFSender).
   * @param {string} tones digits 0-9, *, #, A-D
   * @param {number} [duration=100] ms per tone
   * @returns {boolean} whether the tones were queued
   */
  sendDtmf(tones, duration = 100) {
    const sender = this.pc?.getSenders().find((s) => s.track?.kind === 'audio');
    if (!sender?.dtmf?.canInsertDTMF) return false;
    sender.dtmf.insertDTMF(tones, duration, 70);
    return true;
  }

  /**
   * A few live numbers from getStats(): audio codec, packets/bytes sent and received, RTT.
   * @returns {Promise<{codec: string|null, packetsSent: number, packetsReceived: number,
   *   bytesSent: number, bytesReceived: number, packetsLost: number, jitter: number|null,
   *   rtt: number|null, videoFramesDecoded: number}>} RTT and jitter in seconds
   */
  async stats() {
    const out = {
      codec: null, packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0,
      packetsLost: 0, jitter: null, rtt: null, videoFramesDecoded: 0,
    };
    if (!this.pc) return out;
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        out.packetsSent += s.packetsSent ?? 0;
        out.bytesSent += s.bytesSent ?? 0;
        if (s.codecId && report.get(s.codecId)) out.codec = report.get(s.codecId).mimeType;
      } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.packetsReceived += s.packetsReceived ?? 0;
        out.bytesReceived += s.bytesReceived ?? 0;
        out.packetsLost += s.packetsLost ?? 0;
        out.jitter = s.jitter ?? out.jitter;
      } else if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.videoFramesDecoded += s.framesDecoded ?? 0;
      } else if (s.type === 'remote-inbound-rtp' && s.kind === 'audio' && s.roundTripTime !== undefined) {
        out.rtt = s.roundTripTime;
      } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && out.rtt === null) {
        out.rtt = s.currentRoundTripTime ?? null;
      }
    });
    return out;
  }

  /** Outgoing: offer, `session-create`, then trickle. */
  async _start(stream) {
    this._createPc(stream);
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const sent = this.client.request('session-create', {
      account: this.account.address,
      session: this.id,
      uri: this.remote.uri,
      sdp: this.pc.localDescription.sdp,
    });
    // The create is on the wire before any trickle (one WebSocket keeps the order).
    this._flushTrickle();
    await sent;
  }

  _createPc(stream) {
    const pc = new RTCPeerConnection(this.client.rtcConfig);
    this.pc = pc;
    this._localStream = stream;
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    pc.onicecandidate = (e) => {
      if (e.candidate && (!e.candidate.candidate || !this.client.candidateFilter(e.candidate.candidate))) return;
      const c = e.candidate
        ? [{ candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex }]
        : [];
      this._trickleQueue.push(c);
      if (this._trickleReady) this._flushTrickle();
    };
    pc.ontrack = (e) => {
      this.remoteStream.addTrack(e.track);
      emit(this, 'track', { stream: this.remoteStream, track: e.track });
    };
  }

  _flushTrickle() {
    this._trickleReady = true;
    while (this._trickleQueue.length) {
      const candidates = this._trickleQueue.shift();
      this.client.request('session-trickle', { session: this.id, candidates }).catch((err) => {
        // sylkrtc.js ends the call when a trickle fails (spec section 7.4).
        if (this.state !== 'terminated') this._terminated(err.message);
      });
    }
  }

  /** Handles session events one after the other (applying an answer is asynchronous). */
  _handle(msg) {
    this._chain = this._chain.then(() => this._process(msg));
  }

  async _process(msg) {
    if (msg.event !== 'state') return;
    if (msg.state === 'terminated') {
      this._terminated(msg.reason ?? null);
      return;
    }
    if ((msg.state === 'accepted' || msg.state === 'early-media') && msg.sdp && this.direction === 'outgoing'
        && this.pc?.signalingState === 'have-local-offer') {
      try {
        await this.pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
      } catch (err) {
        this.terminate().catch(() => {});
        this._terminated(`bad answer: ${err.message}`);
        return;
      }
    }
    this._setState(msg.state, msg.reason ?? null);
  }

  _setState(state, reason) {
    if (this.state === 'terminated') return;
    this.state = state;
    this.reason = reason;
    emit(this, 'state', { state, reason });
  }

  _terminated(reason) {
    if (this.state === 'terminated') return;
    this._setState('terminated', reason);
    this.client.calls.delete(this.id);
    this.pc?.close();
    for (const t of this._localStream?.getTracks() ?? []) t.stop();
  }
}
