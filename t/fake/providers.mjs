#!/usr/bin/env node
// providers.mjs - a fake LiveKit RoomService and OpenAI Realtime hangup
// endpoint for the callstop tests (t/9*.t, t/bench/outbox).  One process, one
// HTTP port on 127.0.0.1.
//
//   node t/fake/providers.mjs [PORT]        (or FAKE_PROVIDERS_PORT; 0 = any)
//
// Prints the port on a line of its own once it listens.  Credentials come
// from the environment (never the command line): LIVEKIT_API_KEY,
// LIVEKIT_API_SECRET, OPENAI_API_KEY.
//
// Provider routes (SPEC 6):
//   POST /twirp/livekit.RoomService/DeleteRoom   Bearer JWT checked with
//        livekit-server-sdk's TokenVerifier (signature, iss, nbf/exp) and
//        video.roomCreate === true; body {"room": "..."} as application/json.
//   POST /twirp/livekit.RoomService/ListParticipants  {"room"}, and
//   POST /twirp/livekit.RoomService/RemoveParticipant {"room", "identity"}
//        (SPEC 11): recorded with provider "livekit_admin" (so that
//        requests('livekit') stays the DeleteRooms); the token must carry
//        video.roomAdmin === true and video.room === the room ("no_room_admin"
//        otherwise, 403).  A room nobody made stubborn is gone: not_found.
//   POST /v1/realtime/calls/{id}/hangup          Bearer OPENAI_API_KEY and an
//   POST /v1/live/sessions/{id}/hangup           Idempotency-Key header
//        (recorded with api "realtime" or "live").
// A request that fails authentication is answered 401 whatever the mode
// (LiveKit: Twirp {"code": "unauthenticated"}), recorded with auth
// "verify_failed" (or "no_room_create", "bad_key", "no_idempotency_key").
//
// Control routes:
//   POST /_control {"livekit": MODE | [MODE, ...], "openai": ..., "delay_ms": N,
//                   "latency_ms": N | {"livekit": N, "openai": N}}
//        MODE: "200" "404" "500" "400" "401" "slow" (200 after delay_ms) "hang"
//        (never answers) "flaky" (500 the first time a room / call id is
//        seen, 200 after).  A list is used one mode per request, its last
//        mode then sticks.  Unnamed providers keep their mode.  latency_ms
//        delays every answer of a provider (default 0; livekit's also
//        delays ListParticipants and RemoveParticipant, unless
//        "livekit_admin" is given for those).
//        "rooms": ROOM_MODE for the rooms deleted from now on, "room_modes":
//        {room: ROOM_MODE} for named ones.  ROOM_MODE (what a DeleteRoom that
//        answers 200/404 leaves): "gone" (default: nothing), "survive" (the
//        first DeleteRoom leaves the room with an agent and a SIP participant;
//        the next one deletes it), "sip" (a SIP participant stays until
//        RemoveParticipant removes it; the room then lists no one until the
//        next DeleteRoom), "never" (participants never go).
//   GET  /_requests[?provider=livekit|openai|livekit_admin|all]   the
//        recorded requests (without provider: all but livekit_admin), oldest
//        first: {seq, provider, method, path, headers, body, time (ms since
//        the epoch), auth, mode, status (null until answered), room/call_id,
//        claims (LiveKit, when verified), closed (a "hang" request: ms since
//        the epoch when the client gave up and closed it; null until then)}
//   POST /_reset    forget the requests; both providers back to "200", no delays
//   GET  /_stats    {"requests": N, "livekit": {STATUS: N}, "openai": {STATUS: N}}
//        (cheap, for benchmarks)
//   GET  /_health   {"ok": true}

import http from 'node:http';
import { TokenVerifier } from 'livekit-server-sdk';

const LK_KEY = process.env.LIVEKIT_API_KEY ?? '';
const LK_SECRET = process.env.LIVEKIT_API_SECRET ?? '';
const OA_KEY = process.env.OPENAI_API_KEY ?? '';

