/**
 * The demo page's chat session panel: one chat session over MSRP at a time (the gateway's
 * extension, see msrp-chat.js), started here or accepted from a prompt, with every received
 * message's CPIM parsed in the page (sender, time and content type from its headers).
 *
 * For tests, the panel is `window.demo.chatSession`: `session`, `states`, `received` (parsed
 * CPIM of each message) and `sent` (`{id, text, state}`).
 */

const $ = (id) => document.getElementById(id);

/** What the sender sees of a message's state. */
const TICKS = { pending: '…', accepted: '✓', delivered: '✓✓', displayed: '✓✓', failed: '✗' };

export class ChatSessionPanel {
  /** @param {{log: (text: string) => void}} options */
  constructor({ log }) {
    this.log = log;
    this.account = null;
    /** @type {import('./msrp-chat.js').ChatSession|null} */
    this.session = null;
    this.incoming = null;
    this.states = [];
    this.received = [];
    this.sent = [];
    $('cs-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.start($('cs-target').value.trim());
    });
    $('cs-send-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.send($('cs-text').value);
    });
    $('cs-end').addEventListener('click', () => this.session?.terminate().catch((err) => this.log(`chat end: ${err.message}`)));
    $('cs-answer').addEventListener('click', () => this.answer());
    $('cs-decline').addEventListener('click', () => {
      const chat = this.incoming;
      this.hidePrompt();
      chat?.terminate().catch(() => {});
    });
    this.refresh();
  }

  /** Follows `account`'s incoming chat sessions (null: the connection is gone). */
  attach(account) {
    this.account = account;
    account?.addEventListener('incoming-chat', (e) => this.onIncoming(e.detail.chat));
    if (!account) this.hidePrompt();
    this.refresh();
  }

  async start(uri) {
    if (!uri || !this.account || this.session) return;
    try {
      this.track(await this.account.startChat(uri));
    } catch (err) {
      this.showState('terminated', err.message);
      this.log(`chat session: ${err.message}`);
    }
  }

  onIncoming(chat) {
    this.log(`incoming chat session from ${chat.remote.uri}`);
    if (this.session || this.incoming) {
      chat.terminate().catch(() => {});
      return;
    }
    this.incoming = chat;
    $('cs-incoming-from').textContent = chat.remote.uri ?? '?';
    $('cs-incoming').hidden = false;
    chat.addEventListener('state', (e) => {
      if (e.detail.state === 'terminated' && this.incoming === chat) this.hidePrompt();
    });
    this.showState('incoming');
  }

  async answer() {
    const chat = this.incoming;
    if (!chat) return;
    this.hidePrompt();
    this.track(chat);
    await chat.answer().catch((err) => this.log(`chat answer: ${err.message}`));
  }

  hidePrompt() {
    this.incoming = null;
    $('cs-incoming').hidden = true;
  }

  track(chat) {
    this.session = chat;
    $('cs-messages').replaceChildren();
    $('cs-peer').textContent = `${chat.direction === 'incoming' ? 'from' : 'with'} ${chat.remote.uri ?? '?'}`;
    chat.addEventListener('state', (e) => {
      this.showState(e.detail.state, e.detail.reason);
      this.log(`chat session ${e.detail.state}${e.detail.reason ? `: ${e.detail.reason}` : ''}`);
      if (e.detail.state === 'terminated' && this.session === chat) this.session = null;
      this.refresh();
    });
    chat.addEventListener('message', (e) => this.onMessage(e.detail.message));
    chat.addEventListener('message-state', (e) => {
      const m = this.sent.find((s) => s.id === e.detail.id);
      if (!m || m.state === 'delivered' || m.state === 'displayed') return;
      m.state = e.detail.state;
      const tick = document.querySelector(`#cs-messages li[data-id="${m.id}"] .tick`);
      if (tick) {
        tick.className = `tick ${m.state}`;
        tick.textContent = TICKS[m.state] ?? '';
        tick.title = e.detail.reason ? `${m.state}: ${e.detail.reason}` : m.state;
      }
    });
    this.showState(chat.state);
    this.refresh();
  }

  onMessage(message) {
    const { cpim } = message;
    this.received.push(cpim);
    const li = document.createElement('li');
    li.className = 'msg-in';
    const head = document.createElement('small');
    head.className = 'cpim-head';
    head.textContent = `${cpim.from ?? '?'} · ${cpim.datetime ?? ''} · ${cpim.contentType ?? ''}`;
    const body = document.createElement('span');
    body.className = 'cpim-body';
    body.textContent = cpim.body;
    li.append(head, body);
    $('cs-messages').append(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  async send(text) {
    if (!text || this.session?.state !== 'established') return;
    $('cs-text').value = '';
    try {
      const id = await this.session.send(text);
      const m = { id, text, state: 'pending' };
      this.sent.push(m);
      const li = document.createElement('li');
      li.className = 'msg-out';
      li.dataset.id = id;
      const body = document.createElement('span');
      body.textContent = text;
      const tick = document.createElement('small');
      tick.className = 'tick pending';
      tick.textContent = TICKS.pending;
      li.append(body, tick);
      $('cs-messages').append(li);
    } catch (err) {
      this.log(`chat send: ${err.message}`);
    }
  }

  showState(state, reason) {
    this.states.push(state);
    const el = $('cs-state');
    el.textContent = state;
    el.dataset.state = state;
    $('cs-reason').textContent = reason ? `(${reason})` : '';
  }

  refresh() {
    $('cs-start').disabled = !this.account || Boolean(this.session);
    $('cs-end').disabled = !this.session;
    $('cs-send').disabled = this.session?.state !== 'established';
  }
}
