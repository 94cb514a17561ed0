#!/usr/bin/env node
// Clients of callstop's compatibility aliases (SPEC 4), written the way the
// Heppu, Trillet and admin API documentation writes them: Node's built-in
// fetch, no packages.
//
//     node clients.mjs SCENARIO
//
// The same scenarios, environment and JSON summary as t/clients/clients.py:
//   status-cancel  CALL_ID, EXPECT_CALL
//   cancel-retry   CALL_ID, FIRST_TIMEOUT_MS, TIMEOUT_MS, EXPECT_FIRST_TIMEOUT
//   stop-agent     AGENT_ID, PAGE_LIMIT
//   batch          BATCH_ID, EXPECT_DETAILS
//   admin          OPENAI_CALL_ID
// plus CALLSTOP_BASE_URL, CALLSTOP_API_KEY, CALLSTOP_WORKSPACE_ID,
// CALLSTOP_ADMIN_TOKEN; TLS is verified against NODE_EXTRA_CA_CERTS;
// IDEMPOTENCY_KEY, if set, goes with every Heppu-style request (SPEC 8).
// Exits 1 on the first mismatch.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

const BASE_URL = process.env.CALLSTOP_BASE_URL;
const API_KEY = process.env.CALLSTOP_API_KEY ?? '';
const WORKSPACE_ID = process.env.CALLSTOP_WORKSPACE_ID ?? '';
const ADMIN_TOKEN = process.env.CALLSTOP_ADMIN_TOKEN ?? '';
const ACTIVE = ['initiated', 'connecting', 'ringing', 'active'];

// ---- Heppu-style calls API ----------------------------------------------------

const heppuHeaders = () => ({
  'x-api-key': API_KEY,
  'Content-Type': 'application/json',
  ...(process.env.IDEMPOTENCY_KEY ? { 'Idempotency-Key': process.env.IDEMPOTENCY_KEY } : {}),
});

async function getCall(callId) {
  const response = await fetch(`${BASE_URL}/api/v1/calls/${callId}`, { headers: heppuHeaders() });
  assert.equal(response.status, 200, `GET /api/v1/calls/${callId} status`);
  const { data } = await response.json();
  return data;
}

function cancelCall(callId, timeoutMs = 10000) {
  return fetch(`${BASE_URL}/api/v1/calls/${callId}`, {
    method: 'DELETE',
    headers: heppuHeaders(),
    signal: AbortSignal.timeout(timeoutMs),
  });
}

async function listCalls(params) {
  const query = new URLSearchParams(params);
  const response = await fetch(`${BASE_URL}/api/v1/calls?${query}`, { headers: heppuHeaders() });
  assert.equal(response.status, 200, `GET /api/v1/calls?${query} status`);
  const { data } = await response.json();
  return data;
}

const cancelledBody = (id) => ({ data: { id, status: 'cancelled' }, message: 'Call cancelled successfully' });

async function statusCancel() {
  const callId = process.env.CALL_ID;
  const call = await getCall(callId);
  assert.deepEqual(call, JSON.parse(process.env.EXPECT_CALL), 'the call before');
  if (!ACTIVE.includes(call.status)) {
    return { action: 'skipped', status: call.status };
  }
  const response = await cancelCall(callId);
  assert.equal(response.status, 200, 'DELETE status');
  assert.deepEqual(await response.json(), cancelledBody(callId), 'DELETE body');
  const after = await getCall(callId);
  assert.equal(after.status, 'cancelled', 'status after');
  assert.ok(after.endedAt, 'endedAt set after the cancel');
  const rest = ({ status, endedAt, endReason, ...others }) => others;
  assert.deepEqual(rest(after), rest(call), 'the other fields');
  return { action: 'cancelled', status: after.status, endedAt: after.endedAt };
}

// DELETE the call; on a timeout, retry.  A retry that finds the call already
// cancelled means an attempt that timed out went through.
async function cancelWithRetry(callId, timeoutsMs, backoffMs = 200) {
  const attempts = [];
  let inFlight = 0;
  for (let attempt = 0; attempt < timeoutsMs.length; attempt++) {
    const timeoutMs = timeoutsMs[attempt];
    let response;
    try {
      response = await cancelCall(callId, timeoutMs);
    } catch (err) {
      if (err.name === 'TimeoutError' || err.name === 'AbortError') {
        attempts.push({ timeout: err.name });
        await sleep(backoffMs * 2 ** attempt);
        continue;
      }
      throw err;
    }
    const body = await response.json();
    attempts.push({ status: response.status });
    if (response.headers.get('Idempotent-Replayed') === 'true') attempts.at(-1).replayed = true;
    if (response.status === 409 && response.headers.has('Retry-After') && inFlight < 20) {
      // Idempotency-Key (SPEC 8): an earlier attempt is still running; its
      // answer is coming - ask again, without using up an attempt
      inFlight++;
      attempt--;
      await sleep(Number(response.headers.get('Retry-After')) * 1000);
      continue;
    }
    if (response.status === 200) {
      assert.deepEqual(body, cancelledBody(callId), 'DELETE body');
      return attempts;
    }
    if (attempt > 0 && response.status === 400) {
      assert.deepEqual(body, { error: { message: 'Cannot cancel call with status: cancelled', code: 400 } },
        'retry after a timeout: the earlier attempt cancelled it');
      return attempts;
    }
    assert.fail(`DELETE answered ${response.status}: ${JSON.stringify(body)}`);
  }
  assert.fail(`gave up after ${timeoutsMs.length} attempts: ${JSON.stringify(attempts)}`);
}

