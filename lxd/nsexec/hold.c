// hold: the monitor of an idle container, without a Go runtime
// (lxd/container/hold.go says when and why).
//
// $_BERTH_MONITOR_HOLD=<fd> names the monitor's shared memfd: a header
// (struct hold_header; lxd/container/handoff.go mirrors it) followed by the
// console ring. The Go monitor execve()d its own binary with it once init ran
// and nothing was in flight, so this process is still init's parent and still
// the pid in monitor.pid. It runs one epoll loop, before the Go runtime ever
// starts, and never allocates more than a response to send:
//
//   - init's pidfd: init exited (power-off, crash, reboot inside): resume Go;
//   - the console pty master, drained into the ring (and to an attached
//     client), so init never blocks writing its console;
//   - the monitor socket: it answers state, watch, console-log,
//     console-attach, console-resize and console-clear itself, with the
//     monitor protocol's own bytes (lxd/container/protocol.go);
//   - SIGTERM (a signalfd): resume Go, which stops the container.
//
// A request it does not answer (stop, freeze, thaw, stats, set-mounts,
// anything it does not fully understand) it leaves unread on its socket:
// it peeks, and only consumes what it answers. Resuming execve()s the binary
// again with $_BERTH_MONITOR_RESUME=<fd> and the header saying which fds are
// what, including every open connection; the Go monitor picks them up.
//
// Everything that reaches it comes from the container (console output) or
// from root on the host (the 0600 socket): reads go into fixed buffers,
// requests are parsed within HOLD_PEEK bytes, and a console client that falls
// behind is dropped.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define HOLD_ENV "_BERTH_MONITOR_HOLD"
#define RESUME_ENV "_BERTH_MONITOR_RESUME"

#define HOLD_MAGIC 0x424d4f4eu /* "BMON" */
#define HOLD_VERSION 1u
#define HOLD_HEADER 4096
#define HOLD_MAX_CONNS 64
#define HOLD_PATH_MAX 512
#define HOLD_STATE_MAX 1024
#define HOLD_RING_MAX (256 << 10)

#define CONN_REQUEST 1u
#define CONN_WATCH 2u
#define CONN_CONSOLE 3u

#define FROZEN_EVENTS 1u
#define FROZEN_V1 2u

// Must match lxd/container/handoff.go.
struct hold_conn {
	int32_t fd;
	uint32_t kind;
};

struct hold_header {
	uint32_t magic;
	uint32_t version;
	int32_t init_pid;
	int32_t pidfd;
	int32_t master;
	int32_t slave;
	int32_t listener;
	uint32_t frozen_fmt;
	uint32_t term;
	uint32_t nconns;
	uint32_t ring_size;
	uint32_t ring_next;
	uint32_t ring_full;
	uint32_t state_len;
	uint32_t status_at;
	uint32_t reboots;
	int64_t started_ns;
	uint8_t reserved[56];
	struct hold_conn conns[HOLD_MAX_CONNS];
	char frozen_path[HOLD_PATH_MAX];
	char state[HOLD_STATE_MAX];
};

_Static_assert(offsetof(struct hold_header, listener) == 24, "listener");
_Static_assert(offsetof(struct hold_header, ring_size) == 40, "ring_size");
_Static_assert(offsetof(struct hold_header, ring_next) == 44, "ring_next");
_Static_assert(offsetof(struct hold_header, reboots) == 60, "reboots");
_Static_assert(offsetof(struct hold_header, started_ns) == 64, "started_ns");
_Static_assert(offsetof(struct hold_header, conns) == 128, "conns");
_Static_assert(offsetof(struct hold_header, frozen_path) == 640, "frozen_path");
_Static_assert(offsetof(struct hold_header, state) == 1152, "state");
_Static_assert(sizeof(struct hold_header) <= HOLD_HEADER, "header size");

// A request the holder answers fits in HOLD_PEEK bytes; a longer one is not
// one of them and goes to Go.
#define HOLD_PEEK 512
// How long a client may take to send its request, or to read its answer
// (the Go monitor's read deadline is the same).
#define IO_TIMEOUT_MS 10000
// Answers that must wait for a slow reader (console-log: up to ~350 KB)
// beyond this many at once go to Go instead.
#define MAX_BIG_ANSWERS 4
// What an attached console client may fall behind by before it is dropped.
#define CONSOLE_OUT 16384
#define CONSOLE_IN 4096
// Console output read per wakeup before the other fds get a turn.
#define DRAIN_ROUNDS 16
// How long resuming waits for answers still being written.
#define FLUSH_MS 1000

