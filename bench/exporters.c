/*
 * exporters — many fake node exporters in one process, for bench/run-telemetry: N listening
 * sockets on 127.0.0.1 ports BASE .. BASE+N-1, each answering GET /npu with an 8-chip
 * npu-exporter page (sample timestamps = now) and any other path with an 8-GPU
 * dcgm-exporter page (25 families, the real exporter's label set).
 *
 * One thread, epoll, non-blocking sockets, HTTP/1.1 keep-alive (the scraper reuses
 * connections). Pages are generated at start (npu: again every second, for fresh
 * timestamps); every exporter serves the same page (GPU g draws 300 + 41.5 g W, chip i
 * 250 + 10 i W).
 * Prints "ready N" on stdout once every port listens; runs until SIGTERM/SIGINT, then
 * prints "served R requests, B bytes" and exits 0.
 *
 * Never: blocks, reads more than 8 KiB of request head, keeps a connection with an unread
 * answer queued behind another (one request at a time per connection).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 65536
#define HEAD_MAX 8192

struct conn {
	int fd;
	int port_index;
	char in[HEAD_MAX];
	size_t inlen;
	const char *out;    /* the answer being sent (a page plus its head) */
	char *own;          /* out when this connection owns it */
	size_t outlen, outoff;
};

static volatile sig_atomic_t stop;
static char *dcgm_body, *npu_body;
static size_t dcgm_len, npu_len;
static uint64_t requests, bytes;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
}

static const char *const dcgm_families[][3] = {
	{"DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."},
	{"DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."},
	{"DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."},
	{"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."},
	{"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."},
	{"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."},
	{"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", "Total number of PCIe retries."},
	{"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."},
	{"DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."},
	{"DCGM_FI_DEV_ENC_UTIL", "gauge", "Encoder utilization (in %)."},
	{"DCGM_FI_DEV_DEC_UTIL", "gauge", "Decoder utilization (in %)."},
	{"DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."},
	{"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."},
	{"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."},
	{"DCGM_FI_DEV_FB_RESERVED", "gauge", "Framebuffer memory reserved (in MiB)."},
	{"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for uncorrectable errors"},
	{"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors"},
	{"DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"},
	{"DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", "vGPU License status"},
	{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."},
	{"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."},
	{"DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active sending or receiving data."},
	{"DCGM_FI_PROF_PCIE_TX_BYTES", "counter", "The number of bytes of active pcie tx data including both header and payload."},
	{"DCGM_FI_PROF_PCIE_RX_BYTES", "counter", "The number of bytes of active pcie rx data including both header and payload."},
	{"DCGM_FI_DRIVER_VERSION", "gauge", "Driver version."},
};

static void make_dcgm(void)
{
	struct sbuf b = {0};
	for (size_t f = 0; f < sizeof(dcgm_families) / sizeof(dcgm_families[0]); f++) {
		const char *name = dcgm_families[f][0];
		sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, dcgm_families[f][2], name,
			  dcgm_families[f][1]);
		for (int g = 0; g < 8; g++) {
			sb_printf(&b, "%s{gpu=\"%d\",UUID=\"GPU-a8394b51-c086-568a-9f1a-c1e1c934c4%02d\","
				  "pci_bus_id=\"00000000:%02X:00.0\",device=\"nvidia%d\","
				  "modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"bench-node\","
				  "DCGM_FI_DRIVER_VERSION=\"580.95.05\"%s} ",
				  name, g, g, 0x18 + g * 0x10, g,
				  strcmp(name, "DCGM_FI_DEV_XID_ERRORS") == 0
					  ? ",err_code=\"0\",err_msg=\"No Error\"" : "");
			if (strcmp(name, "DCGM_FI_DEV_POWER_USAGE") == 0)
				sb_printf(&b, "%.6f\n", 300.0 + 41.5 * g);
			else if (strcmp(name, "DCGM_FI_DEV_XID_ERRORS") == 0)
				sb_printf(&b, "0\n");
			else
				sb_printf(&b, "%d\n", 1000 + 37 * g + (int)f);
		}
	}
	dcgm_body = b.p;
	dcgm_len = b.len;
}

static void make_npu(void)
{
	static const char *const fam[] = {"npu_chip_info_power", "npu_chip_info_health_status",
					  "npu_chip_info_temperature", "npu_chip_info_utilization",
					  "npu_chip_info_hbm_used_memory", "npu_chip_info_hbm_total_memory",
					  "npu_chip_info_aicore_current_freq", "npu_chip_info_error_code"};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	struct sbuf b = {0};
	sb_printf(&b, "# HELP machine_npu_nums Amount of npu installed on the machine.\n"
		      "# TYPE machine_npu_nums gauge\nmachine_npu_nums 8\n");
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		sb_printf(&b, "# HELP %s the npu chip's %s\n# TYPE %s gauge\n", fam[f], fam[f] + 14,
			  fam[f]);
		for (int id = 0; id < 8; id++) {
			double v = f == 0 ? 250.0 + 10 * id : f == 1 ? 1 : 40 + id;
			sb_printf(&b, "%s{container_name=\"\",id=\"%d\",model_name=\"910B3-Ascend-V1\","
				  "namespace=\"\",pcie_bus_info=\"0000:%02X:00.0\",pod_name=\"\","
				  "vdie_id=\"\"} %g %lld\n", fam[f], id, 0xc1 + id, v, ms);
		}
	}
	free(npu_body);
	npu_body = b.p;
	npu_len = b.len;
}

