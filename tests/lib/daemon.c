/*
 * daemon — integration-test harness (see daemon.h for the contract).
 *
 * Owns: the temp directories of this test run, the daemon and joulectl child processes it
 * forks, one libcurl easy handle per daemon.
 * Never: asserts or exits (callers assert on the returned codes), uses a shell, signals a
 * process it did not start.
 */
#include "daemon.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

static pid_t td_run_pid;

struct td_buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct td_buf *b, const void *data, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void td_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int64_t td_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int td_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int td_listen_loopback(int port, int *bound)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*bound = ntohs(sa.sin_port);
	return fd;
}

void td_init(void)
{
	td_run_pid = getpid();
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_ALL);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void print_tail(const char *path, size_t max)
{
	char *text = NULL;
	size_t len = 0;
	if (td_read_file(path, &text, &len) < 0)
		return;
	const char *start = len > max ? text + len - max : text;
	fprintf(stderr, "---- %s (last %zu bytes) ----\n%s\n---- end ----\n", path,
		len > max ? max : len, start);
	free(text);
}

void td_sweep(void)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "joule-test.%ld.", (long)td_run_pid);
	DIR *dir = opendir("/tmp");
	if (!dir)
		return;
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		char path[300], log[PATH_MAX];
		snprintf(path, sizeof path, "/tmp/%s", de->d_name);
		snprintf(log, sizeof log, "%s/jouled.log", path);
		fprintf(stderr, "left behind by a failed test: %s\n", path);
		print_tail(log, 4000);
		rm_tree(path);
	}
	closedir(dir);
}

int td_make_dir(struct td_daemon *d)
{
	memset(d, 0, sizeof *d);
	if (!td_run_pid)
		td_init();
	snprintf(d->dir, sizeof d->dir, "/tmp/joule-test.%ld.XXXXXX", (long)td_run_pid);
	if (!mkdtemp(d->dir)) {
		int r = -errno;
		d->dir[0] = '\0';
		return r;
	}
	snprintf(d->sock, sizeof d->sock, "%s/joule.sock", d->dir);
	snprintf(d->db, sizeof d->db, "%s/joule.db", d->dir);
	snprintf(d->log, sizeof d->log, "%s/jouled.log", d->dir);
	return 0;
}

int td_start(struct td_daemon *d)
{
	return td_start_args(d, NULL);
}

int td_start_args(struct td_daemon *d, const char *const *extra_args)
{
	int r = td_make_dir(d);
	if (r < 0)
		return r;
	r = td_spawn(d, extra_args, NULL, &d->pid);
	if (r < 0)
		return r;
	return td_wait_ready(d, TD_READY_TIMEOUT_MS);
}

static void child_redirect(const char *out, const char *err)
{
	int in = open("/dev/null", O_RDONLY);
	if (in >= 0) {
		dup2(in, 0);
		close(in);
	}
	int fo = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
	int fe = err == out ? fo : open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fo < 0 || fe < 0)
		_exit(126);
	dup2(fo, 1);
	dup2(fe, 2);
	if (fo > 2)
		close(fo);
	if (fe > 2 && fe != fo)
		close(fe);
}

int td_spawn(struct td_daemon *d, const char *const *extra_args, const char *log_path,
	     pid_t *pid)
{
	const char *bin = getenv("JOULED");
	if (!bin || !*bin)
		return -ENOENT;
	const char *argv[32];
	size_t n = 0;
	argv[n++] = bin;
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	argv[n++] = "--db";
	argv[n++] = d->db;
	for (size_t i = 0; extra_args && extra_args[i] && n < 31; i++)
		argv[n++] = extra_args[i];
	argv[n] = NULL;
	const char *log = log_path ? log_path : d->log;

	pid_t parent = getpid();
	fflush(NULL);
	pid_t p = fork();
	if (p < 0)
		return -errno;
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		child_redirect(log, log);
		execv(bin, (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	*pid = p;
	return 0;
}

int td_wait_pid(pid_t pid, int timeout_ms, int *status)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		td_sleep_ms(10);
	}
}