enum { C_FREE, C_READ, C_WRITE, C_WATCH, C_CONSOLE };

struct conn {
	int fd;
	int state;
	uint32_t gen; // bumped per use of the slot: see conn_tag
	int after; // state once out is written: C_FREE (close), C_WATCH or C_CONSOLE
	int64_t deadline;
	char *out;
	size_t out_len, out_off;
};

// epoll tags: the low 8 bits say what, the high 32 which connection and bits 8-31
// which use of that connection's slot.
enum { T_LISTEN = 1, T_MASTER, T_PIDFD, T_SIGNAL, T_CONN };
#define GEN_MASK 0xffffffu
// How long the listener rests after accept ran out of fds or memory: the pending
// connection keeps it readable, and a level-triggered retry at once would spin.
#define ACCEPT_PAUSE_MS 100

static struct hold_header *hdr;
static unsigned char *ring_buf;
static uint32_t ring_size;
static int hdr_fd, ep, sig_fd, listen_on;
static int master_ok = 1;
static struct conn conns[HOLD_MAX_CONNS];
static int console_at = -1; // index of the attached console client
static char cout[CONSOLE_OUT];
static size_t cout_len;
static char cin[CONSOLE_IN];
static size_t cin_len, cin_off;
static int resume_wanted, term_seen;
static int64_t listen_paused_until;
static int accept_short; // accept is short of fds or memory
static char **hold_argv, **hold_envp;

// hlog writes one JSON log line to stderr (the monitor's log), as slog would.
static void hlog(const char *level, const char *msg, int err)
{
	struct timespec ts;
	struct tm tm;
	char when[32] = "";

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

	if (err)
		dprintf(2, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"holder: %s\",\"pid\":%d,\"err\":\"%s\"}\n",
			when, ts.tv_nsec / 1000000, level, msg, (int)getpid(), strerror(err));
	else
		dprintf(2, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"holder: %s\",\"pid\":%d}\n",
			when, ts.tv_nsec / 1000000, level, msg, (int)getpid());
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void watch_fd(int op, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};

	if (epoll_ctl(ep, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL)
		hlog("ERROR", "epoll_ctl", errno);
}

// conn_tag carries the slot's generation: an event of a connection closed earlier in
// the same epoll_wait batch must not reach the one accepted into its slot since.
static uint64_t conn_tag(int i) { return ((uint64_t)i << 32) | ((uint64_t)(conns[i].gen & GEN_MASK) << 8) | T_CONN; }

// conn_use starts a new use of slot i.
static void conn_use(int i, int fd, int state)
{
	conns[i].gen = (conns[i].gen + 1) & GEN_MASK;
	conns[i].fd = fd;
	conns[i].state = state;
}

// ---- the ring: the same rules as lxd/container/ring.go ----

static void ring_write(const unsigned char *p, size_t n)
{
	uint32_t next = hdr->ring_next;
	size_t c;

	if (next >= ring_size)
		next = 0;

	if (n > ring_size) {
		p += n - ring_size;
		n = ring_size;
		hdr->ring_full = 1;
	}

	c = ring_size - next;
	if (c > n)
		c = n;

	memcpy(ring_buf + next, p, c);
	if (c < n) {
		memcpy(ring_buf, p + c, n - c);
		hdr->ring_full = 1;
	}

	next = (uint32_t)((next + n) % ring_size);
	if (next == 0 && n > 0)
		hdr->ring_full = 1;

	hdr->ring_next = next;
}

// ---- answers ----

static void conn_close(int i)
{
	struct conn *c = &conns[i];

	if (c->state == C_FREE)
		return;

	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->state = C_FREE;

	if (i == console_at) {
		console_at = -1;
		cout_len = 0;
		cin_len = cin_off = 0;
		if (master_ok)
			watch_fd(EPOLL_CTL_MOD, hdr->master, EPOLLIN, T_MASTER);
	}
}

static void console_events(void);

// enter moves a connection whose answer is written to its next state.
static void enter(int i, int state)
{
	struct conn *c = &conns[i];

	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;

	switch (state) {
	case C_WATCH:
		c->state = C_WATCH;
		// Any sign of the client (data or hangup) ends the watch, as in Go.
		watch_fd(EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, conn_tag(i));
		break;
	case C_CONSOLE:
		c->state = C_CONSOLE;
		console_events();
		break;
	default:
		conn_close(i);
	}
}

// flush writes what it can of connection i's answer; 1 if all is written.
static int flush(int i)
{
	struct conn *c = &conns[i];
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			conn_close(i);
			return -1;
		}
		c->out_off += (size_t)n;
	}

	return 1;
}

