/**
 * The demo page's chat panel: conversations with unread counts, messages with delivery and
 * read ticks, history loaded through `account-sync-conversations` once registered.
 *
 * Ticks: ✓ accepted by the SIP side, ✓✓ delivered, ✓✓ in blue displayed (read), ✗ failed.
 * Opening a conversation marks it read (here, on the account's other devices, and with a
 * `displayed` notification to the sender of each unread message).
 */

const $ = (id) => document.getElementById(id);

/** Shown state per message state; later states win (a late `delivered` after `displayed`). */
const RANK = { pending: 0, accepted: 1, received: 1, delivered: 2, failed: 3, forbidden: 3, error: 3, displayed: 4 };
const TICKS = { pending: '…', accepted: '✓', delivered: '✓✓', displayed: '✓✓', failed: '✗', forbidden: '✗', error: '✗' };

/** Control messages of the journal (SylkServer's), not shown as messages. */
const CONTROL = /^application\/sylk-/;

export class ChatPanel {
  /**
   * @param {{log: (text: string) => void}} hooks
   */
  constructor(hooks) {
    this.log = hooks.log;
    this.account = null;
    /** @type {Map<string, {messages: object[], unread: number}>} by contact */
    this.conversations = new Map();
    /** @type {Map<string, object>} every message by id */
    this.byId = new Map();
    this.current = null;
    $('chat-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    $('chat-new').addEventListener('submit', (e) => {
      e.preventDefault();
      const contact = $('chat-contact').value.trim().replace(/^sips?:/, '');
      if (contact.includes('@')) {
        this.conversation(contact);
        this.open(contact);
        $('chat-contact').value = '';
      }
    });
    this.render();
  }

  /** Follows `account`'s messaging; loads the history once it is registered. */
  attach(account) {
    this.account = account;
    this.conversations.clear();
    this.byId.clear();
    this.current = null;
    let synced = false;
    account.addEventListener('registration', (e) => {
      if (e.detail.state === 'registered' && !synced) {
        synced = true;
        account.syncConversations().catch((err) => this.log(`history: ${err.message}`));
      }
      this.render();
    });
    account.addEventListener('message', (e) => this.add(e.detail.message, true));
    account.addEventListener('message-state', (e) => this.setState(e.detail.id, e.detail.state, e.detail.reason));
    account.addEventListener('history', (e) => {
      for (const m of e.detail.messages) this.replay(m);
      this.log(`history: ${e.detail.messages.length} entries`);
      this.render();
    });
    account.addEventListener('sync', (e) => this.sync(e.detail));
    this.render();
  }

  conversation(contact) {
    let c = this.conversations.get(contact);
    if (!c) {
      c = { messages: [], unread: 0 };
      this.conversations.set(contact, c);
    }
    return c;
  }

  /** A message to show; `live`: it just arrived (counts as unread unless open). */
  add(message, live) {
    if (this.byId.has(message.id)) return;
    this.byId.set(message.id, message);
    const c = this.conversation(message.contact);
    c.messages.push(message);
    if (message.direction === 'incoming' && message.state !== 'displayed') {
      if (live && this.current === message.contact && document.visibilityState !== 'hidden') {
        this.markRead(message.contact);
      } else {
        c.unread += 1;
      }
    }
    if (live) this.log(`message ${message.direction === 'incoming' ? 'from' : 'to'} ${message.contact}`);
    this.render();
  }

  /** One entry of the history: messages, and the journal's read markers and removals. */
  replay(m) {
    if (!CONTROL.test(m.contentType)) {
      this.add(m, false);
      return;
    }
    let content = {};
    try {
      content = JSON.parse(m.content);
    } catch {
      return;
    }
    if (m.contentType === 'application/sylk-conversation-read') this.readLocally(content.contact);
    if (m.contentType === 'application/sylk-message-remove') this.removeLocally(content.message_id);
    if (m.contentType === 'application/sylk-conversation-remove') this.conversations.delete(content.contact);
  }

  setState(id, state, reason) {
    const m = this.byId.get(id);
    if (!m) return;
    if ((RANK[state] ?? 0) >= (RANK[m.state] ?? 0)) m.state = state;
    if (state === 'failed' && reason) m.reason = reason;
    this.render();
  }

  /** What another device of the account did. */
  sync({ type, action, content }) {
    if (type === 'message' && action === 'add' && content) {
      this.add({
        id: content.message_id,
        contact: content.uri,
        contentType: content.content_type,
        content: content.content,
        timestamp: content.timestamp,
        direction: 'outgoing',
        state: 'pending',
      }, false);
    } else if (type === 'conversation' && action === 'read') {
      this.readLocally(content?.contact);
    } else if (type === 'message' && action === 'remove') {
      this.removeLocally(content?.message_id);
    } else if (type === 'conversation' && action === 'remove') {
      this.conversations.delete(content?.contact);
    }
    this.render();
  }

  readLocally(contact) {
    const c = this.conversations.get(contact);
    if (!c) return;
    c.unread = 0;
    for (const m of c.messages) if (m.direction === 'incoming') m.state = 'displayed';
  }

  removeLocally(id) {
    const m = this.byId.get(id);
    if (!m) return;
    this.byId.delete(id);
    const c = this.conversations.get(m.contact);
    if (c) c.messages = c.messages.filter((x) => x.id !== id);
  }

  open(contact) {
    this.current = contact;
    this.markRead(contact);
    this.render();
    $('chat-text').focus();
  }

  /** Marks `contact`'s conversation read: here, on other devices, and to the sender. */
  markRead(contact) {
    const c = this.conversations.get(contact);
    if (!c || !this.account) return;
    const unread = c.messages.filter((m) => m.direction === 'incoming' && m.state !== 'displayed');
    if (unread.length === 0 && c.unread === 0) return;
    for (const m of unread) {
      m.state = 'displayed';
      this.account.sendDisposition(m, 'displayed').catch(() => {});
    }
    c.unread = 0;
    this.account.markConversationRead(contact).catch((err) => this.log(`mark read: ${err.message}`));
  }

  async send() {
    const text = $('chat-text').value;
    if (!text || !this.current || !this.account) return;
    $('chat-text').value = '';
    try {
      const m = await this.account.sendMessage(this.current, text);
      // The disposition may have overtaken the ack.
      const early = this.byId.get(m.id);
      this.add(early ? { ...m, state: early.state } : m, true);
    } catch (err) {
      this.log(`send: ${err.message}`);
      $('chat-error').textContent = err.message;
      return;
    }
    $('chat-error').textContent = '';
  }

  render() {
    const ready = this.account?.registration === 'registered';
    $('chat-send').disabled = !ready || !this.current;
    $('chat-start').disabled = !ready;
    const list = $('chat-list');
    list.replaceChildren();
    for (const [contact, c] of this.conversations) {
      const li = document.createElement('li');
      li.dataset.contact = contact;
      li.className = contact === this.current ? 'current' : '';
      const name = document.createElement('span');
      name.textContent = contact;
      li.append(name);
      if (c.unread > 0) {
        const badge = document.createElement('b');
        badge.className = 'unread';
        badge.textContent = String(c.unread);
        li.append(badge);
      }
      li.addEventListener('click', () => this.open(contact));
      list.append(li);
    }
    const view = $('chat-messages');
    view.replaceChildren();
    $('chat-title').textContent = this.current ?? 'no conversation open';
    for (const m of this.conversations.get(this.current)?.messages ?? []) {
      const li = document.createElement('li');
      li.className = m.direction === 'incoming' ? 'msg-in' : 'msg-out';
      li.dataset.id = m.id;
      li.dataset.state = m.state;
      const text = document.createElement('span');
      text.textContent = m.content;
      li.append(text);
      if (m.direction === 'outgoing') {
        const tick = document.createElement('small');
        tick.className = `tick ${m.state}`;
        tick.textContent = TICKS[m.state] ?? '';
        tick.title = m.reason ? `${m.state}: ${m.reason}` : m.state;
        li.append(tick);
      }
      view.append(li);
    }
    view.lastElementChild?.scrollIntoView({ block: 'nearest' });
  }
}