const MODES = new Set(['200', '404', '500', '400', '401', 'slow', 'hang', 'flaky']);
const ROOM_MODES = new Set(['gone', 'survive', 'sip', 'never']);
// room name -> {mode, deletes, parts: [{identity, kind}]}: rooms still there
const rooms = new Map();
const roomModes = { default: 'gone', named: {} };

function roomDeleted(name) {
	const r = rooms.get(name) ?? { mode: roomModes.named[name] ?? roomModes.default, deletes: 0, parts: null };
	r.deletes++;
	const sip = { identity: `sip_${name}`, kind: 'SIP' };
	const agent = { identity: `agent-${name}`, kind: 'AGENT' };
	if (r.mode === 'survive' && r.deletes === 1)
		r.parts = [agent, sip];
	else if (r.mode === 'sip')
		r.parts = r.parts === null ? [sip] : r.parts.filter((p) => p.kind === 'SIP');
	else if (r.mode === 'never')
		r.parts = r.parts ?? [agent, sip];
	else
		r.parts = null;
	if (r.parts === null || (r.mode === 'sip' && r.parts.length === 0 && r.deletes > 1))
		rooms.delete(name);
	else
		rooms.set(name, r);
}
const seen = { livekit: new Set(), openai: new Set() };
const state = { livekit: ['200'], openai: ['200'], delay_ms: 0,
	latency_ms: { livekit: 0, openai: 0, livekit_admin: null } };
let requests = [];
let seq = 0;
const hanging = new Set();

function nextMode(provider) {
	const q = state[provider];
	return q.length > 1 ? q.shift() : q[0];
}

function send(res, rec, status, body) {
	if (rec)
		rec.status = status;
	if (rec?.provider === 'livekit' && (status === 200 || status === 404) && rec.room !== undefined)
		roomDeleted(rec.room);
	const text = JSON.stringify(body);
	res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
	res.end(text);
}

// Answer in the given mode; errors in the provider's own shape.
function answer(res, rec, provider, mode) {
	rec.mode = mode;
	if (state.latency_ms[provider] > 0 && mode !== 'hang') {
		setTimeout(() => answer_now(res, rec, provider, mode), state.latency_ms[provider]);
		return;
	}
	answer_now(res, rec, provider, mode);
}

function answer_now(res, rec, provider, mode) {
	if (mode === 'flaky') {
		const target = provider === 'livekit' ? rec.room : rec.call_id;
		mode = seen[provider].has(target) ? '200' : '500';
		seen[provider].add(target);
	}
	const err = (status, code, msg) => provider === 'livekit'
		? send(res, rec, status, { code, msg })
		: send(res, rec, status, { error: { message: msg, type: 'invalid_request_error', code } });
	switch (mode) {
	case 'hang':
		hanging.add(res);
		rec.closed = null;
		res.on('close', () => {
			hanging.delete(res);
			rec.closed = Date.now();
		});
		return;
	case 'slow':
		setTimeout(() => send(res, rec, 200, {}), state.delay_ms);
		return;
	case '404':
		return provider === 'livekit' ? err(404, 'not_found', 'room not found')
			: err(404, 'not_found', 'call not found');
	case '500':
		return err(500, 'internal', 'fake internal error');
	case '400':
		return err(400, 'invalid_argument', 'fake bad request');
	case '401':
		return err(401, 'unauthenticated', 'fake bad credentials');
	default:
		return send(res, rec, 200, {});
	}
}

// The claims of the request's Bearer JWT into rec.claims (livekit-server-sdk's
// TokenVerifier: signature, iss, nbf/exp); false, with rec.auth
// "verify_failed", if it does not verify.
async function bearerClaims(req, rec) {
	const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
	try {
		if (!m)
			throw new Error('no bearer token');
		rec.claims = await new TokenVerifier(LK_KEY, LK_SECRET).verify(m[1]);
		return true;
	} catch (e) {
		rec.auth = 'verify_failed';
		rec.auth_error = String(e.message ?? e);
		return false;
	}
}

