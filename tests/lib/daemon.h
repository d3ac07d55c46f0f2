/*
 * daemon — integration-test harness: runs a real jouled in a private temp directory and
 * talks to it the way users do (HTTP over its Unix socket, and joulectl).
 *
 * Owns: the temp directory DIR (mkdtemp under /tmp, named joule-test.<run>.XXXXXX), the
 * daemon process started from $JOULED with --socket DIR/joule.sock --db DIR/joule.db
 * (stdout and stderr to DIR/jouled.log), one libcurl easy handle per daemon (so successive
 * requests reuse one keep-alive connection), and the output files of joulectl runs.
 * Never: asserts (every function returns 0 or a negative -errno and the tests assert),
 * talks to any daemon but its own, leaves a daemon behind its test: a daemon gets
 * PR_SET_PDEATHSIG(SIGKILL), so a test process that dies on a failed assertion takes its
 * daemon with it. The directory of such a test is left for td_sweep().
 *
 * Daemon states: none (pid 0) → td_spawn → running (pid > 0) → td_stop / td_kill9 /
 * td_wait_exit → none. td_restart = spawn again on the same socket and db.
 *
 * Output parameters are written only on success, except the td_response and td_run
 * records, which are always left in a state their _free function accepts.
 */
#ifndef JOULE_TEST_DAEMON_H
#define JOULE_TEST_DAEMON_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define TD_READY_TIMEOUT_MS 10000

struct td_daemon {
	char dir[128];               /* /tmp/joule-test.<run>.XXXXXX */
	char sock[PATH_MAX];
	char db[PATH_MAX];
	char log[PATH_MAX];
	pid_t pid;                  /* 0 when not running */
	void *curl;                 /* CURL *, created on first request */
	unsigned runs;              /* joulectl runs so far (names their output files) */
};

/* An HTTP answer. json is NULL when the body is not JSON; raw is NUL-terminated. */
struct td_response {
	long status;
	char *raw;
	size_t len;
	json_t *json;
	char *headers;              /* the response header block, NUL-terminated */
	long connects;              /* new connections libcurl opened for this request */
};

/* One joulectl run: exit code (or 128 + signal), outputs NUL-terminated. */
struct td_run {
	int code;
	char *out;
	char *err;
};

/* Call once from main() before running suites: names this run's temp directories. */
void td_init(void);

/* After the suites ran: print the log tail of every daemon directory a failed test left
 * behind (so meson's error log shows it) and remove those directories. */
void td_sweep(void);

/* Make a fresh temp dir and fill in d's paths (no daemon yet). */
int td_make_dir(struct td_daemon *d);

/* Make a fresh temp dir, start the daemon and wait until GET /v1/health answers 200.
 * -errno (with the log tail on stderr) when it does not come up. */
int td_start(struct td_daemon *d);
/* Same, with extra daemon arguments (NULL-terminated list, or NULL). */
int td_start_args(struct td_daemon *d, const char *const *extra_args);

/* Start the daemon on d's socket and db without waiting; extra_args NULL-terminated or
 * NULL. log_path NULL = d->log (appended). */
int td_spawn(struct td_daemon *d, const char *const *extra_args, const char *log_path,
	     pid_t *pid);

/* Poll GET /v1/health until 200 or timeout_ms; -ETIMEDOUT, or -ECHILD if the daemon
 * exited meanwhile. */
int td_wait_ready(struct td_daemon *d, int timeout_ms);

/* SIGTERM, then wait up to 10 s (then SIGKILL). *status is the wait status. */
int td_stop(struct td_daemon *d, int *status);
/* SIGKILL and reap. */
int td_kill9(struct td_daemon *d);
/* Start again on the same db and socket and wait until ready. */
int td_restart(struct td_daemon *d);
/* Wait for process pid to exit within timeout_ms; *status is the wait status. */
int td_wait_pid(pid_t pid, int timeout_ms, int *status);

/* Stop the daemon if running (SIGTERM, then SIGKILL), free the handle, remove DIR. */
void td_cleanup(struct td_daemon *d);

/*
 * One HTTP request over d's socket. body may be NULL (no body); headers is NULL or a
 * NULL-terminated list of "Name: value" lines. Returns 0 when an HTTP answer was read
 * (whatever its status), -EIO when the transfer failed (r->status is then 0).
 */
int td_http(struct td_daemon *d, const char *method, const char *path, const char *body,
	    const char *const *headers, struct td_response *r);
/* Same, body given with its length (may hold NULs, may be huge). */
int td_http_n(struct td_daemon *d, const char *method, const char *path, const char *body,
	      size_t len, const char *const *headers, struct td_response *r);
/* GET path and return its JSON (new reference) or NULL when not 200/JSON. */
json_t *td_get_json(struct td_daemon *d, const char *path);
void td_response_free(struct td_response *r);
/* Value of response header `name` (case-insensitive) copied into buf; -ENOENT if none. */
int td_response_header(const struct td_response *r, const char *name, char *buf, size_t n);

/* Open a connection to sock: the fd, or -errno. */
int td_connect(const char *sock);

/* Write raw bytes on a fresh connection (reading meanwhile, so an early answer is heard),
 * then read until EOF, timeout_ms, or 500 ms of quiet after an answer began; *out is
 * malloc'd and NUL-terminated. */
int td_raw(const char *sock, const char *req, size_t len, int timeout_ms, char **out,
	   size_t *outlen);

/*
 * Run $JOULECTL with argv (NULL-terminated, without the program name) and env JOULE_SOCKET
 * = socket (NULL: d->sock; "" : unset). stdin is /dev/null. Waits up to 30 s.
 */
int td_ctl(struct td_daemon *d, const char *socket, const char *const *argv, struct td_run *r);
void td_run_free(struct td_run *r);
/* Run $JOULECTL with argv as another user (uid/gid, no supplementary groups; the caller
 * must be root) against d; returns its exit code (or 128 + signal), its stderr copied into
 * err (cut at errlen); -errno when it could not be run. */
int td_ctl_as(struct td_daemon *d, uid_t uid, gid_t gid, const char *const *argv, char *err,
	      size_t errlen);

/* Read a whole file (NUL-terminated) into *out. */
int td_read_file(const char *path, char **out, size_t *len);
/* Load $JOULE_TEST_DATA/name as JSON (new reference) or NULL. */
json_t *td_data_json(const char *name);
/* Full path of $JOULE_TEST_DATA/name into buf. */
int td_data_path(const char *name, char *buf, size_t n);
/* Sleep ms milliseconds. */
void td_sleep_ms(int ms);
/* The monotonic clock in milliseconds. */
int64_t td_now_ms(void);
/* Write all of p to a socket (EINTR retried, no SIGPIPE): 0, or -1 when the peer is gone. */
int td_send_all(int fd, const void *p, size_t n);
/* A TCP listener on 127.0.0.1:port (0: any free port; *bound gets the port). The fd, or
 * -errno. For the loopback servers tests run (exporters, webhook receivers). */
int td_listen_loopback(int port, int *bound);

#endif
