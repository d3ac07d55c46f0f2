/*
 * err — fills error records and maps codes to HTTP statuses and JSON code names.
 * Never allocates: it runs on the out-of-memory path.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int code, const char *field, const char *fmt, ...)
{
	if (!e)
		return code;
	e->code = code;
	snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return code;
}

void err_prefix_field(struct err *e, const char *prefix)
{
	char tmp[sizeof(e->field) * 2 + 8];

	if (!e || !prefix || !*prefix)
		return;
	if (e->field[0] == '\0')
		snprintf(tmp, sizeof(tmp), "%s", prefix);
	else if (e->field[0] == '[')
		snprintf(tmp, sizeof(tmp), "%s%s", prefix, e->field);
	else
		snprintf(tmp, sizeof(tmp), "%s.%s", prefix, e->field);
	snprintf(e->field, sizeof(e->field), "%.*s", (int)sizeof(e->field) - 1, tmp);
}

static const struct {
	int code;
	int status;
	const char *name;
} table[] = {
	{ERR_MALFORMED, 400, "malformed"},
	{ERR_FORBIDDEN, 403, "permission_denied"},
	{ERR_NOT_FOUND, 404, "not_found"},
	{ERR_METHOD, 405, "method_not_allowed"},
	{ERR_CONFLICT, 409, "conflict"},
	{ERR_GONE, 410, "gone"},
	{ERR_TOO_LARGE, 413, "payload_too_large"},
	{ERR_INVALID, 422, "invalid_argument"},
	{ERR_TOO_MANY, 429, "too_many_requests"},
	{ERR_HEADERS_TOO_LARGE, 431, "headers_too_large"},
	{ERR_UNAVAILABLE, 503, "unavailable"},
};

int err_http_status(int code)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == code)
			return table[i].status;
	return 503;
}

const char *err_code_name(int code)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].code == code)
			return table[i].name;
	return "unavailable";
}
