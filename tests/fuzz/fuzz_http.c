/*
 * fuzz_http — libFuzzer target for the request path of jouled: bytes from a client in,
 * responses out, through the real HTTP server (daemon/http) and api (daemon/api) on a
 * real libuv loop and a real SQLite store.
 *
 * Owns: one loop; one listening socket on an abstract Unix address (nothing on the file
 * system), given to http_server_start as an already listening fd (the socket-activation
 * path); a temp directory holding the database; and, per input, a fresh store + api.
 * At start-up a pristine database is made once through the API itself (POST /v1/fleet of
 * a three-node fleet, two jobs: one placed, one pending with an Idempotency-Key), and
 * every input starts from a byte copy of it, so an input's outcome never depends on the
 * inputs before it (a crash file replays as it crashed).
 * Never: changes the daemon's code paths: the handler is api_handle itself, wrapped only
 * to take a fingerprint of the state before each request (it reads the api's counters
 * through daemon/api/internal.h and never writes them).
 *
 * Each input is sent twice on one connection each: written whole, then in small chunks
 * (one to 61 bytes, a loop turn between chunks); the client half-closes after the last
 * byte and reads until the server closes. Checks, besides what ASan/UBSan and the leak
 * checker catch:
 *   - the output is a sequence of well-formed responses and nothing else: status line
 *     "HTTP/1.1 NNN Reason", header lines, Content-Length (except 1xx/204/304) with
 *     exactly that many body bytes, Content-Type, Connection; a JSON body parses; an error
 *     (>= 400) body is {"error":{"code":…,"message":…}}; a 405 has Allow; nothing
 *     follows a "Connection: close" response;
 *   - responses match requests: one per request the api handled, in order, plus at most
 *     one final refusal by the server itself (400, 413, 431, 503) that closes;
 *   - a request answered >= 400 changed nothing: the fingerprint (commit version, event
 *     sequence, job ids, the fleet export, every node with its devices, every domain's
 *     reserved watts, every job's encoding) is the same before and after it;
 *   - the chunked send gets the same statuses as the whole one (framing does not depend
 *     on how bytes arrive);
 *   - the server closes the connection once the client half-closed (no hang: 10 s with
 *     no progress aborts), no reply is left held, no batch left open, no handle leaked.
 * A broken invariant calls abort(), which libFuzzer (and the replay) report as a crash.
 * Built by clang with -fsanitize=fuzzer (run-libfuzzer, README.md), or with replay.c into
 * fuzz_http_replay by gcc, which meson runs over corpus/http/.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "api.h"
#include "codec.h"
#include "http.h"
#include "internal.h"
#include "store.h"
#include "../../daemon/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Tight limits, so that fuzz-sized inputs reach them. */
#define FZ_MAX_HEADER 2048
#define FZ_MAX_BODY 32768
#define FZ_MAX_OUTPUT (256u << 20)  /* more answer bytes than this is a bug */
#define FZ_STALL_MS 10000           /* no progress this long is a hang */
#define FZ_MAX_RESPONSES 65536

static const char SETUP_FLEET[] =
	"{\"domains\":[{\"name\":\"site\",\"parent\":null,\"budget_w\":100000},"
	"{\"name\":\"rack-a\",\"parent\":\"site\",\"budget_w\":40000},"
	"{\"name\":\"rack-b\",\"parent\":\"site\",\"budget_w\":30000}],"
	"\"nodes\":["
	"{\"name\":\"a-n1\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a1\","
	"\"labels\":{\"pool\":\"train\"},\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"a-n2\",\"domain\":\"rack-a\",\"host_idle_w\":1500,\"group\":\"nvl-a2\","
	"\"labels\":{\"pool\":\"train\"},\"devices\":[{\"model\":\"H100-SXM5-80GB\",\"count\":8}]},"
	"{\"name\":\"b-n1\",\"domain\":\"rack-b\",\"host_idle_w\":1200,\"group\":\"hccs-b1\","
	"\"labels\":{\"pool\":\"infer\"},\"devices\":[{\"model\":\"Ascend910B3\",\"count\":8}]}]}";
static const char SETUP_JOB1[] =
	"{\"name\":\"train\",\"kind\":\"training\",\"queue\":\"research\",\"workers\":1,"
	"\"devices\":4,\"accelerator\":{\"models\":[\"H100-SXM5-80GB\"]},\"power\":{\"cap_w\":600}}";
static const char SETUP_JOB2[] =
	"{\"name\":\"too-big\",\"kind\":\"training\",\"workers\":8,\"devices\":8,"
	"\"accelerator\":{\"vendors\":[\"nvidia\"]}}";