static void conn_free(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->own);
	free(c);
}

/* Send what is queued; -1 when the connection is done for. */
static int flush_out(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		c->outoff += (size_t)n;
		bytes += (uint64_t)n;
	}
	free(c->own);
	c->own = NULL;
	c->out = NULL;
	c->outlen = c->outoff = 0;
	return 0;
}

/* Answer a complete request head at the front of c->in. */
static void answer(struct conn *c, size_t headlen)
{
	bool npu = strncmp(c->in, "GET /npu", 8) == 0;
	bool close_after = strcasestr(c->in, "\r\nConnection: close") != NULL;
	const char *body = npu ? npu_body : dcgm_body;
	size_t blen = npu ? npu_len : dcgm_len;
	struct sbuf b = {0};
	sb_printf(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		      "Content-Length: %zu\r\n%s\r\n", blen, close_after ? "Connection: close\r\n" : "");
	b.p = realloc(b.p, b.len + blen);
	if (!b.p)
		abort();
	memcpy(b.p + b.len, body, blen);
	c->own = b.p;
	c->out = b.p;
	c->outlen = b.len + blen;
	c->outoff = 0;
	memmove(c->in, c->in + headlen, c->inlen - headlen);
	c->inlen -= headlen;
	requests++;
}

int main(int argc, char **argv)
{
	long base = 20000, count = 5000;
	static const struct option lo[] = {{"base-port", required_argument, NULL, 'b'},
					   {"count", required_argument, NULL, 'n'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'b': base = strtol(optarg, NULL, 10); break;
		case 'n': count = strtol(optarg, NULL, 10); break;
		case 'h':
			printf("Usage: exporters [--base-port P (20000)] [--count N (5000)]\n"
			       "Serves N fake dcgm/npu exporters on 127.0.0.1:P..P+N-1 until SIGTERM.\n");
			return 0;
		default: return 2;
		}
	}
	if (count < 1 || base < 1 || base + count > MAX_PORTS) {
		fprintf(stderr, "exporters: ports %ld..%ld out of range\n", base, base + count - 1);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count * 2 + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)count + 64) {
			fprintf(stderr, "exporters: %ld ports need more file descriptors than %llu "
					"(ulimit -n)\n", count, (unsigned long long)rl.rlim_cur);
			return 1;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	make_dcgm();
	make_npu();
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int *lfd = calloc((size_t)count, sizeof(*lfd));
	if (ep < 0 || !lfd)
		return 1;
	for (long i = 0; i < count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base + i)),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
			fprintf(stderr, "exporters: cannot listen on 127.0.0.1:%ld: %s\n", base + i,
				strerror(errno));
			return 1;
		}
		lfd[i] = fd;
		/* listeners are tagged by an odd pointer value: index * 2 + 1 */
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i * 2 + 1};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	printf("ready %ld\n", count);
	fflush(stdout);
	struct epoll_event evs[256];
	time_t last = time(NULL);
	while (!stop) {
		int n = epoll_wait(ep, evs, 256, 200);
		if (time(NULL) != last) {
			last = time(NULL);
			make_npu();
		}
		for (int k = 0; k < n; k++) {
			if (evs[k].data.u64 & 1) {
				long i = (long)(evs[k].data.u64 >> 1);
				for (;;) {
					int fd = accept4(lfd[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					struct conn *c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					int one = 1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					c->fd = fd;
					c->port_index = (int)i;
					struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
								 .data.ptr = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			struct conn *c = evs[k].data.ptr;
			bool dead = false;
			if (flush_out(c) < 0)
				dead = true;
			while (!dead && !c->out) {
				char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
				if (end) {
					answer(c, (size_t)(end - c->in) + 4);
					if (flush_out(c) < 0)
						dead = true;
					continue;
				}
				if (c->inlen == sizeof(c->in)) {
					dead = true;
					break;
				}
				ssize_t r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
				if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
					break;
				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0) {
					dead = true;
					break;
				}
				c->inlen += (size_t)r;
			}
			if (dead)
				conn_free(ep, c);
		}
	}
	printf("served %llu requests, %llu bytes\n", (unsigned long long)requests,
	       (unsigned long long)bytes);
	return 0;
}
