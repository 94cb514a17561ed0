#!/usr/bin/env python3
"""Clients of callstop's compatibility aliases (SPEC 4), written the way the
Heppu, Trillet and admin API documentation writes them: Python with requests.

    clients.py SCENARIO

Scenarios (each asserts what it gets and exits 1 on the first mismatch;
its last stdout line is a JSON summary for t/83-clients.t):

    status-cancel   GET a call; cancel it only if it is active     CALL_ID, EXPECT_CALL (JSON of "data")
    cancel-retry    DELETE with a short timeout, retried on timeout CALL_ID, FIRST_TIMEOUT_MS, TIMEOUT_MS,
                                                                   EXPECT_FIRST_TIMEOUT (0/1)
    stop-agent      list an agent's calls, DELETE each active one   AGENT_ID, PAGE_LIMIT
    batch           cancel a batch, then read its details           BATCH_ID, EXPECT_DETAILS (JSON)
    admin           admin-cancel by OpenAI call id                  OPENAI_CALL_ID

Environment: CALLSTOP_BASE_URL, CALLSTOP_CA (the certificate that signs
nginx's), CALLSTOP_API_KEY, CALLSTOP_WORKSPACE_ID, CALLSTOP_ADMIN_TOKEN;
IDEMPOTENCY_KEY, if set, goes with every Heppu-style request (SPEC 8).
"""

import json
import os
import sys
import time

import requests

BASE_URL = os.environ["CALLSTOP_BASE_URL"]
API_KEY = os.environ.get("CALLSTOP_API_KEY", "")
WORKSPACE_ID = os.environ.get("CALLSTOP_WORKSPACE_ID", "")
ADMIN_TOKEN = os.environ.get("CALLSTOP_ADMIN_TOKEN", "")
VERIFY = os.environ["CALLSTOP_CA"]

ACTIVE = ("initiated", "connecting", "ringing", "active")


class Mismatch(Exception):
    pass


def expect(got, want, what):
    if got != want:
        raise Mismatch(f"{what}:\n  got:  {json.dumps(got, sort_keys=True)}\n  want: {json.dumps(want, sort_keys=True)}")


# ---- Heppu-style calls API ----------------------------------------------------

def heppu_headers():
    headers = {"x-api-key": API_KEY, "Content-Type": "application/json"}
    if os.environ.get("IDEMPOTENCY_KEY"):
        headers["Idempotency-Key"] = os.environ["IDEMPOTENCY_KEY"]
    return headers


def get_call(call_id):
    response = requests.get(f"{BASE_URL}/api/v1/calls/{call_id}", headers=heppu_headers(), verify=VERIFY, timeout=10)
    expect(response.status_code, 200, f"GET /api/v1/calls/{call_id} status")
    return response.json()["data"]


def cancel_call(call_id, timeout=10):
    return requests.delete(f"{BASE_URL}/api/v1/calls/{call_id}", headers=heppu_headers(), verify=VERIFY,
                           timeout=timeout)


def list_calls(**params):
    response = requests.get(f"{BASE_URL}/api/v1/calls", headers=heppu_headers(), params=params, verify=VERIFY,
                            timeout=10)
    expect(response.status_code, 200, f"GET /api/v1/calls {params} status")
    return response.json()["data"]


def cancelled_body(call_id):
    return {"data": {"id": call_id, "status": "cancelled"}, "message": "Call cancelled successfully"}


def scenario_status_cancel():
    call_id = os.environ["CALL_ID"]
    call = get_call(call_id)
    expect(call, json.loads(os.environ["EXPECT_CALL"]), "the call before")
    if call["status"] not in ACTIVE:
        return {"action": "skipped", "status": call["status"]}
    response = cancel_call(call_id)
    expect(response.status_code, 200, "DELETE status")
    expect(response.json(), cancelled_body(call_id), "DELETE body")
    after = get_call(call_id)
    expect(after["status"], "cancelled", "status after")
    if not after["endedAt"]:
        raise Mismatch(f"endedAt not set after the cancel: {after}")
    expect({k: v for k, v in after.items() if k not in ("status", "endedAt", "endReason")},
           {k: v for k, v in call.items() if k not in ("status", "endedAt", "endReason")}, "the other fields")
    return {"action": "cancelled", "status": after["status"], "endedAt": after["endedAt"]}


def cancel_with_retry(call_id, timeouts, backoff=0.2):
    """DELETE the call; on a timeout, retry.  A retry that finds the call
    already cancelled means an attempt that timed out went through."""
    attempts, in_flight = [], 0
    attempt = 0
    while attempt < len(timeouts):
        timeout = timeouts[attempt]
        attempt += 1
        try:
            response = cancel_call(call_id, timeout=timeout)
        except requests.exceptions.Timeout as e:
            attempts.append({"timeout": type(e).__name__})
            time.sleep(backoff * (2 ** (attempt - 1)))
            continue
        body = response.json()
        attempts.append({"status": response.status_code})
        if response.headers.get("Idempotent-Replayed") == "true":
            attempts[-1]["replayed"] = True
        if response.status_code == 409 and "Retry-After" in response.headers and in_flight < 20:
            # Idempotency-Key (SPEC 8): an earlier attempt is still running;
            # its answer is coming - ask again, without using up an attempt
            in_flight += 1
            attempt -= 1
            time.sleep(float(response.headers["Retry-After"]))
            continue
        if response.status_code == 200:
            expect(body, cancelled_body(call_id), "DELETE body")
            return attempts
        if attempt > 1 and response.status_code == 400:
            expect(body, {"error": {"message": "Cannot cancel call with status: cancelled", "code": 400}},
                   "retry after a timeout: the earlier attempt cancelled it")
            return attempts
        raise Mismatch(f"DELETE answered {response.status_code}: {body}")
    raise Mismatch(f"gave up after {len(timeouts)} attempts: {attempts}")


