#!/usr/bin/env node
/**
 * Drives the gateway's demo page (src/web/assets/) in headless Debian Chromium through
 * playwright-core, with fake microphone/camera. Run by tests/browser_e2e.rs.
 *
 * usage: node demo.mjs SCENARIO --url PAGE_URL --address AOR --password PW --out DIR
 *                      [--target URI] [--hangup page|remote] [--seconds S] [--video]
 *                      [--timeout S]
 *
 * scenarios:
 *   call    register, call --target, wait for `established`, measure getStats over S seconds,
 *           press DTMF keys, then hang up from the page (--hangup page) or wait for the
 *           remote side to hang up (--hangup remote).
 *   answer  register, print `REGISTERED`, wait for the incoming-call prompt, answer, measure,
 *           then hang up like `call`.
 *   decline register, print `REGISTERED`, wait for the incoming-call prompt, decline it.
 *   chat    register, wait for the history (`HISTORY`), wait for a live message from
 *           --target, open that conversation (marking it read), send a message and wait for
 *           its ✓ (accepted).
 *   chat-session-start   register, start a chat session (MSRP) with --target, wait for
 *           `established`, send a message and wait for its ✓✓ (delivered), wait for the
 *           answer and read its CPIM as the page parsed it, then end the session.
 *   chat-session-answer  register, print `REGISTERED`, accept the incoming chat session,
 *           wait for a message (its parsed CPIM goes to RESULT), answer it and wait for ✓✓,
 *           then wait until the other side ends the session.
 *   contacts  register, wait for the addressbook, add a contact for --target (`ADDED`),
 *           rename it, wait until its presence dot is known and not green (`WATCHING`),
 *           then until it turns green (the test has --target publish online), publish our
 *           own presence `away` with a note (`PUBLISHED`), wait until the contact's state
 *           says `busy` (the test's answer once --target saw ours), delete the contact.
 *   drop    register, close the WebSocket from the page, check the message, press Reconnect
 *           and wait until registered again (`RECONNECTED`); then wait until the WebSocket
 *           drops (the test stops the gateway) and check the message again.
 *
 * --video ticks the camera box (fake camera) before calling or answering.
 *
 * Output: progress lines, `SCREENSHOT <path>`, and last `RESULT <json>`. Exit 0 when the
 * scenario ran to its end (the Rust test asserts on the JSON), 1 on an error (still with a
 * RESULT line carrying `error`). Every wait is bounded; the whole run by --timeout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    address: { type: 'string' },
    password: { type: 'string' },
    target: { type: 'string' },
    out: { type: 'string' },
    hangup: { type: 'string', default: 'page' },
    seconds: { type: 'string', default: '3' },
    video: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '90' },
  },
});
const scenario = positionals[0];
const result = { scenario, console_errors: [] };
const emit = (line) => process.stdout.write(`${line}\n`);

let browser;
let profile;
let livePage;
async function finish(code) {
  emit(`RESULT ${JSON.stringify(result)}`);
  try {
    await browser?.close();
  } catch {
    // already gone
  }
  if (profile) rmSync(profile, { recursive: true, force: true });
  process.exit(code);
}
setTimeout(() => {
  result.error = `scenario did not finish within ${opt.timeout} s`;
  finish(1);
}, Number(opt.timeout) * 1000).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  if (!['call', 'answer', 'decline', 'drop', 'chat', 'chat-session-start', 'chat-session-answer', 'contacts'].includes(scenario)) throw new Error(`unknown scenario ${scenario}`);
  profile = mkdtempSync(join(tmpdir(), 'sylk-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: false, // --headless=new below, exactly as documented for Debian's chromium
    ignoreHTTPSErrors: true, // the wss listener uses the repo's self-signed dev certificate
    viewport: { width: 1100, height: 900 },
    timeout: 30000,
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--allow-loopback-in-peer-connection',
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  livePage = page;
  page.on('console', (m) => {
    if (m.type() === 'error') result.console_errors.push(m.text());
  });
  page.on('pageerror', (e) => result.console_errors.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(20000);

  const response = await page.goto(opt.url);
  result.http_status = response.status();
  result.csp = response.headers()['content-security-policy'] ?? null;
  await page.waitForSelector('#conn[data-state=ready]');
  emit('CONNECTED');

  await page.fill('#address', opt.address);
  await page.fill('#password', opt.password);
  await page.click('#register');
  await page.waitForSelector('#reg-state[data-state=registered]');
  result.registered = true;
  emit('REGISTERED');

  if (scenario === 'drop') {
    // A drop the page itself causes, then the Reconnect button (re-registers by itself).
    await page.evaluate(() => window.demo.client.close());
    await page.waitForSelector('#banner:not([hidden])');
    result.first_banner = await page.textContent('#banner-text');
    await page.click('#reconnect');
    await page.waitForSelector('#conn[data-state=ready]');
    await page.waitForSelector('#reg-state[data-state=registered]');
    result.banner_hidden_after_reconnect = await page.isHidden('#banner');
    emit('RECONNECTED');
    // Now the gateway goes away.
    await page.waitForSelector('#banner:not([hidden])', { timeout: 30000 });
    result.banner = await page.textContent('#banner-text');
    result.reconnect_visible = await page.isVisible('#reconnect');
    result.conn_state = await page.getAttribute('#conn', 'data-state');
    result.reg_state = await page.textContent('#reg-state');
    await screenshot(page);
    return;
  }

  if (scenario === 'chat') {
    await chat(page);
    return;
  }
  if (scenario === 'contacts') {
    await contacts(page);
    return;
  }
  if (scenario.startsWith('chat-session-')) {
    await chatSession(page, scenario === 'chat-session-start');
    return;
  }

  if (opt.video) await page.check('#video');
  if (scenario === 'decline') {
    await page.waitForSelector('#incoming:not([hidden])', { timeout: 30000 });
    result.incoming_from = await page.textContent('#incoming-from');
    await page.click('#decline');
    await page.waitForSelector('#call-state[data-state=terminated]', { timeout: 10000 });
    result.reason = (await page.textContent('#call-reason')).replace(/^\(|\)$/g, '');
    result.prompt_hidden = await page.isHidden('#incoming');
    result.call_enabled_after = await page.isEnabled('#call');
    await screenshot(page);
    return;
  }
  if (scenario === 'call') {
    await page.fill('#target', opt.target);
    await page.click('#call');
  } else {
    await page.waitForSelector('#incoming:not([hidden])', { timeout: 30000 });
    result.incoming_from = await page.textContent('#incoming-from');
    emit('INCOMING');
    await page.click('#answer');
  }
  await page.waitForFunction(() => window.demo.call?.state === 'established' || window.demo.callStates.includes('terminated'));
  if (!(await page.evaluate(() => window.demo.call?.state === 'established'))) {
    throw new Error(`call not established: ${JSON.stringify(await page.evaluate(() => window.demo.log))}`);
  }
  emit('ESTABLISHED');
  await sleep(1000);
  result.stats_start = await page.evaluate(() => window.demo.call.stats());
  await sleep(Number(opt.seconds) * 1000);
  result.stats_end = await page.evaluate(() => window.demo.call.stats());
  // DTMF from the keypad (RFC 4733 through RTCDTMFSender).
  await page.click('#keypad button[data-key="1"]');
  await page.click('#keypad button[data-key="#"]');
  result.dtmf_sent = await page.evaluate(() => window.demo.dtmfSent);
  // Let the stats table refresh once, then take the picture of a live call.
  await sleep(1200);
  result.stats_shown = {
    codec: await page.textContent('#st-codec'),
    received: await page.textContent('#st-received'),
  };
  result.remote_audio_tracks = await page.evaluate(() => document.getElementById('remote-audio').srcObject?.getAudioTracks().length ?? 0);
  result.local_video_mlines = await page.evaluate(() => (window.demo.call.pc.localDescription.sdp.match(/^m=video/gm) ?? []).length);
  await screenshot(page);

  if (opt.hangup === 'page') await page.click('#hangup');
  await page.waitForSelector('#call-state[data-state=terminated]', { timeout: opt.hangup === 'page' ? 10000 : 40000 });
  result.reason = (await page.textContent('#call-reason')).replace(/^\(|\)$/g, '');
  result.states = await page.evaluate(() => window.demo.callStates);
  result.log = await page.evaluate(() => window.demo.log);
  result.hangup_enabled_after = await page.isEnabled('#hangup');
}

/** The chat panel against a peer (`--target`) that writes to us and gets our answer. */
async function chat(page) {
  const peer = opt.target;
  const unread = () => page.evaluate((c) => window.demo.chat.conversations.get(c)?.unread ?? 0, peer);
  // History arrives by itself after registering (account-sync-conversations).
  await page.waitForFunction((c) => window.demo.chat.conversations.get(c)?.messages.length > 0, peer);
  result.history = await page.evaluate((c) => window.demo.chat.conversations.get(c).messages.map((m) => m.content), peer);
  result.unread_after_history = await unread();
  emit('HISTORY');
  await page.waitForFunction((c) => window.demo.chat.conversations.get(c)?.messages.some((m) => m.content.includes('live from')), peer, { timeout: 30000 });
  result.unread_before_open = await unread();
  result.unread_badge = await page.textContent(`#chat-list li[data-contact="${peer}"] .unread`);
  await page.click(`#chat-list li[data-contact="${peer}"]`);
  result.unread_after_open = await unread();
  await page.fill('#chat-text', 'hello from the page \u{1f600}');
  await page.click('#chat-send');
  await page.waitForSelector('#chat-messages li.msg-out .tick.accepted', { timeout: 15000 });
  result.tick = await page.textContent('#chat-messages li.msg-out .tick');
  result.shown = await page.$$eval('#chat-messages li span', (els) => els.map((e) => e.textContent));
  result.log = await page.evaluate(() => window.demo.log);
  await screenshot(page);
}

