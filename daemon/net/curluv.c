/*
 * curluv — libcurl's multi_socket API on a libuv loop (contract: curluv.h).
 *
 * Owns: struct curluv, the multi handle, one struct curluv_sock (uv_poll_t) per socket curl
 * names and curl's timer.
 * Never: calls libcurl from inside a libcurl callback (socket, timer), frees a handle
 * outside its close callback.
 *
 *   socket callback   IN/OUT/INOUT → (create and curl_multi_assign) a curluv_sock, start its
 *                     poll with those events; REMOVE → stop the poll (before curl closes the
 *                     fd), close the handle, free it in the close callback.
 *   timer callback    -1 → stop the uv timer; n ≥ 0 → start it for n ms.
 *   poll fires        curl_multi_socket_action(fd, IN/OUT, or CURL_CSELECT_ERR on a poll
 *                     error), then drain, then after.
 *   timer fires       curl_multi_socket_action(CURL_SOCKET_TIMEOUT), then drain, then after
 *                     (libcurl's multi-uv.c example forgets to drain here).
 *   drain             curl_multi_info_read until empty: each CURLMSG_DONE is removed from
 *                     the multi and handed to done.
 *
 * Shutdown (curluv_close): curl_multi_cleanup (curl may still call the socket callback with
 * REMOVE and the timer callback here), close every poll still open, close the timer;
 * closed fires in the last close callback.
 */
#include "curluv.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct curluv_sock {
	uv_poll_t poll;                     /* first: the handle's address is the struct's */
	struct curluv *c;
	curl_socket_t fd;
	struct curluv_sock *prev, *next;    /* c->socks: polls not yet closing */
};

struct curluv {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct curluv_sock *socks;
	int handles_open;                   /* close callbacks still owed */
	curluv_done_cb done;
	curluv_after_cb after;
	void *ud;
	bool closing, finished;
	void (*closed)(void *ud);
	void *closed_ud;
};

static void on_handle_closed(uv_handle_t *h)
{
	struct curluv *c = h->data;

	if (h->type == UV_POLL)
		free((struct curluv_sock *)(void *)h);
	assert(c->handles_open > 0);
	if (--c->handles_open == 0 && c->closing) {
		c->finished = true;
		if (c->closed)
			c->closed(c->closed_ud);
	}
}

static void sock_close(struct curluv *c, struct curluv_sock *k)
{
	uv_poll_stop(&k->poll);             /* before curl closes the fd */
	if (k->prev)
		k->prev->next = k->next;
	else
		c->socks = k->next;
	if (k->next)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
	uv_close((uv_handle_t *)&k->poll, on_handle_closed);
}

/* curl_multi_info_read until empty; stops once the user closed c from a callback. */
static void drain(struct curluv *c)
{
	CURLMsg *m;
	int left;

	while (!c->closing && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *easy = m->easy_handle;
		CURLcode code = m->data.result;   /* m is invalid after remove_handle */
		curl_multi_remove_handle(c->multi, easy);
		c->done(c->ud, easy, code);
	}
	if (!c->closing && c->after)
		c->after(c->ud);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct curluv_sock *k = (struct curluv_sock *)(void *)h;
	struct curluv *c = k->c;
	int flags = 0, running = 0;

	if (c->closing)
		return;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & (UV_READABLE | UV_DISCONNECT))
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	/* k may be closed by the socket callback during this call; it is freed only later. */
	curl_multi_socket_action(c->multi, k->fd, flags, &running);
	drain(c);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct curluv *c = userp;
	struct curluv_sock *k = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (k) {
			curl_multi_assign(c->multi, fd, NULL);
			sock_close(c, k);
		}
		return 0;
	}
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return -1;                 /* curl fails the transfers on this socket */
		if (uv_poll_init_socket(c->loop, &k->poll, fd) < 0) {
			free(k);
			return -1;
		}
		k->poll.data = c;
		k->c = c;
		k->fd = fd;
		k->next = c->socks;
		if (c->socks)
			c->socks->prev = k;
		c->socks = k;
		c->handles_open++;
		curl_multi_assign(c->multi, fd, k);
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	return uv_poll_start(&k->poll, events, on_poll) < 0 ? -1 : 0;
}

static void on_timeout(uv_timer_t *h)
{
	struct curluv *c = h->data;
	int running = 0;

	if (c->closing)
		return;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(c);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct curluv *c = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&c->timer);
	else if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

int curluv_new(uv_loop_t *loop, long maxconnects, curluv_done_cb done, curluv_after_cb after,
	       void *ud, struct curluv **out)
{
	struct curluv *c;

	assert(loop && done && out);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->loop = loop;
	c->done = done;
	c->after = after;
	c->ud = ud;
	c->multi = curl_multi_init();
	if (!c->multi)
		goto nomem;
	if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, (void *)c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, (void *)c) != CURLM_OK ||
	    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, maxconnects) != CURLM_OK) {
		curl_multi_cleanup(c->multi);
		free(c);
		curl_global_cleanup();
		return -EIO;
	}
	uv_timer_init(loop, &c->timer);      /* cannot fail; needs closing from here on */
	c->timer.data = c;
	c->handles_open = 1;
	*out = c;
	return 0;
nomem:
	free(c);
	curl_global_cleanup();
	return -ENOMEM;
}

int curluv_add(struct curluv *c, CURL *easy)
{
	return !c->closing && curl_multi_add_handle(c->multi, easy) == CURLM_OK ? 0 : -EIO;
}

void curluv_remove(struct curluv *c, CURL *easy)
{
	if (c->multi)
		curl_multi_remove_handle(c->multi, easy);
}

void curluv_close(struct curluv *c, void (*closed)(void *ud), void *ud)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	c->closed = closed;
	c->closed_ud = ud;
	/* May still call the socket callback (REMOVE) and the timer callback. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	while (c->socks)
		sock_close(c, c->socks);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void curluv_free(struct curluv *c)
{
	if (!c)
		return;
	assert(c->finished && "curluv_free before curluv_close's closed");
	free(c);
	curl_global_cleanup();
}

int curluv_errno(CURLcode code)
{
	switch (code) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EPROTO;
	}
}