struct resp {
	int status;
	bool close;
	bool server_error;          /* JSON error without a "field": may be the server's own */
};

static struct fz {
	bool ready, verbose;
	char dir[PATH_MAX - 32];
	char db[PATH_MAX];
	uint8_t *pristine;
	size_t pristine_len;
	uv_loop_t loop;
	struct sockaddr_un sa;
	socklen_t salen;
	struct http_server *srv;
	struct store *store;
	struct api *api;
	/* one exchange */
	uint64_t *snap;             /* fingerprint before handler call i; the last: after all */
	uint32_t nsnap, snap_cap;
	char *out;
	size_t outlen, outcap;
	struct resp *resp;
	uint32_t nresp;
} F;

static void rm_dir(void);

static void require(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http: invariant broken: %s\n", what);
		if (F.out && F.outlen)
			fprintf(stderr, "---- answers (first 2000 bytes) ----\n%.*s\n----\n",
				(int)(F.outlen < 2000 ? F.outlen : 2000), F.out);
		rm_dir();   /* abort() skips atexit */
		abort();
	}
}

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000;
}

/* ---- the state fingerprint ---------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fnv_json(uint64_t h, json_t *v)
{
	char *s = codec_dump(v, NULL);   /* steals v */
	require(s != NULL, "a state encoding dumps");
	h = fnv(h, s, strlen(s) + 1);
	free(s);
	return h;
}

static uint64_t fingerprint(const struct api *a)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint64_t counters[] = {a->version, a->ev_next_seq, a->jobs.next_id, a->fleet.nmodels,
			       a->fleet.ndomains, a->fleet.nnodes, a->fleet.ndevices};

	h = fnv(h, counters, sizeof(counters));
	h = fnv_json(h, codec_fleet_export(&a->fleet));
	h = fnv_json(h, codec_domains_encode(&a->fleet));
	for (uint32_t n = 0; n < a->fleet.nnodes; n++)
		h = fnv_json(h, codec_node_encode(&a->fleet, n, true));
	for (uint64_t id = 1; id < a->jobs.next_id; id++) {
		const struct job *j = jobs_get(&a->jobs, id);
		if (j)
			h = fnv_json(h, codec_job_encode(&a->fleet, j));
	}
	return h;
}

static void snap_push(uint64_t v)
{
	if (F.nsnap == F.snap_cap) {
		uint32_t cap = F.snap_cap ? F.snap_cap * 2 : 64;
		uint64_t *p = realloc(F.snap, cap * sizeof(*p));
		require(p != NULL, "out of memory");
		F.snap = p;
		F.snap_cap = cap;
	}
	F.snap[F.nsnap++] = v;
}

/* The server's handler: api_handle, after a look at the state it starts from. */
static void on_request(void *ud, struct http_conn *c, const struct http_request *req)
{
	(void)ud;
	snap_push(fingerprint(F.api));
	api_handle(F.api, c, req);
}

/* ---- store and api life cycle ------------------------------------------------------- */

static void turn(int n)
{
	for (int i = 0; i < n; i++)
		uv_run(&F.loop, UV_RUN_NOWAIT);
}

static void api_up(void)
{
	struct err e = {0};
	struct store_options so = {.synchronous_full = false};
	struct api_options ao = {.admin_gid = -1, .events_max = 100000, .events_max_age_s = 0,
				 .pass_max_tries = 1u << 20, .no_telemetry = true};

	if (store_open(F.db, &so, &F.store, &e) < 0 ||
	    api_new(&F.loop, F.store, &ao, &F.api, &e) < 0) {
		fprintf(stderr, "fuzz_http: cannot start the api on %s: %s\n", F.db, e.message);
		rm_dir();
		abort();
	}
	turn(3);   /* the start-up queue pass, so that no request is charged with it */
}

static void count_handle(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		++*(int *)arg;
}

static void api_down(void)
{
	int open = 0;

	require(F.api->nheld == 0, "no reply is left held");
	require(F.api->nwaiters == 0, "no long poll is left waiting");
	require(!store_batch_open(F.store), "no batch is left open");
	api_close(F.api);
	turn(2);
	api_free(F.api);
	store_close(F.store);
	F.api = NULL;
	F.store = NULL;
	uv_walk(&F.loop, count_handle, &open);
	require(open == 1, "only the listener is left on the loop");
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(b, 1, n, fp) != n || fclose(fp) != 0) {
		fprintf(stderr, "fuzz_http: cannot write %s: %s\n", path, strerror(errno));
		rm_dir();
		abort();
	}
}