// answer sends out (malloc'd, ours now) on connection i, then moves it on.
static void answer(int i, char *out, size_t len, int after)
{
	struct conn *c = &conns[i];

	if (out == NULL) {
		conn_close(i);
		return;
	}

	c->out = out;
	c->out_len = len;
	c->out_off = 0;
	c->after = after;

	if (flush(i) == 1) {
		enter(i, after);
		return;
	}

	if (c->state == C_FREE)
		return;

	c->state = C_WRITE;
	c->deadline = now_ms() + IO_TIMEOUT_MS;
	watch_fd(EPOLL_CTL_MOD, c->fd, EPOLLOUT, conn_tag(i));
}

static char *dupstr(const char *s, size_t *len)
{
	*len = strlen(s);
	return strdup(s);
}

// json_error is {"ok":false,"error":msg} for a msg of plain printable ASCII.
static char *json_error(const char *msg, size_t *len)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "{\"ok\":false,\"error\":\"%s\"}\n", msg);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;

	return dupstr(buf, len);
}

// frozen reads the cgroup file the Go monitor named (cgroup.FreezeStateFile).
static int frozen(void)
{
	char buf[1024];
	ssize_t n;
	int fd;
	char *p;

	if (hdr->frozen_fmt != FROZEN_EVENTS && hdr->frozen_fmt != FROZEN_V1)
		return 0;

	fd = open(hdr->frozen_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;

	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);

	if (n <= 0)
		return 0;
	buf[n] = '\0';

	if (hdr->frozen_fmt == FROZEN_V1)
		return strncmp(buf, "FROZEN", 6) == 0;

	for (p = buf; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, "frozen ", 7) == 0)
			return p[7] == '1';

	return 0;
}

