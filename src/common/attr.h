/*
 * attr.h - compiler attributes used across the tree.
 */
#ifndef CALLSTOP_ATTR_H
#define CALLSTOP_ATTR_H

/*
 * On a fallible function: a caller that drops the result is a compile
 * error under -Werror (PgBouncer's _MUSTCHECK).  A caller that really has
 * nothing to do on failure says so with an if and a comment: GCC does not
 * accept a (void) cast here.
 */
#define MUST_CHECK __attribute__((warn_unused_result))

#endif