static void db_side_files_remove(void)
{
	char p[PATH_MAX + 8];
	snprintf(p, sizeof(p), "%s-wal", F.db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", F.db);
	unlink(p);
}

static void db_from_pristine(void)
{
	db_side_files_remove();
	write_file(F.db, F.pristine, F.pristine_len);
}

/* ---- the client ----------------------------------------------------------------------- */

static void out_add(const char *b, size_t n)
{
	require(F.outlen + n <= FZ_MAX_OUTPUT, "answers stay bounded");
	if (F.outlen + n + 1 > F.outcap) {
		size_t cap = F.outcap ? F.outcap : 65536;
		while (cap < F.outlen + n + 1)
			cap *= 2;
		char *p = realloc(F.out, cap);
		require(p != NULL, "out of memory");
		F.out = p;
		F.outcap = cap;
	}
	memcpy(F.out + F.outlen, b, n);
	F.outlen += n;
	F.out[F.outlen] = '\0';
}

/*
 * One connection: send data (whole when chunked is false, else in chunks of 1-61 bytes
 * with a loop turn after each), half-close, read until the server closes. The answers
 * are left in F.out, the fingerprints in F.snap (one per handled request, then the end
 * state).
 */
static void exchange(const uint8_t *data, size_t size, bool chunked)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	size_t off = 0;
	bool shut = false, eof = false;
	uint32_t seed = (uint32_t)size * 2654435761u + 1;
	uint64_t last = now_ms();

	F.outlen = 0;
	F.nsnap = 0;
	require(fd >= 0, "socket");
	require(connect(fd, (struct sockaddr *)&F.sa, F.salen) == 0, "connect to the listener");
	while (!eof) {
		bool progress = false;
		if (off < size) {
			size_t n = size - off;
			if (chunked) {
				seed = seed * 1103515245u + 12345u;
				size_t c = 1 + (seed >> 16) % 61;
				if (n > c)
					n = c;
			}
			ssize_t w = send(fd, data + off, n, MSG_NOSIGNAL);
			if (w > 0) {
				off += (size_t)w;
				progress = true;
			} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				off = size;   /* the server closed early (an error answer): stop */
			}
		}
		if (off == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		uint32_t before = F.nsnap;
		uv_run(&F.loop, UV_RUN_NOWAIT);
		progress |= F.nsnap != before;
		for (;;) {
			char buf[65536];
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r > 0) {
				out_add(buf, (size_t)r);
				progress = true;
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
				eof = true;
			break;
		}
		if (progress) {
			last = now_ms();
		} else if (F.api->nwaiters > 0) {
			api_stop_waiting(F.api);   /* a long poll: answer it now, as a stop does */
		} else if (now_ms() - last > FZ_STALL_MS) {
			require(false, "the server neither answers nor closes");
		}
	}
	close(fd);
	for (uint64_t t0 = now_ms(); http_server_connections(F.srv) > 0;) {
		uv_run(&F.loop, UV_RUN_NOWAIT);
		require(now_ms() - t0 < FZ_STALL_MS, "a closed connection is freed");
	}
	turn(2);
	snap_push(fingerprint(F.api));
}

/* ---- checking the answers ------------------------------------------------------------ */