async function livekit(req, res, rec) {
	const twirp = (status, code, msg) => send(res, rec, status, { code, msg });
	let room;
	try {
		room = JSON.parse(rec.body).room;
	} catch {
		room = undefined;
	}
	if (typeof room === 'string')
		rec.room = room;
	if (!await bearerClaims(req, rec))
		return twirp(401, 'unauthenticated', 'invalid token');
	if (rec.claims?.video?.roomCreate !== true) {
		rec.auth = 'no_room_create';
		return twirp(403, 'permission_denied', 'permissions denied');
	}
	rec.auth = 'ok';
	if (!/^application\/json\b/.test(req.headers['content-type'] ?? '') || typeof room !== 'string') {
		rec.auth = 'bad_request';
		return twirp(400, 'malformed', 'expected a JSON body {"room": "..."}');
	}
	return answer(res, rec, 'livekit', nextMode('livekit'));
}

// ListParticipants, RemoveParticipant (SPEC 11): roomAdmin on the room.
async function livekitAdmin(req, res, rec, method) {
	const twirp = (status, code, msg) => send(res, rec, status, { code, msg });
	let b;
	try {
		b = JSON.parse(rec.body);
	} catch {
		b = {};
	}
	rec.room = b.room;
	rec.identity = b.identity;
	rec.method_name = method;
	if (!await bearerClaims(req, rec))
		return twirp(401, 'unauthenticated', 'invalid token');
	if (rec.claims?.video?.roomAdmin !== true || rec.claims?.video?.room !== b.room) {
		rec.auth = 'no_room_admin';
		return twirp(403, 'permission_denied', 'permissions denied');
	}
	rec.auth = 'ok';
	if (typeof b.room !== 'string' || (method === 'RemoveParticipant' && typeof b.identity !== 'string')) {
		rec.auth = 'bad_request';
		return twirp(400, 'malformed', 'expected {"room": "..."}');
	}
	const reply = () => {
		const r = rooms.get(b.room);
		if (method === 'ListParticipants') {
			if (!r)
				return twirp(404, 'not_found', 'requested room does not exist');
			return send(res, rec, 200, { participants: r.parts.map((p, i) => ({ sid: `PA_${i}`,
				identity: p.identity, kind: p.kind, state: 'ACTIVE' })) });
		}
		const i = r ? r.parts.findIndex((p) => p.identity === b.identity) : -1;
		if (i < 0)
			return twirp(404, 'not_found', 'participant not found');
		if (r.mode !== 'never')
			r.parts.splice(i, 1);
		return send(res, rec, 200, {});
	};
	const latency = state.latency_ms.livekit_admin ?? state.latency_ms.livekit;
	if (latency > 0)
		setTimeout(reply, latency);
	else
		reply();
}

function openai(req, res, rec, callId) {
	rec.call_id = callId;
	if ((req.headers.authorization ?? '') !== `Bearer ${OA_KEY}` || OA_KEY === '') {
		rec.auth = 'bad_key';
		return send(res, rec, 401, { error: { message: 'Incorrect API key provided',
			type: 'invalid_request_error', code: 'invalid_api_key' } });
	}
	if (!req.headers['idempotency-key']) {
		rec.auth = 'no_idempotency_key';
		return send(res, rec, 400, { error: { message: 'Idempotency-Key header required',
			type: 'invalid_request_error', code: null } });
	}
	rec.auth = 'ok';
	return answer(res, rec, 'openai', nextMode('openai'));
}

