/*
 * verify.h - verified termination (SPEC 11): the phone stopped, and
 * callstop saw it.
 *
 * A LiveKit DeleteRoom that answered 200 or not_found leaves its outbox row
 * sent (core/outbox.h); the retry child verifies it here, so that no request
 * waits for a phone leg.  It reads the room back with RoomService
 * ListParticipants: a Twirp not_found or an empty list is gone, and the row
 * is done with verified_at.  While participants remain it escalates:
 * RemoveParticipant for each (SIP participants first), DeleteRoom again, then
 * reads back again after 100 ms, 250 ms, 500 ms, then every second, until
 * [outbox] verify_deadline seconds after sent; a room still there then (after
 * at least one escalation) is unknown, logged with the call, the room and
 * who was still in it.  LiveKit SIP legs have outlived DeleteRoom
 * (livekit/sip#106, livekit/agents#1144).
 *
 * Many rooms are verified at once through one libcurl multi handle, at most
 * outbox_concurrency; each row is claimed for its whole verification (a
 * lease past the deadline), so a verifier that dies leaves it to the next.
 * Final states are plain UPDATEs of termination_outbox.state (done, with
 * verified_at; unknown), one statement for what ended in one turn.
 */
#ifndef CALLSTOP_VERIFY_H
#define CALLSTOP_VERIFY_H

#include "common/attr.h"
#include "common/conf.h"
#include "common/db.h"

/* Longest wait of one turn while verifications are under way, ms: how late
 * a notification or a drain is noticed meanwhile. */
#define VERIFY_TURN_MS 50

struct verify;

/* A verifier with cfg (borrowed; it must outlive the verifier).  NULL on
 * ENOMEM. */
struct verify *verify_new(const struct conf *cfg) MUST_CHECK;

/* Drop what is under way (not recorded: the rows' claims expire) and free. */
void verify_free(struct verify *v);

/* Rows became sent (a notification): claim them at the next turn rather
 * than at the next poll. */
void verify_kick(struct verify *v);

/*
 * One turn, never blocking on a provider: claim due sent rows into free
 * slots (when kicked, or every outbox_poll_ms), start the requests that are
 * due, run the transfers, and record the rows that ended.  Returns the rows
 * under verification, or -1 if the database is unreachable.
 */
int verify_step(struct verify *v, struct db *db);

/* Wait up to timeout_ms for a transfer to progress or a pause to end. */
void verify_wait(struct verify *v, int timeout_ms);

/* At shutdown: the rows under verification become due again at once (for
 * the next retry child), then as verify_free(). */
void verify_release(struct verify *v, struct db *db);

#endif