// state_answer is {"ok":true,"state":{...}}: the Go monitor's State with
// the status filled in here.
static char *state_answer(size_t *len)
{
	const char *status = frozen() ? "frozen" : "running";
	const char *pre = "{\"ok\":true,\"state\":";
	size_t at = hdr->status_at, sl = hdr->state_len;
	char *out;
	int n;

	if (sl > HOLD_STATE_MAX || at > sl)
		return NULL;

	out = malloc(strlen(pre) + sl + strlen(status) + 3);
	if (out == NULL)
		return NULL;

	n = sprintf(out, "%s%.*s%s%.*s}\n", pre, (int)at, hdr->state, status, (int)(sl - at), hdr->state + at);
	*len = (size_t)n;

	return out;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64put(char *o, const unsigned char *in, size_t n, unsigned *acc, int *bits)
{
	size_t i;

	for (i = 0; i < n; i++) {
		*acc = (*acc << 8) | in[i];
		*bits += 8;
		while (*bits >= 6) {
			*bits -= 6;
			*o++ = b64[(*acc >> *bits) & 63];
		}
	}

	return o;
}

// console_log_answer is {"ok":true,"console":"<base64 of the ring, oldest
// first>"}, or {"ok":true} when it is empty (Go's omitempty).
static char *console_log_answer(size_t *len)
{
	const char *pre = "{\"ok\":true,\"console\":\"";
	uint32_t next = hdr->ring_next < ring_size ? hdr->ring_next : 0;
	size_t total = hdr->ring_full ? ring_size : next;
	unsigned acc = 0;
	int bits = 0;
	char *out, *o;

	if (total == 0)
		return dupstr("{\"ok\":true}\n", len);

	out = malloc(strlen(pre) + (total + 2) / 3 * 4 + 4);
	if (out == NULL)
		return NULL;

	o = stpcpy(out, pre);
	if (hdr->ring_full)
		o = b64put(o, ring_buf + next, ring_size - next, &acc, &bits);
	o = b64put(o, ring_buf, next, &acc, &bits);

	if (bits > 0) {
		*o++ = b64[(acc << (6 - bits)) & 63];
		*o++ = '=';
		if (bits == 2)
			*o++ = '=';
	}

	o = stpcpy(o, "\"}\n");
	*len = (size_t)(o - out);

	return out;
}

// ---- requests ----

struct req {
	char op[32];
	int has_width, has_height;
	long width, height;
	size_t end; // bytes to consume
};

enum { P_MORE, P_OK, P_GO };

static size_t skip_ws(const char *b, size_t n, size_t i)
{
	while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
		i++;
	return i;
}

// plain_string reads a JSON string without escapes at b[*i] (the opening
// quote) into out: P_OK, P_MORE (cut short) or P_GO (escapes, control
// characters, too long: Go decides).
static int plain_string(const char *b, size_t n, size_t *i, char *out, size_t max)
{
	size_t j = *i + 1, k = 0;

	if (*i >= n)
		return P_MORE;
	if (b[*i] != '"')
		return P_GO;

	for (; j < n; j++) {
		unsigned char ch = (unsigned char)b[j];

		if (ch == '"') {
			out[k] = '\0';
			*i = j + 1;
			return P_OK;
		}
		if (ch == '\\' || ch < 0x20 || ch >= 0x7f || k + 1 >= max)
			return P_GO;
		out[k++] = (char)ch;
	}

	return P_MORE;
}

// integer reads -?[0-9]{1,9} followed by a delimiter.
static int integer(const char *b, size_t n, size_t *i, long *v)
{
	size_t j = *i, digits = 0;
	int neg = 0;

	*v = 0;
	if (j < n && b[j] == '-') {
		neg = 1;
		j++;
	}

	for (; j < n && b[j] >= '0' && b[j] <= '9'; j++) {
		if (++digits > 9)
			return P_GO;
		*v = *v * 10 + (b[j] - '0');
	}

	if (j == n)
		return P_MORE;
	if (digits == 0 || (digits > 1 && b[*i + neg] == '0'))
		return P_GO;
	if (b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r')
		return P_GO;

	if (neg)
		*v = -*v;
	*i = j;

	return P_OK;
}

// parse reads one request object from the first n bytes on a connection.
// Only the exact keys op, width and height, once each, are understood.
static int parse(const char *b, size_t n, struct req *r)
{
	size_t i = skip_ws(b, n, 0);
	char key[16];
	int st, have_op = 0;

	memset(r, 0, sizeof(*r));

	if (i == n)
		return P_MORE;
	if (b[i++] != '{')
		return P_GO;

	i = skip_ws(b, n, i);
	if (i == n)
		return P_MORE;
	if (b[i] == '}')
		return P_GO; // no op: Go answers "unknown op"

	for (;;) {
		st = plain_string(b, n, &i, key, sizeof(key));
		if (st != P_OK)
			return st;

		i = skip_ws(b, n, i);
		if (i == n)
			return P_MORE;
		if (b[i++] != ':')
			return P_GO;
		i = skip_ws(b, n, i);
		if (i == n)
			return P_MORE;

		if (strcmp(key, "op") == 0 && !have_op) {
			st = plain_string(b, n, &i, r->op, sizeof(r->op));
			have_op = 1;
		} else if (strcmp(key, "width") == 0 && !r->has_width) {
			st = integer(b, n, &i, &r->width);
			r->has_width = 1;
		} else if (strcmp(key, "height") == 0 && !r->has_height) {
			st = integer(b, n, &i, &r->height);
			r->has_height = 1;
		} else {
			return P_GO;
		}
		if (st != P_OK)
			return st;

		i = skip_ws(b, n, i);
		if (i == n)
			return P_MORE;
		if (b[i] == '}')
			break;
		if (b[i++] != ',')
			return P_GO;
		i = skip_ws(b, n, i);
	}

	i++; // the closing brace
	if (i < n && b[i] == '\n')
		i++; // the encoder's newline
	r->end = i;

	return have_op ? P_OK : P_GO;
}

static int big_answers(void)
{
	int i, k = 0;

	for (i = 0; i < HOLD_MAX_CONNS; i++)
		if (conns[i].state == C_WRITE && conns[i].out_len > 4096)
			k++;

	return k;
}

// console_resize sets the console's size; it returns the answer.
static char *console_resize(long w, long h, size_t *len)
{
	struct winsize ws;
	char msg[128];

	if (w <= 0 || h <= 0 || w > 0xffff || h > 0xffff) {
		snprintf(msg, sizeof(msg), "invalid console size %ldx%ld", w, h);
		return json_error(msg, len);
	}

	memset(&ws, 0, sizeof(ws));
	ws.ws_col = (unsigned short)w;
	ws.ws_row = (unsigned short)h;

	if (ioctl(hdr->master, TIOCSWINSZ, &ws) < 0) {
		snprintf(msg, sizeof(msg), "%s", strerror(errno));
		if (msg[0] >= 'A' && msg[0] <= 'Z')
			msg[0] = (char)(msg[0] - 'A' + 'a');
		return json_error(msg, len);
	}

	return dupstr("{\"ok\":true}\n", len);
}

// serve_request acts on connection i's request once it is all there.
static void serve_request(int i, uint32_t events)
{
	struct conn *c = &conns[i];
	char buf[HOLD_PEEK];
	struct req r;
	char *out = NULL;
	ssize_t n;
	size_t len = 0;
	int st, after = C_FREE;

	do
		n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_close(i);
		return;
	}
	if (n <= 0) {
		conn_close(i);
		return;
	}

	st = parse(buf, (size_t)n, &r);
	if (st == P_MORE && (size_t)n == sizeof(buf))
		st = P_GO;

	if (st == P_MORE) {
		// Edge-triggered: the next bytes wake us; a client that has
		// stopped sending half-way is done.
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			conn_close(i);
		return;
	}

	if (st == P_OK) {
		if (strcmp(r.op, "console-resize") == 0 && (!r.has_width || !r.has_height))
			st = P_GO;
		else if (strcmp(r.op, "console-resize") != 0 && (r.has_width || r.has_height))
			st = P_GO;
		else if (strcmp(r.op, "console-log") == 0 && big_answers() >= MAX_BIG_ANSWERS)
			st = P_GO;
		else if (strcmp(r.op, "state") != 0 && strcmp(r.op, "watch") != 0 &&
			 strcmp(r.op, "console-log") != 0 && strcmp(r.op, "console-attach") != 0 &&
			 strcmp(r.op, "console-resize") != 0 && strcmp(r.op, "console-clear") != 0)
			st = P_GO;
	}

	if (st == P_GO) {
		// Go reads it from the socket; nothing of it was consumed.
		resume_wanted = 1;
		return;
	}

	// Consume exactly the request: what follows on a console attach is input.
	do
		n = recv(c->fd, buf, r.end, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)r.end) {
		conn_close(i);
		return;
	}

	if (strcmp(r.op, "state") == 0) {
		out = state_answer(&len);
	} else if (strcmp(r.op, "watch") == 0) {
		out = state_answer(&len);
		after = C_WATCH;
	} else if (strcmp(r.op, "console-log") == 0) {
		out = console_log_answer(&len);
	} else if (strcmp(r.op, "console-clear") == 0) {
		hdr->ring_next = 0;
		hdr->ring_full = 0;
		out = dupstr("{\"ok\":true}\n", &len);
	} else if (strcmp(r.op, "console-resize") == 0) {
		out = console_resize(r.width, r.height, &len);
	} else if (console_at >= 0) {
		out = json_error("console busy", &len);
	} else {
		console_at = i;
		out = dupstr("{\"ok\":true}\n", &len);
		after = C_CONSOLE;
	}

	answer(i, out, len, after);
}