/** A chat session over MSRP with another page: started here, or accepted here. */
async function chatSession(page, start) {
  const received = (n) => page.waitForFunction((k) => window.demo.chatSession.received.length >= k, n, { timeout: 20000 });
  if (start) {
    await page.fill('#cs-target', opt.target);
    await page.click('#cs-start');
  } else {
    await page.waitForSelector('#cs-incoming:not([hidden])', { timeout: 30000 });
    result.incoming_from = await page.textContent('#cs-incoming-from');
    emit('INCOMING-CHAT');
    await page.click('#cs-answer');
  }
  await page.waitForSelector('#cs-state[data-state=established]', { timeout: 20000 });
  emit('ESTABLISHED');
  if (!start) await received(1);
  await page.fill('#cs-text', start ? 'hello from the first page \u{1f600}' : 'and hello back from the second');
  await page.click('#cs-send');
  await page.waitForSelector('#cs-messages li.msg-out .tick.delivered', { timeout: 15000 });
  result.tick = await page.textContent('#cs-messages li.msg-out .tick');
  if (start) await received(1);
  result.received = await page.evaluate(() => window.demo.chatSession.received);
  result.shown = await page.$$eval('#cs-messages li', (els) => els.map((e) => e.textContent));
  await screenshot(page);
  if (start) await page.click('#cs-end');
  await page.waitForSelector('#cs-state[data-state=terminated]', { timeout: 20000 });
  result.reason = (await page.textContent('#cs-reason')).replace(/^\(|\)$/g, '');
  result.states = await page.evaluate(() => window.demo.chatSession.states);
  result.log = await page.evaluate(() => window.demo.log);
}