function control(res, body) {
	let c;
	try {
		c = JSON.parse(body || '{}');
	} catch {
		return send(res, null, 400, { error: 'invalid JSON' });
	}
	if (c.rooms !== undefined && !ROOM_MODES.has(c.rooms))
		return send(res, null, 400, { error: `bad room mode: ${JSON.stringify(c.rooms)}` });
	if (c.rooms !== undefined)
		roomModes.default = c.rooms;
	for (const [room, mode] of Object.entries(c.room_modes ?? {})) {
		if (!ROOM_MODES.has(mode))
			return send(res, null, 400, { error: `bad room mode: ${JSON.stringify(mode)}` });
		roomModes.named[room] = mode;
	}
	for (const p of ['livekit', 'openai']) {
		if (c[p] === undefined)
			continue;
		const q = (Array.isArray(c[p]) ? c[p] : [c[p]]).map(String);
		if (q.length === 0 || !q.every((mode) => MODES.has(mode)))
			return send(res, null, 400, { error: `bad mode for ${p}: ${JSON.stringify(c[p])}` });
		state[p] = q;
	}
	if (c.delay_ms !== undefined)
		state.delay_ms = Number(c.delay_ms) || 0;
	if (c.latency_ms !== undefined) {
		const l = typeof c.latency_ms === 'object' ? c.latency_ms
			: { livekit: c.latency_ms, openai: c.latency_ms };
		for (const p of ['livekit', 'openai'])
			if (l[p] !== undefined)
				state.latency_ms[p] = Number(l[p]) || 0;
		if (l.livekit_admin !== undefined)
			state.latency_ms.livekit_admin = l.livekit_admin === null ? null : Number(l.livekit_admin) || 0;
	}
	return send(res, null, 200, state);
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const body = Buffer.concat(chunks).toString('utf8');
		// not new URL(req.url, base): it reads "//twirp/..." as a host
		const [path, query] = req.url.split('?', 2);
		const params = new URLSearchParams(query ?? '');

		if (path === '/_control' && req.method === 'POST')
			return control(res, body);
		if (path === '/_requests' && req.method === 'GET') {
			// the read-backs only when asked for (provider=livekit_admin or
			// all): the older tests count termination requests
			const p = params.get('provider');
			return send(res, null, 200, p === 'all' ? requests : p ? requests.filter((r) => r.provider === p)
				: requests.filter((r) => r.provider !== 'livekit_admin'));
		}
		if (path === '/_reset' && req.method === 'POST') {
			requests = [];
			rooms.clear();
			Object.assign(roomModes, { default: 'gone', named: {} });
			seen.livekit.clear();
			seen.openai.clear();
			Object.assign(state, { livekit: ['200'], openai: ['200'], delay_ms: 0,
				latency_ms: { livekit: 0, openai: 0, livekit_admin: null } });
			return send(res, null, 200, { ok: true });
		}
		if (path === '/_stats' && req.method === 'GET') {
			const st = { requests: requests.length, livekit: {}, openai: {}, livekit_admin: {} };
			for (const r of requests)
				if (st[r.provider])
					st[r.provider][r.status ?? 'none'] = (st[r.provider][r.status ?? 'none'] ?? 0) + 1;
			return send(res, null, 200, st);
		}
		if (path === '/_health')
			return send(res, null, 200, { ok: true });

		const rec = { seq: ++seq, provider: null, method: req.method, path, headers: req.headers, body,
			time: Date.now(), auth: null, mode: null, status: null };
		requests.push(rec);
		const oa = /^\/v1\/(realtime\/calls|live\/sessions)\/([^/]+)\/hangup$/.exec(path);
		const adm = /^\/twirp\/livekit\.RoomService\/(ListParticipants|RemoveParticipant)$/.exec(path);
		if (req.method === 'POST' && path === '/twirp/livekit.RoomService/DeleteRoom') {
			rec.provider = 'livekit';
			livekit(req, res, rec).catch((e) => send(res, rec, 500, { code: 'internal', msg: String(e) }));
		} else if (req.method === 'POST' && adm) {
			rec.provider = 'livekit_admin';
			livekitAdmin(req, res, rec, adm[1])
				.catch((e) => send(res, rec, 500, { code: 'internal', msg: String(e) }));
		} else if (req.method === 'POST' && oa) {
			rec.provider = 'openai';
			rec.api = oa[1] === 'live/sessions' ? 'live' : 'realtime';
			openai(req, res, rec, decodeURIComponent(oa[2]));
		} else {
			send(res, rec, 404, { code: 'bad_route', msg: `no handler for ${req.method} ${path}` });
		}
	});
});

server.keepAliveTimeout = 30000;
server.headersTimeout = 35000;
server.maxConnections = 4096;

const stop = () => {
	for (const res of hanging)
		res.destroy();
	server.close();
	server.closeAllConnections?.();
	process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

const port = Number(process.argv[2] ?? process.env.FAKE_PROVIDERS_PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
	process.stdout.write(`${server.address().port}\n`);
});