static bool token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool header_is(const char *line, size_t n, const char *name, const char **val,
		      size_t *vlen)
{
	size_t k = strlen(name);
	if (n < k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	const char *v = line + k + 1;
	while (v < line + n && *v == ' ')
		v++;
	*val = v;
	*vlen = (size_t)(line + n - v);
	return true;
}

static void check_json_body(int status, const char *body, size_t len, bool *server_error)
{
	json_error_t je;
	json_t *v = json_loadb(body, len, 0, &je);
	require(v != NULL && json_is_object(v), "a JSON body is a JSON object");
	*server_error = false;
	if (status >= 400) {
		json_t *e = json_object_get(v, "error");
		require(json_is_object(e) && json_is_string(json_object_get(e, "code")) &&
			json_is_string(json_object_get(e, "message")),
			"an error body is {\"error\":{\"code\",\"message\"}}");
		json_t *field = json_object_get(e, "field");
		require(!field || json_is_string(field), "an error's field is a string");
		*server_error = field == NULL;
	}
	json_decref(v);
}

/* Parse F.out into F.resp; abort on anything that is not a well-formed response. */
static void parse_answers(void)
{
	size_t pos = 0;

	F.nresp = 0;
	while (pos < F.outlen) {
		const char *p = F.out + pos, *end = F.out + F.outlen;
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		require(eol != NULL, "a status line ends with CRLF");
		require(eol - p > 13 && memcmp(p, "HTTP/1.1 ", 9) == 0 && p[9] >= '1' &&
			p[9] <= '5' && p[10] >= '0' && p[10] <= '9' && p[11] >= '0' &&
			p[11] <= '9' && p[12] == ' ', "status line is HTTP/1.1 NNN Reason");
		int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
		for (const char *c = p + 13; c < eol; c++)
			require(*c >= 0x20 && *c < 0x7f, "the reason phrase is printable");
		long long clen = -1;
		bool json = false, has_type = false, has_conn = false, close_ = false, allow = false;
		const char *line = eol + 2;
		for (;;) {
			const char *le = memmem(line, (size_t)(end - line), "\r\n", 2);
			require(le != NULL, "the header block ends with an empty line");
			if (le == line)
				break;
			size_t n = (size_t)(le - line), vlen;
			const char *colon = memchr(line, ':', n), *v;
			require(colon && colon > line, "a header line is Name: value");
			for (const char *c = line; c < colon; c++)
				require(token_char(*c), "a header name is a token");
			for (const char *c = colon + 1; c < le; c++)
				require((*c >= 0x20 && *c < 0x7f) || *c == '\t',
					"a header value is printable");
			if (header_is(line, n, "Content-Length", &v, &vlen)) {
				require(clen < 0, "one Content-Length");
				require(vlen > 0 && vlen < 12, "Content-Length has digits");
				clen = 0;
				for (size_t i = 0; i < vlen; i++) {
					require(v[i] >= '0' && v[i] <= '9', "Content-Length is decimal");
					clen = clen * 10 + (v[i] - '0');
				}
			} else if (header_is(line, n, "Content-Type", &v, &vlen)) {
				has_type = true;
				json = vlen >= 16 && strncmp(v, "application/json", 16) == 0;
			} else if (header_is(line, n, "Connection", &v, &vlen)) {
				require(!has_conn, "one Connection header");
				has_conn = true;
				require((vlen == 5 && memcmp(v, "close", 5) == 0) ||
					(vlen == 10 && memcmp(v, "keep-alive", 10) == 0),
					"Connection is close or keep-alive");
				close_ = vlen == 5;
			} else if (header_is(line, n, "Allow", &v, &vlen)) {
				allow = vlen > 0;
			}
			line = le + 2;
		}
		pos = (size_t)(line + 2 - F.out);
		if (status == 100) {
			require(clen < 0 && !has_conn, "100 Continue is a bare status line");
			continue;
		}
		require(status >= 200, "no other 1xx");
		require(has_conn, "every response says Connection");
		if (status == 204 || status == 304) {
			require(clen < 0, "204 and 304 carry no Content-Length");
			clen = 0;
		} else {
			require(clen >= 0, "a response has Content-Length");
			require(has_type, "a response has Content-Type");
		}
		require((size_t)clen <= F.outlen - pos, "the body is complete");
		bool server_error = false;
		if (json && clen > 0)
			check_json_body(status, F.out + pos, (size_t)clen, &server_error);
		else
			require(status < 400, "an error answer is JSON");
		if (status == 405)
			require(allow, "405 names the allowed methods");
		pos += (size_t)clen;
		require(F.nresp < FZ_MAX_RESPONSES, "responses stay countable");
		if (!F.resp)
			F.resp = malloc(FZ_MAX_RESPONSES * sizeof(*F.resp));
		require(F.resp != NULL, "out of memory");
		F.resp[F.nresp++] = (struct resp){status, close_, server_error};
		if (close_)
			require(pos == F.outlen, "nothing follows Connection: close");
	}
}

/* Answers against handled requests; refused requests left the state as it was. */
static void check_exchange(void)
{
	uint32_t handled = F.nsnap - 1;   /* the last fingerprint is the end state */

	parse_answers();
	require(F.nresp == handled || F.nresp == handled + 1,
		"one answer per handled request, plus at most the server's own refusal");
	if (F.nresp == handled + 1) {
		const struct resp *r = &F.resp[handled];
		require(r->close && r->server_error &&
			(r->status == 400 || r->status == 413 || r->status == 431 ||
			 r->status == 503), "the server's own answer is a refusal that closes");
	}
	for (uint32_t i = 0; i < handled; i++) {
		if (F.resp[i].status < 400)
			continue;
		if (F.snap[i] != F.snap[i + 1])
			fprintf(stderr, "fuzz_http: answer %u (status %d) changed the state\n", i,
				F.resp[i].status);
		require(F.snap[i] == F.snap[i + 1], "a refused request changes nothing");
	}
}

/* ---- set-up, once -------------------------------------------------------------------- */

static void rm_dir(void)
{
	if (!F.dir[0])
		return;
	db_side_files_remove();
	unlink(F.db);
	rmdir(F.dir);
	F.dir[0] = '\0';
}

/* Send one request during set-up and require the status. */
static void setup_request(const char *method, const char *path, const char *extra,
			  const char *body, int want)
{
	char *req = NULL;
	int n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
			 "Content-Length: %zu\r\n\r\n%s", method, path, extra, strlen(body), body);
	require(n > 0, "out of memory");
	exchange((const uint8_t *)req, (size_t)n, false);
	free(req);
	check_exchange();
	if (F.nresp != 1 || F.resp[0].status != want) {
		fprintf(stderr, "fuzz_http: set-up %s %s: want %d, got:\n%s\n", method, path, want,
			F.out ? F.out : "(nothing)");
		rm_dir();
		abort();
	}
}