def scenario_cancel_retry():
    call_id = os.environ["CALL_ID"]
    first = float(os.environ.get("FIRST_TIMEOUT_MS", "1")) / 1000
    timeout = float(os.environ.get("TIMEOUT_MS", "5000")) / 1000
    attempts = cancel_with_retry(call_id, [first, timeout, timeout, timeout])
    if os.environ.get("EXPECT_FIRST_TIMEOUT") == "1" and "timeout" not in attempts[0]:
        raise Mismatch(f"the first attempt was meant to time out: {attempts}")
    if os.environ.get("EXPECT_FIRST_TIMEOUT") == "0":
        expect(attempts, [{"status": 200}], "one attempt, 200")
    expect(get_call(call_id)["status"], "cancelled", "status after")
    return {"attempts": attempts}


def scenario_stop_agent():
    agent_id = os.environ["AGENT_ID"]
    limit = int(os.environ.get("PAGE_LIMIT", "20"))
    calls, page, pages = [], 1, 0
    while True:
        data = list_calls(agentId=agent_id, page=page, limit=limit)
        expect(data["pagination"]["page"], page, "pagination.page")
        expect(data["pagination"]["limit"], limit, "pagination.limit")
        calls.extend(data["calls"])
        pages += 1
        if not data["pagination"]["hasMore"]:
            break
        page += 1
    for c in calls:
        expect(c["agentId"], agent_id, "agentId of a listed call")
    times = [c["createdAt"] for c in calls]
    expect(times, sorted(times, reverse=True), "newest first")
    expect(len({c["id"] for c in calls}), len(calls), "no call twice")

    cancelled = []
    for c in calls:
        if c["status"] in ACTIVE:
            response = cancel_call(c["id"])
            expect(response.status_code, 200, f"DELETE {c['id']}")
            expect(response.json(), cancelled_body(c["id"]), f"DELETE {c['id']} body")
            cancelled.append(c["id"])

    for status in ACTIVE:
        left = list_calls(agentId=agent_id, status=status, limit=100)["calls"]
        expect(left, [], f"no {status} call left")
    return {"listed": len(calls), "pages": pages, "cancelled": sorted(cancelled)}


# ---- Trillet-style batch API ----------------------------------------------------

def trillet_headers():
    return {"x-api-key": API_KEY, "x-workspace-id": WORKSPACE_ID, "Content-Type": "application/json"}


def scenario_batch():
    batch_id = os.environ["BATCH_ID"]
    details = json.loads(os.environ["EXPECT_DETAILS"])
    url = f"{BASE_URL}/v1/api/batch-calls/{batch_id}"

    response = requests.delete(url, headers=trillet_headers(), verify=VERIFY, timeout=10)
    expect(response.status_code, 200, "DELETE status")
    expect(response.json(), {"batchId": batch_id, "status": "cancelled", "message": "Batch cancelled successfully",
                             "details": details}, "DELETE body")

    response = requests.get(url, headers=trillet_headers(), verify=VERIFY, timeout=10)
    expect(response.status_code, 200, "GET status")
    result = response.json()
    expect(result, {"batchId": batch_id, "status": "cancelled", "message": "Batch status", "details": details},
           "GET body")

    response = requests.delete(url, headers=trillet_headers(), verify=VERIFY, timeout=10)
    expect((response.status_code, response.json()),
           (200, {"batchId": batch_id, "status": "cancelled", "message": "Batch already in terminal state: cancelled",
                  "details": details}), "DELETE again")
    return {"status": result["status"], "details": result["details"]}


# ---- admin ----------------------------------------------------------------------

def scenario_admin():
    call_id = os.environ["OPENAI_CALL_ID"]
    url = f"{BASE_URL}/api/v1/admin/cancel/{call_id}"
    response = requests.post(url, headers={"X-Admin-Token": ADMIN_TOKEN}, verify=VERIFY, timeout=10)
    expect((response.status_code, response.json()), (200, {"ok": True, "message": f"Call {call_id} canceled"}),
           "admin cancel")
    response = requests.post(url, headers={"X-Admin-Token": ADMIN_TOKEN}, verify=VERIFY, timeout=10)
    expect((response.status_code, response.json()), (404, {"ok": False, "error": "Call not found or already ended"}),
           "admin cancel again")
    return {"ok": True}


SCENARIOS = {
    "status-cancel": scenario_status_cancel,
    "cancel-retry": scenario_cancel_retry,
    "stop-agent": scenario_stop_agent,
    "batch": scenario_batch,
    "admin": scenario_admin,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print(f"usage: {sys.argv[0]} {{{'|'.join(SCENARIOS)}}}", file=sys.stderr)
        return 2
    try:
        summary = SCENARIOS[sys.argv[1]]()
    except Mismatch as e:
        print(f"{sys.argv[1]}: FAILED: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