static void drop_curl(struct td_daemon *d)
{
	if (d->curl) {
		curl_easy_cleanup(d->curl);
		d->curl = NULL;
	}
}

/* One GET /v1/health on a throw-away handle with a short timeout: 0 when 200. */
static int health_once(const char *sock)
{
	CURL *c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	long status = 0;
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, "http://localhost/v1/health");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
	FILE *sink = fopen("/dev/null", "w");
	if (sink)
		curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (sink)
		fclose(sink);
	curl_easy_cleanup(c);
	return rc == CURLE_OK && status == 200 ? 0 : -EAGAIN;
}

int td_wait_ready(struct td_daemon *d, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int st;
		if (d->pid > 0 && waitpid(d->pid, &st, WNOHANG) == d->pid) {
			fprintf(stderr, "jouled exited before it was ready (status 0x%x)\n", st);
			print_tail(d->log, 3000);
			d->pid = 0;
			return -ECHILD;
		}
		if (health_once(d->sock) == 0)
			return 0;
		if (now_ms() >= end) {
			fprintf(stderr, "jouled not ready after %d ms\n", timeout_ms);
			print_tail(d->log, 3000);
			return -ETIMEDOUT;
		}
		td_sleep_ms(20);
	}
}

int td_stop(struct td_daemon *d, int *status)
{
	if (d->pid <= 0)
		return -ESRCH;
	drop_curl(d);
	if (kill(d->pid, SIGTERM) < 0)
		return -errno;
	int st = 0;
	int r = td_wait_pid(d->pid, 10000, &st);
	if (r == -ETIMEDOUT) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, &st, 0);
	}
	d->pid = 0;
	if (r < 0)
		return r;
	if (status)
		*status = st;
	return 0;
}

int td_kill9(struct td_daemon *d)
{
	if (d->pid <= 0)
		return -ESRCH;
	drop_curl(d);
	if (kill(d->pid, SIGKILL) < 0)
		return -errno;
	int st;
	while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
		;
	d->pid = 0;
	return 0;
}

int td_restart(struct td_daemon *d)
{
	if (d->pid > 0)
		return -EBUSY;
	drop_curl(d);
	int r = td_spawn(d, NULL, NULL, &d->pid);
	if (r < 0)
		return r;
	return td_wait_ready(d, TD_READY_TIMEOUT_MS);
}

