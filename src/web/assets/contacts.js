/**
 * The demo page's contacts panel: the account's addressbook (`account-fetch-addressbook`),
 * add/rename/delete of contacts (`account-update-addressbook`, applied when the gateway
 * confirms with `addressbook-updated`, here or from another connection), a presence dot per
 * contact from the gateway's `presence` events, and the user's own presence
 * (`account-publish-presence`).
 *
 * Dots: green `open`, grey `closed`, hollow `unknown` (not known yet, or the subscription is
 * being made again). A contact with several addresses is open when any of them is.
 */

const $ = (id) => document.getElementById(id);

/** Which of several addresses' states a contact shows: the most present one. */
const RANK = { unknown: 0, closed: 1, open: 2 };

let counter = 0;
/** A fresh id for a new contact or address (the page may be served without crypto.randomUUID). */
function newId(prefix) {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** `sip:` prefixed, as sylkrtc.js stores contact addresses. */
function sipUri(text) {
  const t = text.trim();
  return /^sips?:/i.test(t) ? t : `sip:${t}`;
}

export class ContactsPanel {
  /**
   * @param {{log: (text: string) => void}} hooks
   */
  constructor(hooks) {
    this.log = hooks.log;
    this.account = null;
    /** The addressbook came (after each registration). */
    this.loaded = false;
    /** @type {Map<string, object>} contacts by id, as the gateway has them */
    this.contacts = new Map();
    /** @type {Map<string, Map<string, object>>} presence by contact id, then by address */
    this.presence = new Map();
    /** The contact being renamed, if any. */
    this.renaming = null;
    /** The state last published (`{state, note}`), once acked. */
    this.published = null;
    $('ct-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.add();
    });
    $('presence-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.publish();
    });
    this.render();
  }

  /** Follows `account` (null: none); fetches its addressbook once registered. */
  attach(account) {
    this.account = account;
    this.loaded = false;
    this.contacts.clear();
    this.presence.clear();
    this.renaming = null;
    this.published = null;
    if (!account) {
      this.render();
      return;
    }
    account.addEventListener('registration', (e) => {
      if (e.detail.state === 'registered' && !this.loaded) {
        account.fetchAddressbook().catch((err) => this.error(`addressbook: ${err.message}`));
      }
      if (e.detail.state === 'unregistered') this.loaded = false;
      this.render();
    });
    account.addEventListener('addressbook', (e) => {
      this.contacts.clear();
      for (const c of e.detail.addressbook.contacts ?? []) this.contacts.set(c.id, c);
      this.loaded = true;
      this.log(`addressbook: ${this.contacts.size} contacts`);
      this.render();
    });
    account.addEventListener('addressbook-updated', (e) => this.updated(e.detail));
    account.addEventListener('addressbook-update-failed', (e) => {
      const { type, action, id, error } = e.detail;
      this.error(`${action} ${type} ${id}: ${error}`);
    });
    account.addEventListener('presence', (e) => {
      const p = e.detail;
      if (!this.presence.has(p.contact)) this.presence.set(p.contact, new Map());
      this.presence.get(p.contact).set(p.uri, p);
      this.render();
    });
    this.render();
  }

  /** A confirmed change (made here or on another connection of the account). */
  updated({ type, action, entry }) {
    if (type !== 'contact') return;
    const id = typeof entry === 'string' ? entry : entry?.id;
    if (!id) return;
    if (action === 'delete') {
      this.contacts.delete(id);
      this.presence.delete(id);
    } else {
      this.contacts.set(id, entry);
    }
    this.log(`contact ${action}: ${typeof entry === 'string' ? id : entry.name ?? id}`);
    this.error('');
    this.render();
  }

  /** The state a contact shows, and what else is known (activities, note). */
  stateOf(id) {
    let best = { state: 'unknown', activities: [], note: null };
    for (const p of this.presence.get(id)?.values() ?? []) {
      if ((RANK[p.state] ?? 0) > (RANK[best.state] ?? 0)) best = p;
    }
    return best;
  }

  async add() {
    const name = $('ct-name').value.trim();
    const uri = $('ct-uri').value.trim();
    if (!this.account || !uri.includes('@')) {
      this.error('a contact needs a SIP address (user@domain)');
      return;
    }
    const contact = {
      id: newId('c'),
      name: name || uri.replace(/^sips?:/i, ''),
      uris: [{ id: newId('u'), uri: sipUri(uri), type: 'sip', default: true }],
      dialog: { policy: 'default', subscribe: false },
      presence: { policy: 'default', subscribe: true },
    };
    try {
      await this.account.updateAddressbook('add', 'contact', contact);
      $('ct-name').value = '';
      $('ct-uri').value = '';
    } catch (err) {
      this.error(`add: ${err.message}`);
    }
  }

  async rename(id, name) {
    const c = this.contacts.get(id);
    this.renaming = null;
    if (!c || !name.trim() || name.trim() === c.name) {
      this.render();
      return;
    }
    try {
      await this.account.updateAddressbook('update', 'contact', { ...c, name: name.trim() });
    } catch (err) {
      this.error(`rename: ${err.message}`);
    }
    this.render();
  }

  async remove(id) {
    try {
      await this.account.updateAddressbook('delete', 'contact', id);
    } catch (err) {
      this.error(`delete: ${err.message}`);
    }
  }

  async publish() {
    const state = $('my-presence').value;
    const note = $('my-note').value.trim();
    if (!this.account || !state) return;
    try {
      await this.account.publishPresence(state, note || undefined);
      this.published = { state, note: note || null };
      this.log(`presence published: ${state}${note ? ` (${note})` : ''}`);
    } catch (err) {
      this.error(`publish: ${err.message}`);
    }
    this.render();
  }

  error(text) {
    $('ct-error').textContent = text;
    if (text) this.log(text);
  }

  render() {
    const ready = this.account?.registration === 'registered' && this.loaded;
    $('ct-add').disabled = !ready;
    $('presence-publish').disabled = this.account?.registration !== 'registered';
    const mine = $('my-presence-state');
    mine.textContent = this.published ? this.published.state : 'not published';
    mine.dataset.presence = this.published?.state ?? 'none';
    const list = $('ct-list');
    list.replaceChildren();
    const sorted = [...this.contacts.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
    for (const c of sorted) list.append(this.row(c));
    $('ct-empty').hidden = !ready || this.contacts.size > 0;
  }

  /** One contact: dot, name (or the rename field), address, what is known, buttons. */
  row(c) {
    const li = document.createElement('li');
    li.dataset.id = c.id;
    const p = this.stateOf(c.id);
    li.dataset.presence = p.state;
    const dot = document.createElement('span');
    dot.className = 'dot';
    dot.dataset.presence = p.state;
    dot.title = p.state;
    li.append(dot);
    const who = document.createElement('span');
    who.className = 'ct-who';
    if (this.renaming === c.id) {
      const input = document.createElement('input');
      input.className = 'ct-rename-input';
      input.value = c.name ?? '';
      input.setAttribute('aria-label', `new name for ${c.name}`);
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') this.rename(c.id, input.value);
        if (e.key === 'Escape') {
          this.renaming = null;
          this.render();
        }
      });
      who.append(input);
      queueMicrotask(() => input.focus());
    } else {
      const name = document.createElement('b');
      name.className = 'ct-name';
      name.textContent = c.name ?? c.id;
      who.append(name);
    }
    const uri = document.createElement('small');
    uri.className = 'ct-uri';
    uri.textContent = (c.uris ?? []).map((u) => u.uri.replace(/^sips?:/i, '')).join(', ');
    who.append(uri);
    const extra = [...p.activities, p.note].filter(Boolean).join(' · ');
    if (extra) {
      const info = document.createElement('small');
      info.className = 'ct-info';
      info.textContent = extra;
      who.append(info);
    }
    li.append(who);
    const rename = document.createElement('button');
    rename.type = 'button';
    rename.className = 'ct-rename small';
    rename.textContent = 'Rename';
    rename.addEventListener('click', () => {
      this.renaming = c.id;
      this.render();
    });
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'ct-delete small danger';
    del.textContent = 'Delete';
    del.addEventListener('click', () => this.remove(c.id));
    li.append(rename, del);
    return li;
  }
}
