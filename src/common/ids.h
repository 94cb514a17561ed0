/*
 * ids.h - the shapes of the ids callstop accepts (SPEC 3).
 */
#ifndef CALLSTOP_IDS_H
#define CALLSTOP_IDS_H

/* 1 if s is a UUID in its text form (8-4-4-4-12 hex digits, either case;
 * RFC 9562 section 4), else 0. */
int ids_is_uuid(const char *s);

#endif