void td_cleanup(struct td_daemon *d)
{
	if (d->pid > 0) {
		int st;
		td_stop(d, &st);
	}
	drop_curl(d);
	rm_tree(d->dir);
	d->dir[0] = '\0';
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	return buf_add(ud, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct td_buf *b = ud;
	/* Keep only the last response's headers (after a 100 Continue, say). */
	if (size * n >= 5 && strncmp(p, "HTTP/", 5) == 0)
		b->len = 0;
	return buf_add(b, p, size * n) == 0 ? size * n : 0;
}

int td_http_n(struct td_daemon *d, const char *method, const char *path, const char *body,
	      size_t len, const char *const *headers, struct td_response *r)
{
	memset(r, 0, sizeof *r);
	if (!d->curl) {
		d->curl = curl_easy_init();
		if (!d->curl)
			return -ENOMEM;
	}
	CURL *c = d->curl;
	curl_easy_reset(c);         /* keeps the live connection */

	char url[2048];
	snprintf(url, sizeof url, "http://localhost%s", path);
	struct td_buf bb = { 0 }, hb = { 0 };
	struct curl_slist *hl = NULL;
	int ret = 0;

	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
	/* No "Expect: 100-continue" unless the caller asks for it. */
	bool expect = false;
	for (size_t i = 0; headers && headers[i]; i++)
		expect |= strncasecmp(headers[i], "Expect:", 7) == 0;
	if (!expect)
		hl = curl_slist_append(hl, "Expect:");
	if (body)
		hl = curl_slist_append(hl, "Content-Type: application/json");
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	if (!hl) {
		ret = -ENOMEM;
		goto fail;
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	if (strcmp(method, "GET") != 0 && !(body && strcmp(method, "POST") == 0)) {
		if (!body && strcmp(method, "POST") == 0) {
			curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		}
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}

	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "td_http %s %s: %s\n", method, path, curl_easy_strerror(rc));
		ret = -EIO;
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
	if (!bb.p && buf_add(&bb, "", 0) < 0) {
		ret = -ENOMEM;
		goto fail;
	}
	if (!hb.p && buf_add(&hb, "", 0) < 0) {
		ret = -ENOMEM;
		goto fail;
	}
	r->raw = bb.p;
	r->len = bb.len;
	r->headers = hb.p;
	bb.p = hb.p = NULL;
	json_error_t jerr;
	r->json = r->len ? json_loadb(r->raw, r->len, JSON_DECODE_ANY, &jerr) : NULL;
	curl_slist_free_all(hl);
	return 0;
fail:
	curl_slist_free_all(hl);
	free(bb.p);
	free(hb.p);
	/* A failed transfer may leave the connection in any state: start afresh next time. */
	drop_curl(d);
	return ret;
}

int td_http(struct td_daemon *d, const char *method, const char *path, const char *body,
	    const char *const *headers, struct td_response *r)
{
	return td_http_n(d, method, path, body, body ? strlen(body) : 0, headers, r);
}

json_t *td_get_json(struct td_daemon *d, const char *path)
{
	struct td_response r;
	json_t *j = NULL;
	if (td_http(d, "GET", path, NULL, NULL, &r) == 0 && r.status == 200 && r.json)
		j = json_incref(r.json);
	td_response_free(&r);
	return j;
}

void td_response_free(struct td_response *r)
{
	if (!r)
		return;
	free(r->raw);
	free(r->headers);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
}

int td_response_header(const struct td_response *r, const char *name, char *buf, size_t n)
{
	size_t nl = strlen(name);
	for (const char *p = r->headers; p && *p;) {
		const char *eol = strstr(p, "\r\n");
		size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
		if (linelen > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t vl = linelen - (size_t)(v - p);
			if (vl >= n)
				vl = n - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return 0;
		}
		if (!eol)
			break;
		p = eol + 2;
	}
	return -ENOENT;
}

int td_connect(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int td_raw(const char *sock, const char *req, size_t len, int timeout_ms, char **out,
	   size_t *outlen)
{
	int fd = td_connect(sock);
	if (fd < 0)
		return fd;
	struct td_buf b = { 0 };
	int ret = 0;
	int64_t end = now_ms() + timeout_ms;
	size_t off = 0;
	bool quiet_stop = false;
	/* Write and read interleaved, so a server answering early (413, 431) is heard. */
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | (off < len ? POLLOUT : 0) };
		int64_t left = end - now_ms();
		if (left <= 0)
			break;
		/* Once an answer came and everything is sent, 500 ms of quiet ends the read. */
		int wait = (int)left;
		if (b.len && off >= len && wait > 500) {
			wait = 500;
			quiet_stop = true;
		} else {
			quiet_stop = false;
		}
		int n = poll(&pfd, 1, wait);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto fail;
		}
		if (n == 0) {
			if (quiet_stop)
				break;
			continue;
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			char tmp[16384];
			ssize_t got = recv(fd, tmp, sizeof tmp, 0);
			if (got > 0) {
				if (buf_add(&b, tmp, (size_t)got) < 0) {
					ret = -ENOMEM;
					goto fail;
				}
				continue;
			}
			if (got == 0 || errno != EINTR)
				break;   /* EOF or reset: what we have is the answer */
		}
		if (off < len && (pfd.revents & POLLOUT)) {
			ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0)
				off += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				off = len;   /* peer stopped reading: keep listening for its answer */
		}
	}
	if (!b.p && buf_add(&b, "", 0) < 0) {
		ret = -ENOMEM;
		goto fail;
	}
	close(fd);
	*out = b.p;
	if (outlen)
		*outlen = b.len;
	return 0;
fail:
	close(fd);
	free(b.p);
	return ret;
}

