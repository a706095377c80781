// Drives Debian's Chromium (headless, through playwright-core) through the analyst console
// as a person would, and prints what it saw as one JSON object on stdout. The C++ test that
// runs it (tests/e2e/attack_chain_test.cc, tests/console) decides what must be true.
//
//   node console_story.mjs --url URL --name NAME --password PW --shots DIR
//        [--incident ID --approve ACTION_ID --reason TEXT] [--hostile]
//
// Every step leaves a screenshot in DIR. With --hostile it only opens every page and
// reports whether anything an attacker wrote ran or became markup.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

function args() {
  const a = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    if (!v[i].startsWith('--')) throw new Error('unexpected argument ' + v[i]);
    const k = v[i].slice(2);
    if (k === 'hostile') a.hostile = true;
    else a[k] = v[++i];
  }
  for (const k of ['url', 'name', 'password', 'shots']) if (!a[k]) throw new Error('--' + k + ' is required');
  return a;
}

const opt = args();
fs.mkdirSync(opt.shots, { recursive: true });
const out = { steps: [], console_errors: [], csp_violations: 0, dialogs: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
let n = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  // Script errors and messages the page logs; answers the API refused (401 before sign-in,
  // 501 for a part the aggregator does not run) are reported by the page itself.
  page.on('pageerror', (e) => out.console_errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) out.console_errors.push(m.text());
  });
  page.on('dialog', async (d) => { out.dialogs.push(d.message()); await d.dismiss(); });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', () => { window.__cspViolations = (window.__cspViolations || 0) + 1; });
  });
  const shot = async (name) => {
    const file = path.join(opt.shots, String(++n).padStart(2, '0') + '-' + name + '.png');
    await page.screenshot({ path: file, fullPage: true });
    out.steps.push(name);
  };

  // Signed out, the API refuses and the page asks for a name and password.
  await page.goto(opt.url, { waitUntil: 'networkidle' });
  await page.waitForSelector('#signin:not([hidden])');
  await shot('sign-in');
  await page.fill('#signin-name', opt.name);
  await page.fill('#signin-password', opt.password);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#incidents tr.row');
  await shot('incidents');
  out.incident_rows = await page.$$eval('#incidents tr.row', (rows) => rows.map((r) => ({
    id: r.dataset.id, cells: Array.from(r.cells).map((c) => c.textContent),
  })));

  if (opt.hostile) {
    for (const row of out.incident_rows) {
      await page.goto(opt.url + '#/incident/' + encodeURIComponent(row.id));
      await page.waitForSelector('#incident-title');
      await shot('incident-' + row.id.replace(/[^a-z0-9-]/gi, '_'));
    }
    for (const view of ['approvals', 'audit', 'fleet', 'incidents']) {
      await page.goto(opt.url + '#/' + view);
      await page.waitForTimeout(500);
      await shot(view);
    }
    // What an attacker wrote must be text: no element it named exists, nothing it said ran.
    out.injected_elements = await page.evaluate(() => document.querySelectorAll('img, iframe, object, embed, main script').length);
    out.pwned = await page.evaluate(() => window.__pwned === true);
  } else if (opt.incident) {
    await page.click(`#incidents tr.row[data-id="${opt.incident}"]`);
    await page.waitForSelector('#chain text.host');
    out.chain_hosts = await page.$$eval('#chain text.host', (ts) => ts
      .sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index)).map((t) => t.dataset.name));
    out.stages_by_host = await page.$$eval('#chain text.stage', (ts) => {
      const by = {};
      for (const t of ts) (by[t.dataset.host] = by[t.dataset.host] || []).push(t.dataset.technique);
      return by;
    });
    out.title = await page.textContent('#incident-title');
    out.explanation = await page.$$eval('#explanation li', (ls) => ls.map((l) => l.textContent));
    await shot('incident');
    if (opt.approve) {
      await page.fill(`input.reason[data-action="${opt.approve}"]`, opt.reason || 'approved from the console');
      await page.click(`button.approve[data-action="${opt.approve}"]`);
      await page.waitForFunction((id) => {
        const row = document.querySelector(`tr[data-action="${id}"] td.state`);
        return row && row.textContent !== 'proposed';
      }, opt.approve, { timeout: 15000 });
      out.state_after = await page.textContent(`tr[data-action="${opt.approve}"] td.state`);
      await page.click(`button.trail[data-action="${opt.approve}"]`);
      await page.waitForSelector('.trail-list li');
      out.trail = await page.$$eval('.trail-list li', (ls) => ls.map((l) => l.textContent));
      await shot('approved');
      await page.goto(opt.url + '#/approvals');
      await page.waitForSelector('table.actions');
      await shot('approvals');
    }
  }
  out.csp_violations = await page.evaluate(() => window.__cspViolations || 0);
  // Signing out ends the session: the API no longer answers it.
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');
  out.after_sign_out = await page.evaluate(async () => (await fetch('/api/incidents')).status);
  await shot('signed-out');
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