/** The contacts panel: add, rename, presence dots, own presence, delete (`--target`). */
async function contacts(page) {
  const names = () => page.$$eval('#ct-list li .ct-name', (els) => els.map((e) => e.textContent));
  const dot = () => page.getAttribute('#ct-list li .dot', 'data-presence');
  await page.waitForFunction(() => window.demo.contacts.loaded);
  result.contacts_at_start = await names();
  result.empty_note_shown = await page.isVisible('#ct-empty');
  await page.fill('#ct-name', 'Bob');
  await page.fill('#ct-uri', opt.target);
  await page.click('#ct-add');
  await page.waitForFunction(() => [...document.querySelectorAll('#ct-list li .ct-name')].some((e) => e.textContent === 'Bob'));
  result.added = await names();
  result.uri_shown = await page.textContent('#ct-list li .ct-uri');
  result.stored = await page.evaluate(() => [...window.demo.contacts.contacts.values()]);
  emit('ADDED');
  await page.click('#ct-list li .ct-rename');
  await page.fill('#ct-list li .ct-rename-input', 'Robert');
  await page.press('#ct-list li .ct-rename-input', 'Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('#ct-list li .ct-name')].some((e) => e.textContent === 'Robert'));
  result.renamed = await names();
  // Known and not online yet (the other party published offline).
  await page.waitForSelector('#ct-list li .dot[data-presence=closed]', { timeout: 30000 });
  result.dot_before = await dot();
  emit('WATCHING');
  await page.waitForSelector('#ct-list li .dot[data-presence=open]', { timeout: 30000 });
  result.dot_after = await dot();
  result.dot_color = await page.$eval('#ct-list li .dot', (e) => getComputedStyle(e).backgroundColor);
  await page.selectOption('#my-presence', 'away');
  await page.fill('#my-note', 'at lunch');
  await page.click('#presence-publish');
  await page.waitForSelector('#my-presence-state[data-presence=away]');
  result.my_presence = await page.textContent('#my-presence-state');
  emit('PUBLISHED');
  await page.waitForFunction(() => document.querySelector('#ct-list li .ct-info')?.textContent.includes('busy'), null, { timeout: 30000 });
  result.info = await page.textContent('#ct-list li .ct-info');
  await screenshot(page);
  await page.click('#ct-list li .ct-delete');
  await page.waitForFunction(() => document.querySelectorAll('#ct-list li').length === 0);
  result.after_delete = await names();
  // The deletion is in the gateway's store: a fresh fetch has no contact.
  await page.evaluate(() => { window.demo.contacts.loaded = false; return window.demo.account.fetchAddressbook(); });
  await page.waitForFunction(() => window.demo.contacts.loaded);
  result.refetched = await names();
  result.errors = await page.textContent('#ct-error');
  result.log = await page.evaluate(() => window.demo.log);
}

async function screenshot(page) {
  const path = join(opt.out, `demo-${scenario}.png`);
  await page.screenshot({ path, fullPage: true });
  result.screenshot = path;
  emit(`SCREENSHOT ${path}`);
}

main().then(
  () => finish(0),
  async (err) => {
    result.error = String(err?.stack ?? err);
    // What the page saw, for the failure message.
    result.log = await livePage?.evaluate(() => window.demo?.log).catch(() => null);
    finish(1);
  },
);