/* ---- joulectl ---- */

int td_read_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct td_buf b = { 0 };
	char tmp[8192];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			close(fd);
			free(b.p);
			return r;
		}
		if (buf_add(&b, tmp, (size_t)n) < 0) {
			close(fd);
			free(b.p);
			return -ENOMEM;
		}
	}
	close(fd);
	if (!b.p && buf_add(&b, "", 0) < 0)
		return -ENOMEM;
	*out = b.p;
	if (len)
		*len = b.len;
	return 0;
}

int td_ctl(struct td_daemon *d, const char *socket, const char *const *argv, struct td_run *r)
{
	memset(r, 0, sizeof *r);
	const char *bin = getenv("JOULECTL");
	if (!bin || !*bin)
		return -ENOENT;
	const char *args[64];
	size_t n = 0;
	args[n++] = bin;
	for (size_t i = 0; argv && argv[i] && n < 63; i++)
		args[n++] = argv[i];
	args[n] = NULL;

	char out[PATH_MAX], err[PATH_MAX];
	unsigned k = d->runs++;
	snprintf(out, sizeof out, "%s/ctl.%u.out", d->dir, k);
	snprintf(err, sizeof err, "%s/ctl.%u.err", d->dir, k);
	const char *sock = socket ? socket : d->sock;

	pid_t parent = getpid();
	fflush(NULL);
	pid_t p = fork();
	if (p < 0)
		return -errno;
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		child_redirect(out, err);
		if (*sock)
			setenv("JOULE_SOCKET", sock, 1);
		else
			unsetenv("JOULE_SOCKET");
		setenv("NO_COLOR", "1", 1);
		setenv("TERM", "dumb", 1);
		execv(bin, (char *const *)args);
		fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	int st;
	int ret = td_wait_pid(p, 30000, &st);
	if (ret == -ETIMEDOUT) {
		kill(p, SIGKILL);
		waitpid(p, &st, 0);
		return ret;
	}
	if (ret < 0)
		return ret;
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if ((ret = td_read_file(out, &r->out, NULL)) < 0 ||
	    (ret = td_read_file(err, &r->err, NULL)) < 0) {
		td_run_free(r);
		return ret;
	}
	return 0;
}

void td_run_free(struct td_run *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* ---- fixtures ---- */

int td_data_path(const char *name, char *buf, size_t n)
{
	const char *dir = getenv("JOULE_TEST_DATA");
	if (!dir || !*dir)
		return -ENOENT;
	if ((size_t)snprintf(buf, n, "%s/%s", dir, name) >= n)
		return -ENAMETOOLONG;
	return 0;
}

json_t *td_data_json(const char *name)
{
	char path[PATH_MAX];
	if (td_data_path(name, path, sizeof path) < 0)
		return NULL;
	json_error_t e;
	json_t *j = json_load_file(path, 0, &e);
	if (!j)
		fprintf(stderr, "%s:%d:%d: %s\n", path, e.line, e.column, e.text);
	return j;
}

int td_ctl_as(struct td_daemon *d, uid_t uid, gid_t gid, const char *const *argv, char *err,
	      size_t errlen)
{
	char errpath[PATH_MAX];
	snprintf(errpath, sizeof(errpath), "%s/other.err", d->dir);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		const char *args[32] = {getenv("JOULECTL")};
		int n = 1;
		for (; argv[n - 1] && n < 31; n++)
			args[n] = argv[n - 1];
		args[n] = NULL;
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int devnull = open("/dev/null", O_RDWR);
		if (fd < 0 || devnull < 0)
			_exit(120);
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(fd, 2);
		setenv("JOULE_SOCKET", d->sock, 1);
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			_exit(121);
		execv(args[0], (char *const *)args);
		_exit(122);
	}
	int status;
	if (td_wait_pid(pid, 30000, &status) < 0)
		return -ETIMEDOUT;
	char *text = NULL;
	size_t len;
	err[0] = '\0';
	if (td_read_file(errpath, &text, &len) == 0) {
		snprintf(err, errlen, "%s", text);
		free(text);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
