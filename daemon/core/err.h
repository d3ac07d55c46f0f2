/*
 * err — the error record every layer fills where a failure's cause is known.
 *
 * Owns: the reserved range of domain error codes (below ERR_BASE) and their names.
 * Never: allocates (the error path must work when memory is gone), does I/O.
 * Contract: functions return 0 or a negative code; internal failures are -errno
 * (-ENOMEM, -EIO, …), domain outcomes are ERR_*. A function that fails and was given a
 * struct err writes code, field and message into it; on success it leaves it untouched.
 */
#ifndef JOULE_ERR_H
#define JOULE_ERR_H

#include <stddef.h>

enum {
	ERR_BASE = -1000,
	ERR_MALFORMED = -1001,        /* 400: not JSON, bad query string */
	ERR_FORBIDDEN = -1002,        /* 403 */
	ERR_NOT_FOUND = -1003,        /* 404 */
	ERR_METHOD = -1004,           /* 405 */
	ERR_CONFLICT = -1005,         /* 409: valid, but the current state forbids it */
	ERR_TOO_LARGE = -1006,        /* 413 */
	ERR_INVALID = -1007,          /* 422: a field is wrong */
	ERR_HEADERS_TOO_LARGE = -1008,/* 431 */
	ERR_UNAVAILABLE = -1009,      /* 503: database, memory, limits */
	ERR_TOO_MANY = -1010,         /* 429 */
	ERR_GONE = -1011,             /* 410: asked for what retention dropped */
};

struct err {
	int code;
	char field[96];
	char message[256];
};

/* Fill *e (if e is not NULL) and return code; field may be NULL. printf-style message. */
int err_set(struct err *e, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Prefix e->field with "prefix." or "prefix[i]." to give a path into a document. */
void err_prefix_field(struct err *e, const char *prefix);

/* HTTP status and JSON code name for a code; -errno values map to 503 "unavailable". */
int err_http_status(int code);
const char *err_code_name(int code);

#endif
