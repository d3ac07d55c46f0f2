/*
 * curluv — libcurl's multi_socket interface driven by a libuv loop (STYLE rule 14): the
 * glue the exporter scraper and the webhook dispatcher share.
 *
 * Owns: the curl multi handle, one uv_poll_t per socket curl names, one uv_timer_t for
 * curl's timer.
 * Never: calls libcurl from inside a libcurl callback, blocks the loop, owns an easy
 * handle (the user creates, adds, removes and cleans them up), calls the user from inside
 * one of its own API functions (done and after run from loop callbacks only).
 *
 * After every socket action (a poll fired, or curl's timer) curluv reads curl's messages:
 * each finished transfer is removed from the multi and handed to done(ud, easy, code) — the
 * easy handle is the user's again (curl_easy_getinfo still works; the user cleans it up).
 * Then after(ud) runs, so the user can start more transfers. Both stop being called once
 * curluv_close ran.
 *
 * Lifetime: curluv_new → curluv_add/curluv_remove … → (the user removes its transfers) →
 * curluv_close(closed) → closed fires once every handle is closed → curluv_free.
 */
#ifndef JOULE_CURLUV_H
#define JOULE_CURLUV_H

#include <curl/curl.h>
#include <uv.h>

struct curluv;

typedef void (*curluv_done_cb)(void *ud, CURL *easy, CURLcode code);
typedef void (*curluv_after_cb)(void *ud);

/* maxconnects: idle connections curl keeps (CURLMOPT_MAXCONNECTS). Takes a
 * curl_global_init reference (dropped by curluv_free). 0, or -ENOMEM / -EIO. */
int curluv_new(uv_loop_t *loop, long maxconnects, curluv_done_cb done, curluv_after_cb after,
	       void *ud, struct curluv **out);
/* Start a transfer: 0 or -EIO (curl refused it; the easy handle is still the caller's). */
int curluv_add(struct curluv *c, CURL *easy);
/* Stop a running transfer without a done callback; the caller cleans the handle up. */
void curluv_remove(struct curluv *c, CURL *easy);
/* Close the multi (every transfer must have been removed) and the handles. */
void curluv_close(struct curluv *c, void (*closed)(void *ud), void *ud);
void curluv_free(struct curluv *c);

/* A CURLcode as a negative errno: -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EFBIG,
 * -ECONNRESET, -ENOMEM, else -EPROTO; 0 for CURLE_OK. */
int curluv_errno(CURLcode c);

#endif
