// Starting and stopping a server under test from Node's test scripts (tests/node,
// tests/browser): a free loopback port, waiting for readiness, stopping and waiting for
// the process to exit (so that its data directory can be removed after).
'use strict';

const http = require('http');
const net = require('net');

/// A TCP port free on 127.0.0.1 at the time of asking.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/// GET over plain HTTP: `{ status, body }`.
function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, res => {
      let body = '';
      res.on('data', c => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

/// Resolves once `${base}/-/ready` answers 200; fails after 30 s, or at once when `proc`
/// (if given) has exited.
async function waitReady(base, proc) {
  for (let i = 0; i < 300; i++) {
    if (proc && proc.exitCode !== null) throw new Error(`the server exited with code ${proc.exitCode}`);
    try {
      if ((await get(`${base}/-/ready`)).status === 200) return;
    } catch (e) {
      // not listening yet
    }
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error(`${base} not ready`);
}

/// Stops a process and resolves once it has exited.
function stop(proc) {
  return new Promise(resolve => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill();
  });
}

module.exports = { freePort, get, waitReady, stop };
