/*
 * livekit.h - LiveKit RoomService DeleteRoom (SPEC 6).
 *
 * POST {url}/twirp/livekit.RoomService/DeleteRoom, Content-Type
 * application/json, body {"room": "<name>"}, Authorization: Bearer <JWT>.
 * The JWT is HS256 (RFC 7519, RFC 7515) over the API secret with iss = API
 * key, nbf, exp and the grant video.roomCreate = true, which DeleteRoom
 * requires (LiveKit docs, "Server APIs: RoomService").
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
 * bytes).  now is the current time (seconds).  Returns 0, or -1 if out is too
 * small or signing fails.
 */
int livekit_token(const char *api_key, const char *secret, time_t now, char *out, size_t outlen);

/* The outbox's entry (provider.h): DeleteRoom of the row's room; 200 done,
 * 404 with Twirp code "not_found" done (already gone), other 4xx permanent,
 * else retry (SPEC 6). */
extern const struct provider livekit_provider;

#endif