// ---- the console ----

// console_events sets what the attached client and the master wait for.
static void console_events(void)
{
	uint32_t mev = EPOLLIN;

	if (console_at >= 0 && conns[console_at].state == C_CONSOLE) {
		uint32_t ev = EPOLLRDHUP;

		if (cin_len == 0)
			ev |= EPOLLIN;
		if (cout_len > 0)
			ev |= EPOLLOUT;
		watch_fd(EPOLL_CTL_MOD, conns[console_at].fd, ev, conn_tag(console_at));

		if (cin_len > 0)
			mev |= EPOLLOUT;
	}

	if (master_ok)
		watch_fd(EPOLL_CTL_MOD, hdr->master, mev, T_MASTER);
}

static void console_out(const unsigned char *p, size_t n)
{
	if (console_at < 0 || conns[console_at].state != C_CONSOLE)
		return;

	if (n > sizeof(cout) - cout_len) {
		// Too far behind: detach it rather than stall the console.
		conn_close(console_at);
		return;
	}

	memcpy(cout + cout_len, p, n);
	cout_len += n;
}

static void console_flush(void)
{
	ssize_t n;

	if (console_at < 0 || cout_len == 0)
		return;

	do
		n = send(conns[console_at].fd, cout, cout_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		conn_close(console_at);
		return;
	}

	memmove(cout, cout + n, cout_len - (size_t)n);
	cout_len -= (size_t)n;
}