async function cancelRetry() {
  const callId = process.env.CALL_ID;
  const first = Number(process.env.FIRST_TIMEOUT_MS ?? 1);
  const timeout = Number(process.env.TIMEOUT_MS ?? 5000);
  const attempts = await cancelWithRetry(callId, [first, timeout, timeout, timeout]);
  if (process.env.EXPECT_FIRST_TIMEOUT === '1') {
    assert.ok('timeout' in attempts[0], `the first attempt was meant to time out: ${JSON.stringify(attempts)}`);
  }
  if (process.env.EXPECT_FIRST_TIMEOUT === '0') {
    assert.deepEqual(attempts, [{ status: 200 }], 'one attempt, 200');
  }
  assert.equal((await getCall(callId)).status, 'cancelled', 'status after');
  return { attempts };
}

async function stopAgent() {
  const agentId = process.env.AGENT_ID;
  const limit = Number(process.env.PAGE_LIMIT ?? 20);
  const calls = [];
  let page = 1;
  let pages = 0;
  for (;;) {
    const data = await listCalls({ agentId, page, limit });
    assert.deepEqual([data.pagination.page, data.pagination.limit], [page, limit], 'pagination');
    calls.push(...data.calls);
    pages++;
    if (!data.pagination.hasMore) break;
    page++;
  }
  for (const c of calls) assert.equal(c.agentId, agentId, 'agentId of a listed call');
  const times = calls.map((c) => c.createdAt);
  assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
  assert.equal(new Set(calls.map((c) => c.id)).size, calls.length, 'no call twice');

  const cancelled = [];
  for (const c of calls.filter((c) => ACTIVE.includes(c.status))) {
    const response = await cancelCall(c.id);
    assert.equal(response.status, 200, `DELETE ${c.id}`);
    assert.deepEqual(await response.json(), cancelledBody(c.id), `DELETE ${c.id} body`);
    cancelled.push(c.id);
  }
  for (const status of ACTIVE) {
    const { calls: left } = await listCalls({ agentId, status, limit: 100 });
    assert.deepEqual(left, [], `no ${status} call left`);
  }
  return { listed: calls.length, pages, cancelled: cancelled.sort() };
}

// ---- Trillet-style batch API ----------------------------------------------------

const trilletHeaders = () => ({
  'x-api-key': API_KEY,
  'x-workspace-id': WORKSPACE_ID,
  'Content-Type': 'application/json',
});

async function batch() {
  const batchId = process.env.BATCH_ID;
  const details = JSON.parse(process.env.EXPECT_DETAILS);
  const url = `${BASE_URL}/v1/api/batch-calls/${batchId}`;

  let response = await fetch(url, { method: 'DELETE', headers: trilletHeaders() });
  assert.equal(response.status, 200, 'DELETE status');
  assert.deepEqual(await response.json(),
    { batchId, status: 'cancelled', message: 'Batch cancelled successfully', details }, 'DELETE body');

  response = await fetch(url, { headers: trilletHeaders() });
  assert.equal(response.status, 200, 'GET status');
  const result = await response.json();
  assert.deepEqual(result, { batchId, status: 'cancelled', message: 'Batch status', details }, 'GET body');

  response = await fetch(url, { method: 'DELETE', headers: trilletHeaders() });
  assert.deepEqual([response.status, await response.json()],
    [200, { batchId, status: 'cancelled', message: 'Batch already in terminal state: cancelled', details }],
    'DELETE again');
  return { status: result.status, details: result.details };
}

// ---- admin ----------------------------------------------------------------------

async function admin() {
  const callId = process.env.OPENAI_CALL_ID;
  const url = `${BASE_URL}/api/v1/admin/cancel/${callId}`;
  let response = await fetch(url, { method: 'POST', headers: { 'X-Admin-Token': ADMIN_TOKEN } });
  assert.deepEqual([response.status, await response.json()], [200, { ok: true, message: `Call ${callId} canceled` }],
    'admin cancel');
  response = await fetch(url, { method: 'POST', headers: { 'X-Admin-Token': ADMIN_TOKEN } });
  assert.deepEqual([response.status, await response.json()],
    [404, { ok: false, error: 'Call not found or already ended' }], 'admin cancel again');
  return { ok: true };
}

const SCENARIOS = {
  'status-cancel': statusCancel,
  'cancel-retry': cancelRetry,
  'stop-agent': stopAgent,
  batch,
  admin,
};

const name = process.argv[2];
if (!(name in SCENARIOS)) {
  console.error(`usage: node clients.mjs {${Object.keys(SCENARIOS).join('|')}}`);
  process.exit(2);
}
try {
  const summary = await SCENARIOS[name]();
  console.log(JSON.stringify(summary));
} catch (err) {
  console.error(`${name}: FAILED: ${err.message}`);
  if (err.actual !== undefined || err.expected !== undefined) {
    console.error(`  got:  ${JSON.stringify(err.actual)}\n  want: ${JSON.stringify(err.expected)}`);
  }
  process.exit(1);
}
