// Pushes made with Node's prom-client (its Pushgateway class: push, pushAdd with and
// without gzip, delete) against this server and upstream's, side by side: the groups each
// ends with must be the same, in /api/v1/metrics (push times aside).
//
// Usage: node tests/node/test_client.js PATH_TO_PUSHGATEWAY PATH_TO_UPSTREAM
'use strict';

const assert = require('assert');
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const client = require('prom-client');
const { freePort, get, waitReady, stop: stopProcess } = require('../lib/server');

async function start(binary, args) {
  const port = await freePort();
  const proc = spawn(binary, [`--web.listen-address=127.0.0.1:${port}`, ...args], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(base);
  return { proc, base };
}

/// Stops a server and resolves once the process has exited.
function stop(server) {
  return stopProcess(server.proc);
}

/// What each server is sent: counter, gauge, histogram and summary, then a push-add
/// (gzip) of one gauge, then a second group deleted again.
async function exercise(base) {
  const registry = new client.Registry();
  const runs = new client.Counter({ name: 'job_runs_total', help: 'Runs.', labelNames: ['kind'], registers: [registry] });
  runs.inc({ kind: 'full' }, 3);
  const last = new client.Gauge({ name: 'job_last_success_unixtime', help: 'Last success.', registers: [registry] });
  last.set(1234.5);
  const duration = new client.Histogram({ name: 'job_duration_seconds', help: 'Duration.', buckets: [0.1, 1, 10], registers: [registry] });
  [0.05, 0.5, 5, 50].forEach(v => duration.observe(v));
  const sizes = new client.Summary({ name: 'job_batch_size', help: 'Batch sizes.', percentiles: [0.5, 0.9], registers: [registry] });
  [1, 2, 3, 4, 5].forEach(v => sizes.observe(v));
  // (A value with a slash would be percent-encoded by prom-client, which upstream redirects.)
  const groupings = { instance: 'host:1', stage: 'nightly' };
  await new client.Pushgateway(base, {}, registry).push({ jobName: 'node', groupings });

  const other = new client.Registry();
  new client.Gauge({ name: 'job_last_success_unixtime', help: 'Last success.', registers: [other] }).set(99);
  const gzip = new client.Pushgateway(base, { headers: { 'Content-Encoding': 'gzip' } }, other);
  await gzip.pushAdd({ jobName: 'node', groupings });

  const gone = new client.Pushgateway(base, {}, other);
  await gone.push({ jobName: 'node', groupings: { instance: 'gone' } });
  await gone.delete({ jobName: 'node', groupings: { instance: 'gone' } });

  const doc = JSON.parse((await get(`${base}/api/v1/metrics`)).body);
  // Push times differ between the two servers: compared only for presence.
  for (const group of doc.data) {
    for (const family of Object.values(group)) {
      if (family && family.time_stamp) family.time_stamp = 'set';
    }
    for (const name of ['push_time_seconds', 'push_failure_time_seconds']) {
      for (const m of group[name].metrics) m.value = m.value === '0' ? '0' : 'set';
    }
  }
  doc.data.sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));
  return doc;
}

async function main() {
  const [ours, upstream] = process.argv.slice(2);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgw-node-'));
  const servers = [];
  try {
    servers.push(await start(ours, [`--storage.path=${path.join(tmp, 'data')}`]));
    servers.push(await start(upstream, ['--persistence.file=']));
    const [mine, reference] = [await exercise(servers[0].base), await exercise(servers[1].base)];
    assert.strictEqual(mine.data.length, 1, JSON.stringify(mine));
    const group = mine.data[0];
    assert.strictEqual(group.job_last_success_unixtime.metrics[0].value, '99', 'push-add replaced the gauge');
    assert.ok(group.job_runs_total && group.job_duration_seconds && group.job_batch_size, 'push-add kept the others');
    assert.deepStrictEqual(mine, reference);
    console.log('prom-client push, push-add (gzip) and delete: same groups as upstream');
  } finally {
    // The data directory is removed only once every server has exited: RocksDB may
    // still be writing files while the process shuts down.
    await Promise.all(servers.map(stop));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