static void drain_master(void)
{
	unsigned char buf[4096];
	ssize_t n;
	int round;

	for (round = 0; round < DRAIN_ROUNDS; round++) {
		n = read(hdr->master, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			// Not while we hold the slave open; stop polling it
			// rather than spin, Go sorts it out on init's exit.
			hlog("WARN", "console master closed", n < 0 ? errno : 0);
			master_ok = 0;
			epoll_ctl(ep, EPOLL_CTL_DEL, hdr->master, NULL);
			break;
		}

		ring_write(buf, (size_t)n);
		console_out(buf, (size_t)n);
	}

	console_flush();
}

static void console_input(uint32_t events)
{
	struct conn *c = &conns[console_at];
	ssize_t n;

	if (cin_len == 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
		do
			n = recv(c->fd, cin, sizeof(cin), MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
			conn_close(console_at);
			return;
		}
		if (n > 0) {
			cin_len = (size_t)n;
			cin_off = 0;
		}
	}

	while (cin_off < cin_len) {
		n = write(hdr->master, cin + cin_off, cin_len - cin_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_close(console_at);
			return;
		}
		cin_off += (size_t)n;
	}

	if (cin_off == cin_len)
		cin_len = cin_off = 0;

	if (events & EPOLLOUT)
		console_flush();
}

// ---- resuming Go ----

static void set_inherit(int fd)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

// flush_all gives answers being written up to FLUSH_MS to go out; the Go
// monitor cannot finish them.
static void flush_all(void)
{
	int64_t end = now_ms() + FLUSH_MS;
	struct pollfd pfds[HOLD_MAX_CONNS];
	int i, k;

	for (;;) {
		k = 0;
		for (i = 0; i < HOLD_MAX_CONNS; i++) {
			if (conns[i].state != C_WRITE)
				continue;
			if (flush(i) == 1)
				enter(i, conns[i].after);
			else if (conns[i].state == C_WRITE)
				pfds[k++] = (struct pollfd){.fd = conns[i].fd, .events = POLLOUT};
		}

		if (k == 0 || now_ms() >= end)
			break;

		poll(pfds, (nfds_t)k, 10);
	}

	for (i = 0; i < HOLD_MAX_CONNS; i++)
		if (conns[i].state == C_WRITE)
			conn_close(i);

	console_flush();
}

static void resume(void)
{
	char env_fd[64];
	char *env[64];
	struct signalfd_siginfo si;
	int i, k = 0;
	size_t e = 0;

	flush_all();

	// Take the pending SIGTERM before ignoring it (which discards it). One
	// that comes later is lost rather than fatal: Go's runtime would take a
	// pending one before the monitor could act on it.
	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo == SIGTERM)
			term_seen = 1;
	signal(SIGTERM, SIG_IGN);

	hdr->term = term_seen ? 1 : 0;

	for (i = 0; i < HOLD_MAX_CONNS; i++) {
		struct conn *c = &conns[i];

		if (c->state == C_FREE)
			continue;

		hdr->conns[k].fd = c->fd;
		hdr->conns[k].kind = c->state == C_WATCH ? CONN_WATCH : c->state == C_CONSOLE ? CONN_CONSOLE : CONN_REQUEST;
		set_inherit(c->fd);
		k++;
	}
	hdr->nconns = (uint32_t)k;

	set_inherit(hdr->master);
	set_inherit(hdr->slave);
	set_inherit(hdr->listener);
	set_inherit(hdr_fd);

	snprintf(env_fd, sizeof(env_fd), RESUME_ENV "=%d", hdr_fd);
	for (i = 0; hold_envp[i] != NULL && e < 62; i++)
		if (strncmp(hold_envp[i], HOLD_ENV "=", strlen(HOLD_ENV) + 1) != 0)
			env[e++] = hold_envp[i];
	env[e++] = env_fd;
	env[e] = NULL;

	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	execve("/proc/self/exe", hold_argv, env);

	// Still the holder: keep the container's console drained and try
	// again shortly (resume_wanted stays set).
	hlog("ERROR", "re-executing the monitor", errno);
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);
	signal(SIGTERM, SIG_DFL);
	if (term_seen)
		hdr->term = 1;
	for (i = 0; i < k; i++)
		fcntl(hdr->conns[i].fd, F_SETFD, FD_CLOEXEC);
	sleep(1);
}

