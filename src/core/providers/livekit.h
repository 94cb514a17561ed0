/*
 * livekit.h - LiveKit RoomService: DeleteRoom (SPEC 6), and ListParticipants
 * and RemoveParticipant for the read-back of SPEC 11.
 *
 * POST {url}/twirp/livekit.RoomService/<Method>, Content-Type
 * application/json, body {"room": "<name>"} (RemoveParticipant: and
 * "identity"), Authorization: Bearer <JWT>.  The JWT is HS256 (RFC 7519,
 * RFC 7515) over the API secret with iss = API key, nbf, exp and the grant
 * each method requires (LiveKit docs, "Server APIs: RoomService"):
 * video.roomCreate = true for DeleteRoom; video.roomAdmin = true and
 * video.room = <name> for ListParticipants and RemoveParticipant.
 */
#ifndef CALLSTOP_LIVEKIT_H
#define CALLSTOP_LIVEKIT_H

#include <stddef.h>
#include <time.h>

#include "core/providers/provider.h"

/* Token lifetime, seconds: long enough for one request and its clock skew. */
#define LIVEKIT_TOKEN_TTL 60

/*
 * Write an access token for api_key signed with secret into out (outlen
 * bytes).  now is the current time (seconds).  room NULL: the grant
 * roomCreate (DeleteRoom); else roomAdmin on that room.  Returns 0, or -1 if
 * out is too small or signing fails.
 */
int livekit_token(const char *api_key, const char *secret, time_t now, const char *room, char *out,
		  size_t outlen);

/*
 * Set up easy for RoomService method ("DeleteRoom", "ListParticipants",
 * "RemoveParticipant") on room (identity: RemoveParticipant's, else NULL)
 * with c's [livekit] keys and the token that method needs.  *headers and
 * *body receive what the caller frees (curl_slist_free_all, free), also on
 * failure.  Returns 0 or -1.
 */
int livekit_rpc(CURL *easy, const struct conf *c, const char *method, const char *room, const char *identity,
		struct curl_slist **headers, char **body);

/* 1 if (http_status, Twirp error body) says "not_found", else 0. */
int livekit_not_found(long http_status, const char *response);

/* The outbox's entry (provider.h): DeleteRoom of the row's room; 200 done,
 * 404 with Twirp code "not_found" done (already gone), other 4xx permanent,
 * else retry (SPEC 6). */
extern const struct provider livekit_provider;

#endif
