// receiver.mjs - a webhook receiver for the t/E*.t tests (SPEC 9): every
// POST to /hook/NAME is verified with the official Standard Webhooks library
// (npm "standardwebhooks", the reference implementation), against each
// secret it was given, and recorded.
//
//   node receiver.mjs [PORT]    prints the port on its first line
//
//   POST /_control {"secrets": {"NAME": "whsec_..."}, "status": [CODE, ...] (the
//        first for the next request, the last sticky), "delay_ms": N}
//   GET  /_requests   the recorded requests, oldest first: {seq, path, id,
//        timestamp, signature, body (parsed), raw, verified: {NAME: bool},
//        status (null until answered), time, answered (ms, as time)}
//   POST /_reset      forget the requests; answer 204, no delay
//   $RECEIVER_CONTROL  the /_control body to start with
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const state = { secrets: {}, status: [204], delay_ms: 0 };
// a restarted receiver (FakeReceiver's stop/start) keeps its secrets and modes
if (process.env.RECEIVER_CONTROL)
	Object.assign(state, JSON.parse(process.env.RECEIVER_CONTROL));
let requests = [];
let seq = 0;
const open = new Set();

function send(res, rec, status, obj) {
	if (rec) {
		rec.status = status;
		rec.answered = Date.now();
	}
	const body = obj === null ? '' : JSON.stringify(obj);
	res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
	res.end(body);
}

function verify(raw, headers) {
	const out = {};
	for (const [name, secret] of Object.entries(state.secrets)) {
		try {
			new Webhook(secret).verify(raw, {
				'webhook-id': headers['webhook-id'],
				'webhook-timestamp': headers['webhook-timestamp'],
				'webhook-signature': headers['webhook-signature'],
			});
			out[name] = true;
		} catch (e) {
			out[name] = false;
		}
	}
	return out;
}

function hook(req, res, path, raw) {
	let body = null;
	try {
		body = JSON.parse(raw);
	} catch (e) {
		body = null;
	}
	const rec = { seq: ++seq, path, id: req.headers['webhook-id'] ?? null,
		timestamp: req.headers['webhook-timestamp'] ?? null,
		signature: req.headers['webhook-signature'] ?? null, body, raw,
		verified: verify(raw, req.headers), status: null, time: Date.now() };
	requests.push(rec);
	const status = state.status.length > 1 ? state.status.shift() : state.status[0];
	const answer = () => send(res, rec, status, status === 204 ? null : { ok: status < 300 });
	if (state.delay_ms > 0)
		setTimeout(answer, state.delay_ms);
	else
		answer();
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const raw = Buffer.concat(chunks).toString('utf8');
		const path = req.url.split('?', 1)[0];

		if (path === '/_control' && req.method === 'POST') {
			const c = JSON.parse(raw || '{}');
			if (c.secrets !== undefined)
				state.secrets = c.secrets;
			if (c.status !== undefined)
				state.status = Array.isArray(c.status) ? c.status.map(Number) : [Number(c.status)];
			if (c.delay_ms !== undefined)
				state.delay_ms = Number(c.delay_ms) || 0;
			return send(res, null, 200, state);
		}
		if (path === '/_requests' && req.method === 'GET')
			return send(res, null, 200, requests);
		if (path === '/_reset' && req.method === 'POST') {
			requests = [];
			Object.assign(state, { status: [204], delay_ms: 0 });
			return send(res, null, 200, { ok: true });
		}
		if (req.method === 'POST' && path.startsWith('/hook/'))
			return hook(req, res, path, raw);
		return send(res, null, 404, { error: `no handler for ${req.method} ${path}` });
	});
});
server.on('connection', (s) => {
	open.add(s);
	s.on('close', () => open.delete(s));
});
server.keepAliveTimeout = 30000;

const stop = () => {
	for (const s of open)
		s.destroy();
	server.close();
	process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
	process.stdout.write(`${server.address().port}\n`);
});