// ---- the loop ----

static void accept_conns(void)
{
	int i, fd;

	for (;;) {
		for (i = 0; i < HOLD_MAX_CONNS && conns[i].state != C_FREE; i++)
			;
		if (i == HOLD_MAX_CONNS) {
			// Full: leave the rest in the backlog until one closes.
			watch_fd(EPOLL_CTL_MOD, hdr->listener, 0, T_LISTEN);
			listen_on = 0;
			return;
		}

		fd = accept4(hdr->listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				// The connection stays queued: rest the listener, try again later
				// (said once per shortage, not per retry).
				if (!accept_short)
					hlog("WARN", "accepting (resting the listener)", errno);
				accept_short = 1;
				watch_fd(EPOLL_CTL_MOD, hdr->listener, 0, T_LISTEN);
				listen_on = 0;
				listen_paused_until = now_ms() + ACCEPT_PAUSE_MS;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
				hlog("WARN", "accepting", errno);
			}
			return;
		}

		accept_short = 0;
		conn_use(i, fd, C_READ);
		conns[i].deadline = now_ms() + IO_TIMEOUT_MS;
		// Edge-triggered (a request only partly there waits for its
		// next bytes); adding reports what already arrived.
		watch_fd(EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, conn_tag(i));
	}
}

static void conn_event(int i, uint32_t events)
{
	struct conn *c = &conns[i];

	switch (c->state) {
	case C_READ:
		serve_request(i, events);
		break;
	case C_WRITE:
		if (flush(i) == 1)
			enter(i, c->after);
		break;
	case C_WATCH:
		conn_close(i);
		break;
	case C_CONSOLE:
		console_input(events);
		if (console_at >= 0)
			console_events();
		break;
	}
}

static int timeout_ms(void)
{
	int64_t first = -1, now = now_ms();
	int i;

	for (i = 0; i < HOLD_MAX_CONNS; i++)
		if ((conns[i].state == C_READ || conns[i].state == C_WRITE) && (first < 0 || conns[i].deadline < first))
			first = conns[i].deadline;

	if (!listen_on && listen_paused_until > now && (first < 0 || listen_paused_until < first))
		first = listen_paused_until;

	if (first < 0)
		return -1;
	if (first <= now)
		return 0;

	return (int)(first - now);
}

static void expire(void)
{
	int64_t now = now_ms();
	int i;

	for (i = 0; i < HOLD_MAX_CONNS; i++)
		if ((conns[i].state == C_READ || conns[i].state == C_WRITE) && conns[i].deadline <= now)
			conn_close(i);
}

static void adopt(void)
{
	uint32_t i;

	for (i = 0; i < hdr->nconns && i < HOLD_MAX_CONNS; i++) {
		int fd = hdr->conns[i].fd;

		if (fd < 3 || hdr->conns[i].kind != CONN_WATCH) {
			if (fd >= 3)
				close(fd);
			continue;
		}

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		conn_use((int)i, fd, C_WATCH);
		watch_fd(EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP, conn_tag((int)i));
	}
	hdr->nconns = 0;
}

