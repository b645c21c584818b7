/**
 * Chat sessions over MSRP, the gateway's sylkRTC extension (README, "Chat sessions"): a
 * session without audio or video whose messages travel as MSRP SENDs carrying CPIM
 * (RFC 3862) end to end. The gateway hands over the CPIM exactly as received, so the client
 * parses it ({@link parseCpim}); it also gives `sender`, `timestamp` and `message_id` read
 * from it.
 *
 *  - outgoing: `session-create {account, session, uri, media: ["chat"]}` (no `sdp`);
 *  - incoming: `incoming-session` with `media: ["chat"]` and no `sdp`, answered with
 *    `session-answer {session}` (no `sdp`) or declined with `session-terminate`;
 *  - `session-message {session, message_id, content, content_type, timestamp}` sends; the
 *    gateway wraps anything but `message/cpim` in CPIM;
 *  - `session-event` `message` (CPIM in `content`) and `disposition-notification`
 *    (`accepted`, `delivered`, `failed`, `displayed`, ...).
 *
 * @module msrp-chat
 */

/**
 * Splits a CPIM message (RFC 3862 section 3): its message headers, then the encapsulated
 * MIME headers, then the content.
 * @param {string} text the CPIM document
 * @returns {{headers: Array<[string, string]>, from: string|null, to: string|null,
 *   datetime: string|null, messageId: string|null, contentType: string|null, body: string}}
 */
export function parseCpim(text) {
  const blocks = [];
  let rest = text;
  for (let i = 0; i < 2; i += 1) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    blocks.push(rest.slice(0, end));
    rest = rest.slice(end + 4);
  }
  const lines = (block) => (block ?? '').split('\r\n').filter(Boolean).map((l) => {
    const colon = l.indexOf(':');
    return [l.slice(0, colon).trim(), l.slice(colon + 1).trim()];
  });
  const headers = lines(blocks[0]);
  const mime = lines(blocks[1]);
  const get = (list, name) => list.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1] ?? null;
  return {
    headers,
    from: get(headers, 'From'),
    to: get(headers, 'To'),
    datetime: get(headers, 'DateTime'),
    messageId: get(headers, 'imdn.Message-ID'),
    contentType: get(mime, 'Content-Type'),
    body: blocks.length === 2 ? rest : '',
  };
}

/**
 * One chat session.
 *
 * Events:
 *  - `state` `{state, reason}`: `incoming`, `progress`, `ringing`, `accepted`,
 *    `established` (the MSRP connection is up: messages can go), `terminated`;
 *  - `message` `{message}`: `{id, sender, timestamp, cpim, raw}` with `cpim` from
 *    {@link parseCpim} and `raw` the CPIM as received;
 *  - `message-state` `{id, state, code, reason}`.
 */
export class ChatSession extends EventTarget {
  /**
   * @param {object} account the `Account` of sylkrtc-client.js
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
  }

  /** Outgoing: `session-create` with `media: ["chat"]`. */
  async _start() {
    await this.client.request('session-create', {
      account: this.account.address,
      session: this.id,
      uri: this.remote.uri,
      media: ['chat'],
    });
  }

  /** Accepts an incoming chat session (`session-answer` without `sdp`). */
  async answer() {
    if (this.direction !== 'incoming' || this.state !== 'incoming') throw new Error('nothing to answer');
    await this.client.request('session-answer', { session: this.id });
  }

  /**
   * Sends `content` (`session-message`); its fate follows as `message-state` events.
   * @param {string} content
   * @param {string} [contentType='text/plain'] `message/cpim` goes out byte for byte
   * @returns {Promise<string>} the message id
   */
  async send(content, contentType = 'text/plain') {
    const id = globalThis.crypto.randomUUID();
    await this.client.request('session-message', {
      session: this.id,
      message_id: id,
      content,
      content_type: contentType,
      timestamp: new Date().toISOString(),
    });
    return id;
  }

  /** Ends (or declines) the session (`session-terminate`). */
  async terminate() {
    if (this.state === 'terminated') return;
    setTimeout(() => this._terminated('Local hangup'), 2000);
    await this.client.request('session-terminate', { session: this.id });
  }

  _handle(msg) {
    switch (msg.event) {
      case 'state':
        if (msg.state === 'terminated') this._terminated(msg.reason ?? null);
        else this._setState(msg.state, msg.reason ?? null);
        break;
      case 'message':
        this.dispatchEvent(new CustomEvent('message', {
          detail: {
            message: {
              id: msg.message_id,
              sender: msg.sender ?? {},
              timestamp: msg.timestamp,
              cpim: parseCpim(msg.content ?? ''),
              raw: msg.content,
            },
          },
        }));
        break;
      case 'disposition-notification':
        this.dispatchEvent(new CustomEvent('message-state', {
          detail: { id: msg.message_id, state: msg.state, code: msg.code, reason: msg.reason },
        }));
        break;
      default:
    }
  }

  _setState(state, reason) {
    if (this.state === 'terminated') return;
    this.state = state;
    this.reason = reason;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, reason } }));
  }

  _terminated(reason) {
    if (this.state === 'terminated') return;
    this._setState('terminated', reason);
    this.client.calls.delete(this.id);
  }
}