static void setup(void)
{
	struct err e = {0};
	struct http_limits lim;
	const char *base = getenv("TMPDIR");
	struct stat st;
	int lfd;

	F.verbose = getenv("FUZZ_VERBOSE") != NULL;
	signal(SIGPIPE, SIG_IGN);
	log_setup(LOG_PRIO_ERR);
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";   /* SQLite on tmpfs: no disk in the loop */
	snprintf(F.dir, sizeof(F.dir), "%s/joule-fuzz-http.XXXXXX", base && *base ? base : "/tmp");
	require(mkdtemp(F.dir) != NULL, "mkdtemp");
	snprintf(F.db, sizeof(F.db), "%s/joule.db", F.dir);
	atexit(rm_dir);
	require(uv_loop_init(&F.loop) == 0, "uv_loop_init");

	/* an abstract address: unique per process, gone with it */
	F.sa.sun_family = AF_UNIX;
	int k = snprintf(F.sa.sun_path + 1, sizeof(F.sa.sun_path) - 1, "joule-fuzz-http-%ld",
			 (long)getpid());
	F.salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)k);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	require(lfd >= 0 && bind(lfd, (struct sockaddr *)&F.sa, F.salen) == 0 &&
		listen(lfd, 16) == 0, "listen on the abstract socket");
	http_limits_default(&lim);
	lim.max_header_bytes = FZ_MAX_HEADER;
	lim.max_body_bytes = FZ_MAX_BODY;
	lim.max_connections = 4;
	if (http_server_start(&F.loop, "fuzz", lfd, &lim, on_request, NULL, &F.srv, &e) < 0) {
		fprintf(stderr, "fuzz_http: http_server_start: %s\n", e.message);
		rm_dir();
		abort();
	}

	/* the pristine database, made through the API */
	api_up();
	setup_request("POST", "/v1/fleet", "", SETUP_FLEET, 200);
	setup_request("POST", "/v1/jobs", "", SETUP_JOB1, 201);
	setup_request("POST", "/v1/jobs", "Idempotency-Key: fuzz-seed-1\r\n", SETUP_JOB2, 201);
	api_down();   /* closing the last connection checkpoints the WAL into the file */
	FILE *fp = fopen(F.db, "rb");
	require(fp != NULL, "open the pristine database");
	require(fseek(fp, 0, SEEK_END) == 0, "seek");
	long n = ftell(fp);
	require(n > 0 && fseek(fp, 0, SEEK_SET) == 0, "size the pristine database");
	F.pristine = malloc((size_t)n);
	require(F.pristine && fread(F.pristine, 1, (size_t)n, fp) == (size_t)n, "read it");
	fclose(fp);
	F.pristine_len = (size_t)n;
	F.ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int32_t *whole = NULL;
	uint32_t nwhole = 0;

	if (!F.ready)
		setup();
	for (int pass = 0; pass < 2; pass++) {
		db_from_pristine();
		api_up();
		exchange(data, size, pass == 1);
		check_exchange();
		if (F.verbose) {
			fprintf(stderr, "pass %d: %u handled, answers:", pass, F.nsnap - 1);
			for (uint32_t i = 0; i < F.nresp; i++)
				fprintf(stderr, " %d", F.resp[i].status);
			fprintf(stderr, "\n");
		}
		if (pass == 0) {
			nwhole = F.nresp;
			whole = malloc((nwhole + 1) * sizeof(*whole));
			require(whole != NULL, "out of memory");
			for (uint32_t i = 0; i < nwhole; i++)
				whole[i] = F.resp[i].status;
		} else {
			require(F.nresp == nwhole, "chunked and whole sends get as many answers");
			for (uint32_t i = 0; i < nwhole; i++)
				require(F.resp[i].status == whole[i],
					"chunked and whole sends get the same statuses");
		}
		api_down();
	}
	free(whole);
	return 0;
}