static void loop(void)
{
	struct epoll_event evs[32];
	int n, i;

	for (;;) {
		if (resume_wanted)
			resume();

		n = epoll_wait(ep, evs, 32, resume_wanted ? 0 : timeout_ms());
		if (n < 0 && errno != EINTR) {
			hlog("ERROR", "epoll_wait", errno);
			resume_wanted = 1;
			continue;
		}

		for (i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			switch ((uint32_t)(tag & 0xff)) {
			case T_PIDFD:
			case T_SIGNAL:
				resume_wanted = 1;
				break;
			case T_MASTER:
				if (evs[i].events & EPOLLOUT && console_at >= 0)
					console_input(0);
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					drain_master();
				if (console_at >= 0)
					console_events();
				break;
			case T_LISTEN:
				accept_conns();
				break;
			case T_CONN: {
				uint32_t at = (uint32_t)(tag >> 32);

				if (at < HOLD_MAX_CONNS && conns[at].state != C_FREE && ((tag >> 8) & GEN_MASK) == conns[at].gen)
					conn_event((int)at, evs[i].events);
				break;
			}
			}
		}

		expire();

		if (!listen_on && now_ms() >= listen_paused_until) {
			for (i = 0; i < HOLD_MAX_CONNS && conns[i].state != C_FREE; i++)
				;
			if (i < HOLD_MAX_CONNS) {
				watch_fd(EPOLL_CTL_MOD, hdr->listener, EPOLLIN, T_LISTEN);
				listen_on = 1;
			}
		}
	}
}

static void fatal(const char *what)
{
	// Without a working holder the container would lose its parent's
	// service; go back to Go if we can, else leave init to the host.
	hlog("ERROR", what, errno);
	if (hdr != NULL)
		resume();
	_exit(1);
}

__attribute__((constructor)) static void hold(int argc, char **argv, char **envp)
{
	const char *env = getenv(HOLD_ENV);
	sigset_t term;
	struct stat st;
	char *end;
	long fd;
	void *mem;

	if (env == NULL || *env == '\0')
		return;

	(void)argc;
	hold_argv = argv;
	hold_envp = envp;

	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, NULL);

	fd = strtol(env, &end, 10);
	if (*end != '\0' || fd < 3 || fd > 1024) {
		hlog("ERROR", "bad " HOLD_ENV, EBADF);
		_exit(1);
	}
	hdr_fd = (int)fd;

	if (fstat(hdr_fd, &st) < 0 || st.st_size <= HOLD_HEADER || st.st_size > HOLD_HEADER + HOLD_RING_MAX) {
		hlog("ERROR", "bad shared memfd", errno ? errno : EINVAL);
		_exit(1);
	}

	mem = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, hdr_fd, 0);
	if (mem == MAP_FAILED) {
		hlog("ERROR", "mapping the shared memfd", errno);
		_exit(1);
	}

	hdr = mem;
	ring_buf = (unsigned char *)mem + HOLD_HEADER;
	ring_size = hdr->ring_size;
	if (hdr->magic != HOLD_MAGIC || hdr->version != HOLD_VERSION || ring_size != (uint64_t)st.st_size - HOLD_HEADER) {
		hlog("ERROR", "unknown shared memfd layout", EPROTO);
		_exit(1);
	}
	hdr->term = 0;

	fcntl(hdr_fd, F_SETFD, FD_CLOEXEC);
	fcntl(hdr->master, F_SETFD, FD_CLOEXEC);
	fcntl(hdr->slave, F_SETFD, FD_CLOEXEC);
	fcntl(hdr->listener, F_SETFD, FD_CLOEXEC);
	fcntl(hdr->pidfd, F_SETFD, FD_CLOEXEC);
	fcntl(hdr->master, F_SETFL, fcntl(hdr->master, F_GETFL) | O_NONBLOCK);
	fcntl(hdr->listener, F_SETFL, fcntl(hdr->listener, F_GETFL) | O_NONBLOCK);

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		fatal("epoll_create1");

	sig_fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0)
		fatal("signalfd");

	watch_fd(EPOLL_CTL_ADD, sig_fd, EPOLLIN, T_SIGNAL);
	watch_fd(EPOLL_CTL_ADD, hdr->pidfd, EPOLLIN, T_PIDFD);
	watch_fd(EPOLL_CTL_ADD, hdr->master, EPOLLIN, T_MASTER);
	watch_fd(EPOLL_CTL_ADD, hdr->listener, EPOLLIN, T_LISTEN);
	listen_on = 1;

	adopt();
	loop();
}
