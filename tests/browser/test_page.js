// The status page as a person sees it, in headless Chromium: a single node is started
// with the admin API, groups are pushed (a counter, a histogram and a summary, a group
// whose last push failed, labels and help that need HTML escaping), and the page is
// checked: badges, folding, buckets and quantiles, relative times, the failure mark,
// the Status tab's flags and cluster table, deleting a group, and no console error,
// failed request or error answer on the way.
//
// A second node under --web.route-prefix checks that the style and script load and that
// "Delete Group" and "Delete All Groups" work there.
//
// Usage: node tests/browser/test_page.js PATH_TO_PUSHGATEWAY
// Env: SCREENSHOT=path.png also saves the Metrics tab there (and the Status tab beside
// it as path-status.png); CHROMIUM overrides /usr/bin/chromium.
'use strict';

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const { freePort, waitReady, stop } = require('../lib/server');

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node test_page.js PATH_TO_PUSHGATEWAY');
  process.exit(2);
}

let passed = 0;
const failures = [];

/// Records one check; the run goes on, and fails at the end if any check failed.
/// Whether `locator` becomes visible (or, with `hidden`, hidden) within 5 s: tabs switch on
/// the `hashchange` event, after the click has returned.
async function becomes(locator, state = 'visible') {
  try {
    await locator.waitFor({ state, timeout: 5000 });
    return true;
  } catch (e) {
    return false;
  }
}

function check(name, ok, detail) {
  if (ok) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failures.push(name);
    console.log(`FAILED - ${name}${detail === undefined ? '' : `: ${detail}`}`);
  }
}

const b64 = s => Buffer.from(s).toString('base64url') || '=';

const ESCAPED_VALUE = `<b>&"'`;
const ESCAPED_HELP = '<script>alert("help")</script> & more';

/// The pushes: method, path, body, the status expected.
const PUSHES = [
  ['PUT', '/metrics/job/batch/instance/host1',
    '# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total{kind="full"} 3\njobs_total{kind="delta"} 12\n', 200],
  ['PUT', '/metrics/job/latency',
    '# HELP req_duration_seconds Request duration.\n# TYPE req_duration_seconds histogram\n' +
    'req_duration_seconds_bucket{le="0.1"} 1\nreq_duration_seconds_bucket{le="1"} 3\n' +
    'req_duration_seconds_bucket{le="+Inf"} 4\nreq_duration_seconds_sum 7.5\nreq_duration_seconds_count 4\n' +
    '# HELP rpc_latency_seconds RPC latency.\n# TYPE rpc_latency_seconds summary\n' +
    'rpc_latency_seconds{quantile="0.5"} 0.25\nrpc_latency_seconds{quantile="0.99"} 0.875\n' +
    'rpc_latency_seconds_sum 12.5\nrpc_latency_seconds_count 40\n', 200],
  ['PUT', '/metrics/job/flaky', '# TYPE flaky_value gauge\nflaky_value 1\n', 200],
  // Refused: jobs_total is a counter in group batch. The refusal sets the group's
  // push_failure_time_seconds later than its push_time_seconds.
  ['POST', '/metrics/job/flaky', '# TYPE jobs_total gauge\njobs_total 1\n', 400],
  ['PUT', `/metrics/job/escape/note@base64/${b64(ESCAPED_VALUE)}`,
    `# HELP esc_metric ${ESCAPED_HELP}\n# TYPE esc_metric gauge\nesc_metric{v="<i>x</i>"} 1\n`, 200],
];

const servers = [];

/// Starts a node with the admin API and `extra` flags, in a fresh directory, and waits
/// until it is ready; `base` is its URL with the route prefix.
async function startServer(prefix, extra) {
  const server = await spawnServer(prefix, extra);
  await waitReady(server.base, server.proc);
  return server;
}

/// [`startServer`] without waiting (the members of a cluster are ready only together).
async function spawnServer(prefix, extra) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgw-browser-'));
  const port = await freePort();
  const log = fs.openSync(path.join(tmp, 'server.log'), 'w');
  const proc = spawn(binary, [
    `--web.listen-address=127.0.0.1:${port}`,
    `--storage.path=${path.join(tmp, 'data')}`,
    '--web.enable-admin-api',
    ...extra,
  ], { stdio: ['ignore', log, log] });
  const server = { proc, tmp, log, base: `http://127.0.0.1:${port}${prefix}` };
  servers.push(server);
  return server;
}

async function push(base, [method, p, body, want]) {
  const r = await fetch(base + p, { method, body });
  if (r.status !== want) throw new Error(`${method} ${p}: ${r.status} ${await r.text()} (expected ${want})`);
}

/// A new page that records console errors, uncaught exceptions, failed requests and
/// error answers in `watch.problems`, every dialog in `watch.dialogs`, and answers a
/// confirmation with `watch.confirm` (declines it while that is null).
async function openPage(browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(10000);
  const watch = { problems: [], dialogs: [], confirm: null };
  page.on('console', m => { if (m.type() === 'error') watch.problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', e => watch.problems.push(`page error: ${e.message}`));
  page.on('requestfailed', r => watch.problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', r => { if (r.status() >= 400) watch.problems.push(`answer ${r.status()}: ${r.url()}`); });
  page.on('dialog', d => {
    watch.dialogs.push(`${d.type()}: ${d.message()}`);
    return d.type() === 'confirm' && watch.confirm ? d.accept() : d.dismiss();
  });
  return { page, watch };
}

/// The panel of the group whose job is `job`.
const groupOf = (page, job) =>
  page.locator('details.group', { has: page.locator(`summary .badge:text-is('job="${job}"')`) });

/// Under a route prefix: the style and script load, and both delete buttons work.
async function underPrefix(browser) {
  const { base } = await startServer('/pgw', ['--web.route-prefix=/pgw']);
  for (const job of ['one', 'two']) await push(base, ['PUT', `/metrics/job/${job}`, 'm 1\n', 200]);
  const { page, watch } = await openPage(browser);
  await page.goto(`${base}/`, { waitUntil: 'load' });
  const navbar = await page.locator('nav.navbar').evaluate(n => getComputedStyle(n).backgroundColor);
  check('prefix: the style is applied', navbar === 'rgb(36, 41, 47)', navbar);
  check('prefix: the script runs', /ago|just now/.test(await page.locator('span.ago').first().textContent()));
  watch.confirm = true;
  await Promise.all([page.waitForEvent('load'), groupOf(page, 'one').locator('button.del').click()]);
  check('prefix: "Delete Group" removes the group', (await page.locator('details.group').count()) === 1 &&
    (await groupOf(page, 'two').count()) === 1);
  await Promise.all([page.waitForEvent('load'), page.locator('#del-all').click()]);
  check('prefix: "Delete All Groups" removes every group', await page.locator('p.empty').isVisible() &&
    await page.locator('#del-all').isDisabled());
  const api = await (await fetch(`${base}/api/v1/metrics`)).json();
  check('prefix: the API lists no group', api.data.length === 0, JSON.stringify(api.data));
  check('prefix: two confirmations asked', watch.dialogs.length === 2, JSON.stringify(watch.dialogs));
  check('prefix: no console error, failed request or error answer', watch.problems.length === 0, watch.problems.join('; '));
  await page.close();
}

/// Three nodes: the Status tab of one lists every member as it answered for itself over
/// the peer channel, the leader marked once; a stopped member is shown unreachable.
async function clusterView(browser) {
  const peers = [await freePort(), await freePort(), await freePort()];
  const members = peers.map((p, i) => `${i + 1}=127.0.0.1:${p}`).join(',');
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    nodes.push(await spawnServer('', [
      `--cluster.node-id=${i + 1}`,
      `--cluster.listen-address=127.0.0.1:${peers[i]}`,
      `--cluster.initial-members=${members}`,
      // Timing that tolerates a loaded machine.
      '--cluster.heartbeat-interval=250ms',
      '--cluster.election-timeout=2s',
    ]));
  }
  for (const n of nodes) await waitReady(n.base, n.proc);
  const { page, watch } = await openPage(browser);
  await page.goto(`${nodes[0].base}/#status`, { waitUntil: 'load' });
  const rows = page.locator('table.cluster tr.member');
  check('cluster: a row per member', (await rows.count()) === 3, String(await rows.count()));
  const answered = await page.locator('table.cluster td.good', { hasText: 'answered' }).count();
  check('cluster: every member answered for itself', answered === 3 && (await page.locator('table.cluster tr.down').count()) === 0,
    await page.locator('table.cluster').textContent());
  check('cluster: one leader marked', (await page.locator('table.cluster tr.member.leader').count()) === 1);
  await stop(nodes[2].proc);
  await page.reload({ waitUntil: 'load' });
  const down = page.locator('table.cluster tr.down');
  check('cluster: the stopped member is marked unreachable', (await down.count()) === 1 && (await down.getAttribute('data-id')) === '3',
    await page.locator('table.cluster').textContent());
  check('cluster: no console error, failed request or error answer', watch.problems.length === 0, watch.problems.join('; '));
  await page.close();
}

async function main() {
  let browser;
  try {
    const { base, tmp } = await startServer('', []);
    for (const p of PUSHES) await push(base, p);
    const status = await (await fetch(`${base}/api/v1/status`)).json();
    const nodeId = String(status.data.cluster.node_id);

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      // Playwright gives every launch a fresh temporary profile (user data directory).
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const { page, watch } = await openPage(browser);
    const dialogs = watch.dialogs;

    await page.goto(`${base}/`, { waitUntil: 'load' });
    check('title', (await page.title()).includes('Pushgateway'), await page.title());

    // Groups and their badges.
    const groups = page.locator('details.group');
    check('one panel per group', (await groups.count()) === 4, await groups.count());
    const group = job => groupOf(page, job);
    for (const job of ['batch', 'latency', 'flaky', 'escape']) {
      check(`group ${job} listed with its job badge`, (await group(job).count()) === 1);
    }
    check('instance badge', await group('batch').locator(`summary .badge:text-is('instance="host1"')`).isVisible());
    const escBadges = await group('escape').locator('summary .badge').allTextContents();
    check('an escaped label value appears literally', escBadges.includes(`note="${ESCAPED_VALUE}"`), JSON.stringify(escBadges));
    check('no markup injected by labels or help', (await page.locator('details.group b, details.group i, details.group script').count()) === 0);

    // Folding: closed by default, opened and closed by clicking the header.
    const hist = group('latency');
    const bucketCell = hist.locator('table.dist th', { hasText: 'Sample values' }).first();
    check('groups are closed at first', (await page.locator('details.group[open]').count()) === 0);
    check('buckets hidden while folded', !(await bucketCell.isVisible()));
    await hist.locator('summary').click();
    check('unfolds on click', await bucketCell.isVisible());
    await hist.locator('summary').click();
    check('folds again on click', !(await bucketCell.isVisible()));
    await hist.locator('summary').click();

    // Histogram buckets and summary quantiles.
    const rows = await hist.locator('table.dist tr').evaluateAll(trs =>
      trs.map(tr => [tr.querySelector('th').textContent.trim(), tr.querySelector('td').textContent.trim()]));
    const has = (th, td) => rows.some(([h, d]) => h === th && d === td);
    for (const [th, td] of [['Sample values \u2264 0.1', '1'], ['Sample values \u2264 1', '3'], ['Sample values \u2264 +Inf', '4'],
      ['Total sample Count', '4'], ['Sample Sum', '7.5'], ['Quantile 0.5', '0.25'], ['Quantile 0.99', '0.875'],
      ['Sample Count', '40'], ['Sample Sum', '12.5']]) {
      check(`row "${th}" = ${td}`, has(th, td), JSON.stringify(rows));
    }
    check('family type and help shown', await hist.locator('.family h3', { hasText: 'req_duration_seconds' }).filter({ hasText: 'HISTOGRAM' }).filter({ hasText: 'Request duration.' }).isVisible());
    check('counter value shown', (await group('batch').locator('table.series td').allTextContents()).includes('12'));
    await group('escape').locator('summary').click();
    check('help needing escaping appears literally', (await group('escape').locator('.help').first().textContent()) === ESCAPED_HELP);

    // Relative times, filled in by the page's script.
    const agos = await page.locator('summary .pushed span.ago').allTextContents();
    check('relative push times filled by script', agos.length === 4 && agos.every(t => /^\((just now|\d+ (second|minute|hour|day)s? ago)\)$/.test(t)), JSON.stringify(agos));
    const stamps = await page.locator('summary .pushed time').allTextContents();
    check('RFC 3339 push times', stamps.length === 4 && stamps.every(t => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(t)), JSON.stringify(stamps));

    // The failed push.
    check('the failing group is marked', (await group('flaky').getAttribute('class')).split(' ').includes('failed') &&
      await group('flaky').locator('summary', { hasText: 'Last push failed!' }).isVisible());
    check('only the failing group is marked', (await page.locator('details.group.failed').count()) === 1);

    check('"Delete All Groups" offered with the admin API', (await page.locator('#del-all-counter').textContent()) === '4');

    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });

    // The Status tab.
    await page.locator('#status-li').click();
    check('Status tab shown', await becomes(page.locator('#status-div')) && await becomes(page.locator('#metrics-div'), 'hidden'));
    const flagRow = name => page.locator('#status-div table.kv tr', { has: page.locator(`th:text-is("${name}")`) }).locator('td');
    check('flags table', (await flagRow('web.enable-admin-api').textContent()) === 'true' &&
      (await flagRow('storage.path').textContent()) === path.join(tmp, 'data'));
    check('build version', /^\d+\.\d+\.\d+/.test(await flagRow('version').textContent()));
    const me = page.locator(`table.cluster tr.member[data-id="${nodeId}"]`);
    check('cluster table has this node', (await me.count()) === 1 && await me.isVisible());
    const meText = await me.textContent();
    check('this node marked as leader, answering', /this node/.test(meText) && /leader/.test(meText) && /answered/.test(meText) &&
      (await me.getAttribute('class')).split(' ').includes('leader'), meText);
    check('no member marked unreachable', (await page.locator('table.cluster tr.down').count()) === 0);
    if (process.env.SCREENSHOT) {
      await page.screenshot({ path: process.env.SCREENSHOT.replace(/(\.png)?$/, '-status.png'), fullPage: true });
    }
    await page.locator('#metrics-li').click();
    check('Metrics tab back', await becomes(page.locator('#metrics-div')));

    // Deleting a group: declining keeps it (and does not fold the panel), accepting removes it.
    const del = group('batch').locator('button.del');
    await del.click();
    check('the delete button asks first', dialogs.length === 1 && dialogs[0].startsWith('confirm'), JSON.stringify(dialogs));
    check('declined: the group stays, still folded', (await group('batch').count()) === 1 && (await group('batch').getAttribute('open')) === null);
    watch.confirm = true;
    await Promise.all([page.waitForEvent('load'), del.click()]);
    check('the page reloads without the group', (await group('batch').count()) === 0 && (await groups.count()) === 3);
    const api = await (await fetch(`${base}/api/v1/metrics`)).json();
    check('the API no longer lists the group', !api.data.some(g => g.labels.job === 'batch') && api.data.length === 3);
    check('only the confirmations were shown', dialogs.length === 2 && dialogs.every(d => d.startsWith('confirm')), JSON.stringify(dialogs));
    check('no console error, failed request or error answer', watch.problems.length === 0, watch.problems.join('; '));
    await page.close();

    await underPrefix(browser);
    await clusterView(browser);
  } finally {
    if (browser) await browser.close();
    for (const server of servers) {
      await stop(server.proc);
      fs.closeSync(server.log);
      if (failures.length) {
        console.log(`--- last lines of ${server.base}'s log:`);
        console.log(fs.readFileSync(path.join(server.tmp, 'server.log'), 'utf8').split('\n').slice(-20).join('\n'));
      }
      fs.rmSync(server.tmp, { recursive: true, force: true });
    }
  }
}

main().then(() => {
  console.log(`${passed} passed, ${failures.length} failed`);
  if (failures.length) {
    console.error(`the status page failed ${failures.length} check(s): ${failures.join('; ')}`);
    process.exit(1);
  }
}, e => {
  console.log(`${passed} passed, ${failures.length + 1} failed`);
  console.error(`the status page test stopped: ${e.stack || e}`);
  process.exit(1);
});
