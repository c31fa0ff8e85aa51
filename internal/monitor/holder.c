// The holder: the long-lived half of a monitor, in C, so that a running
// container costs a few hundred KiB instead of a Go runtime's megabytes.
//
// The Go half (main.go) creates the container, which makes the init its
// child, opens the stdio pipes (or gets the pty master) and listens on
// m.sock; then it execve()s this same binary with _BERTH_HOLDER set. This
// constructor runs before the Go runtime would start, sees the variable,
// and never returns: the process stays the init's parent, and the child
// subreaper flag survives execve (prctl(2), PR_SET_CHILD_SUBREAPER). What
// needs the runtime library (start, and delete at the end) is done by short
// Go helpers it forks (_BERTH_MONITOR_OP).
//
// It speaks the same protocols as the Go monitor (see doc.go): the sync
// socket with the daemon (fd 3) until the container runs, and one JSON
// request line per m.sock connection. It writes the json-file log with
// the escaping and rotation of internal/logfile.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define HENV "_BERTH_HOLDER"
#define MAXCONN 128
#define MAXLINE (16 * 1024) // docker's partial-line cut
#define READBUF (32 * 1024)

enum { C_FREE, C_REQ, C_ATTACH, C_WAIT };

struct conn {
	int fd, state;
	int out, err, in;
	int owner; // a wait that takes the runtime's delete over (Handle.WaitOwned)
	char req[1024];
	size_t reqlen;
};

static struct {
	const char *state, *id, *logpath, *oomfile, *fifo;
	int initpid, sync, listen, outfd, errfd, infd, master, tty, once;
	long long logmax;
	int logfiles;
	int logfd;
	long long logsize;
	char *line[2];
	size_t linelen[2];
	struct conn c[MAXCONN];
	int exited, status;
	struct timespec at;
	int answered;
	char exitjson[512];
	// Stdin waiting for the container to read: while there is some, no
	// more is read from any client (back-pressure to the clients' sockets
	// instead of a blocked loop).
	char *pend;
	size_t pendlen, pendoff;
	struct conn *pendc;
} H;

static int envint(const char *k, int def) {
	const char *v = getenv(k);
	return v && *v ? atoi(v) : def;
}

static void logerr(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "monitor (holder): ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static int writeall(int fd, const void *p, size_t n) {
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

// ---- time and JSON, as Go's encoding/json and time.RFC3339Nano ----

static size_t fmt_time(char *b, size_t n, const struct timespec *ts) {
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t k = strftime(b, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts->tv_nsec) {
		char frac[16];
		snprintf(frac, sizeof frac, ".%09ld", ts->tv_nsec);
		size_t l = strlen(frac);
		while (frac[l - 1] == '0')
			frac[--l] = 0;
		k += (size_t)snprintf(b + k, n - k, "%s", frac);
	}
	k += (size_t)snprintf(b + k, n - k, "Z");
	return k;
}

struct buf {
	char *p;
	size_t len, cap;
};

static void bput(struct buf *b, const void *s, size_t n) {
	if (b->len + n > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->len + n)
			c *= 2;
		char *q = realloc(b->p, c);
		if (!q)
			abort();
		b->p = q;
		b->cap = c;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void bputs(struct buf *b, const char *s) { bput(b, s, strlen(s)); }

// utf8len returns the length of a valid UTF-8 sequence at s (as Go's
// DecodeRune accepts it), or 0 if invalid; *r gets the rune.
static int utf8len(const unsigned char *s, size_t n, uint32_t *r) {
	unsigned char c = s[0];
	if (c >= 0xC2 && c <= 0xDF && n >= 2 && (s[1] & 0xC0) == 0x80) {
		*r = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF && n >= 3) {
		unsigned char lo = 0x80, hi = 0xBF;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
		if (s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) {
			*r = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
			return 3;
		}
	}
	if (c >= 0xF0 && c <= 0xF4 && n >= 4) {
		unsigned char lo = 0x80, hi = 0xBF;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
		if (s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
			*r = 0;
			return 4;
		}
	}
	return 0;
}

static void json_string(struct buf *b, const char *s, size_t n) {
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	bput(b, "\"", 1);
	size_t start = 0, i = 0;
	while (i < n) {
		unsigned char c = u[i];
		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
				i++;
				continue;
			}
			bput(b, s + start, i - start);
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
			switch (c) {
			case '"':
				bput(b, "\\\"", 2);
				break;
			case '\\':
				bput(b, "\\\\", 2);
				break;
			case '\n':
				bput(b, "\\n", 2);
				break;
			case '\r':
				bput(b, "\\r", 2);
				break;
			case '\t':
				bput(b, "\\t", 2);
				break;
			default:
				bput(b, e, 6);
			}
			start = ++i;
			continue;
		}
		uint32_t r = 0;
		int l = utf8len(u + i, n - i, &r);
		if (l == 0) {
			bput(b, s + start, i - start);
			bputs(b, "\\ufffd");
			start = ++i;
			continue;
		}
		if (r == 0x2028 || r == 0x2029) {
			bput(b, s + start, i - start);
			bputs(b, r == 0x2028 ? "\\u2028" : "\\u2029");
			i += (size_t)l;
			start = i;
			continue;
		}
		i += (size_t)l;
	}
	bput(b, s + start, n - start);
	bput(b, "\"", 1);
}

// ---- the log ----

static void log_open(void) {
	H.logfd = open(H.logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (H.logfd < 0) {
		logerr("open log %s: %s", H.logpath, strerror(errno));
		return;
	}
	struct stat st;
	H.logsize = fstat(H.logfd, &st) == 0 ? st.st_size : 0;
}

static void log_rotate(void) {
	if (H.logfiles <= 1) {
		if (ftruncate(H.logfd, 0) == 0)
			H.logsize = 0;
		return;
	}
	char from[4096], to[4096];
	for (int i = H.logfiles - 1; i >= 1; i--) {
		if (i > 1)
			snprintf(from, sizeof from, "%s.%d", H.logpath, i - 1);
		else
			snprintf(from, sizeof from, "%s", H.logpath);
		snprintf(to, sizeof to, "%s.%d", H.logpath, i);
		if (rename(from, to) < 0 && errno != ENOENT)
			logerr("rotate log %s: %s", H.logpath, strerror(errno));
	}
	close(H.logfd);
	log_open();
}

static void log_write(int stream, const char *p, size_t n, const struct timespec *ts) {
	static struct buf b;
	if (H.logfd < 0)
		return;
	b.len = 0;
	bputs(&b, "{\"log\":");
	json_string(&b, p, n);
	bputs(&b, stream ? ",\"stream\":\"stderr\",\"time\":\"" : ",\"stream\":\"stdout\",\"time\":\"");
	char t[64];
	bput(&b, t, fmt_time(t, sizeof t, ts));
	bputs(&b, "\"}\n");
	if (H.logmax > 0 && H.logsize > 0 && H.logsize + (long long)b.len > H.logmax)
		log_rotate();
	if (writeall(H.logfd, b.p, b.len) == 0)
		H.logsize += (long long)b.len;
	if (b.cap > 64 * 1024) {
		free(b.p);
		b.p = NULL;
		b.cap = 0;
	}
}

// log_chunk splits output into lines; a line longer than MAXLINE is cut
// into partial entries, as docker's copier does.
static void log_chunk(int s, const char *p, size_t n, const struct timespec *ts) {
	if (!H.logpath)
		return;
	if (!H.line[s])
		H.line[s] = malloc(MAXLINE);
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) + 1 : n;
		size_t room = MAXLINE - H.linelen[s];
		if (take > room)
			take = room;
		memcpy(H.line[s] + H.linelen[s], p, take);
		H.linelen[s] += take;
		p += take;
		n -= take;
		if (H.line[s][H.linelen[s] - 1] == '\n' || H.linelen[s] == MAXLINE) {
			log_write(s, H.line[s], H.linelen[s], ts);
			H.linelen[s] = 0;
		}
	}
}

static void log_flush(const struct timespec *ts) {
	for (int s = 0; s < 2; s++)
		if (H.linelen[s]) {
			log_write(s, H.line[s], H.linelen[s], ts);
			H.linelen[s] = 0;
		}
}

// ---- connections ----

static void conn_close(struct conn *c) {
	if (c->state != C_FREE)
		close(c->fd);
	c->state = C_FREE;
}

// conn_slot is a free connection slot, or NULL.
static struct conn *conn_slot(void) {
	for (int i = 0; i < MAXCONN; i++)
		if (H.c[i].state == C_FREE)
			return &H.c[i];
	return NULL;
}

// accept_conn takes one connection from the listener (dropped when every
// slot is taken); -1 when none is waiting.
static int accept_conn(void) {
	int fd = accept4(H.listen, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	struct conn *c = conn_slot();
	if (!c)
		close(fd);
	else
		*c = (struct conn){.fd = fd, .state = C_REQ};
	return 0;
}

static void reply(struct conn *c, const char *s) { (void)writeall(c->fd, s, strlen(s)); }

static void close_stdin(void) {
	free(H.pend);
	H.pend = NULL;
	H.pendc = NULL;
	if (H.tty) {
		if (H.master >= 0)
			(void)writeall(H.master, "\x04", 1);
	} else if (H.infd >= 0) {
		close(H.infd);
		H.infd = -1;
	}
}

static void broadcast(int stream, const char *p, size_t n) {
	unsigned char hdr[8] = {(unsigned char)(stream + 1), 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
	                        (unsigned char)(n >> 8), (unsigned char)n};
	for (int i = 0; i < MAXCONN; i++) {
		struct conn *c = &H.c[i];
		if (c->state != C_ATTACH || (stream == 0 && !c->out) || (stream == 1 && !c->err))
			continue;
		int bad = 0;
		if (!H.tty)
			bad = writeall(c->fd, hdr, 8);
		if (!bad)
			bad = writeall(c->fd, p, n);
		if (bad)
			conn_close(c);
	}
}

static int has(const char *req, const char *key) { return strstr(req, key) != NULL; }

static unsigned long num(const char *req, const char *key) {
	const char *p = strstr(req, key);
	return p ? strtoul(p + strlen(key), NULL, 10) : 0;
}

static void handle_request(struct conn *c) {
	char *req = c->req;
	char msg[256];
	if (has(req, "\"op\":\"info\"")) {
		snprintf(msg, sizeof msg, "{\"pid\":%d,\"self\":%d%s}\n", H.initpid, getpid(), H.tty ? ",\"tty\":true" : "");
		reply(c, msg);
		conn_close(c);
	} else if (has(req, "\"op\":\"wait\"")) {
		if (H.answered) {
			reply(c, H.exitjson);
			conn_close(c);
		} else {
			c->state = C_WAIT;
			c->owner = has(req, "\"owner\":true");
		}
	} else if (has(req, "\"op\":\"resize\"")) {
		if (H.master >= 0) {
			struct winsize ws = {.ws_row = (unsigned short)num(req, "\"h\":"), .ws_col = (unsigned short)num(req, "\"w\":")};
			if (ioctl(H.master, TIOCSWINSZ, &ws) < 0) {
				snprintf(msg, sizeof msg, "{\"error\":\"set console size: %s\"}\n", strerror(errno));
				reply(c, msg);
				conn_close(c);
				return;
			}
		}
		reply(c, "{}\n");
		conn_close(c);
	} else if (has(req, "\"op\":\"attach\"")) {
		if (H.exited) {
			conn_close(c);
			return;
		}
		snprintf(msg, sizeof msg, "{\"pid\":%d%s}\n", H.initpid, H.tty ? ",\"tty\":true" : "");
		reply(c, msg);
		c->state = C_ATTACH;
		c->out = has(req, "\"stdout\":true");
		c->err = has(req, "\"stderr\":true");
		c->in = has(req, "\"stdin\":true");
		// A stalled reader is dropped rather than stall the container.
		struct timeval tv = {.tv_sec = 10};
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	} else {
		reply(c, "{\"error\":\"unknown request\"}\n");
		conn_close(c);
	}
}

static int stdin_fd(void) { return H.tty ? H.master : H.infd; }

// to_stdin queues client input for the container's stdin and writes
// what it can now; the fd is non-blocking.
static void to_stdin(struct conn *c, const char *p, size_t n) {
	int dst = stdin_fd();
	if (dst < 0 || n == 0)
		return;
	while (n > 0) {
		ssize_t w = write(dst, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0)
			return; // the container closed its stdin: drop
		p += w;
		n -= (size_t)w;
	}
	if (n > 0) {
		H.pend = malloc(n);
		if (!H.pend)
			return;
		memcpy(H.pend, p, n);
		H.pendlen = n;
		H.pendoff = 0;
		H.pendc = c;
	}
}

// flush_stdin writes queued input once the container's stdin is writable.
static void flush_stdin(void) {
	int dst = stdin_fd();
	while (H.pend && dst >= 0) {
		ssize_t w = write(dst, H.pend + H.pendoff, H.pendlen - H.pendoff);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0)
			break;
		H.pendoff += (size_t)w;
		if (H.pendoff == H.pendlen)
			break;
	}
	free(H.pend);
	H.pend = NULL;
	H.pendc = NULL;
}

// conn_readable handles input on a connection: the request line, then
// stdin of an attach.
static void conn_readable(struct conn *c) {
	if (c->state == C_REQ) {
		ssize_t n = read(c->fd, c->req + c->reqlen, sizeof c->req - 1 - c->reqlen);
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->reqlen += (size_t)n;
		c->req[c->reqlen] = 0;
		char *nl = strchr(c->req, '\n');
		if (!nl) {
			if (c->reqlen == sizeof c->req - 1)
				conn_close(c);
			return;
		}
		size_t rest = c->reqlen - (size_t)(nl + 1 - c->req);
		char extra[sizeof c->req];
		memcpy(extra, nl + 1, rest);
		*nl = 0;
		handle_request(c);
		if (c->state == C_ATTACH && rest > 0 && c->in)
			to_stdin(c, extra, rest);
		return;
	}
	char buf[READBUF];
	ssize_t n = read(c->fd, buf, sizeof buf);
	if (n > 0) {
		if (c->state == C_ATTACH && c->in)
			to_stdin(c, buf, (size_t)n);
		return;
	}
	// EOF: the client's stdin ended (or it went).
	if (c->state == C_ATTACH && c->in && H.once)
		close_stdin();
	if (c->state == C_WAIT || c->state == C_ATTACH) {
		if (c->state == C_WAIT || (!c->out && !c->err) || n < 0)
			conn_close(c);
		else
			c->in = -1; // half-closed: keep sending output, stop polling input
		return;
	}
	conn_close(c);
}

// ---- helpers in Go ----

// helper runs this binary as a Go monitor helper for op (start, delete)
// and returns its exit status; its stdout goes to out (if not NULL).
static int helper(const char *op, char *out, size_t outn) {
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		char e1[4200], e2[64];
		snprintf(e1, sizeof e1, "_BERTH_MONITOR_STATE=%s", H.state);
		snprintf(e2, sizeof e2, "_BERTH_MONITOR_OP=%s", op);
		char *env[] = {e1, e2, "GOGC=50", "GOMAXPROCS=1", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
		char *argv[] = {"berth-monitor", (char *)H.id, NULL};
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	close(p[1]);
	size_t got = 0;
	for (;;) {
		char tmp[1024];
		ssize_t n = read(p[0], tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out && got + (size_t)n < outn) {
			memcpy(out + got, tmp, (size_t)n);
			got += (size_t)n;
		}
	}
	if (out)
		out[got] = 0;
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// ---- the start ----

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

// start_init lets the created init run, as the runtime's Start does
// (internal/runtime, releaseInit): the init waits in open(2) of the exec
// fifo for writing until a reader opens it, then writes one byte and execs
// the container's process. Doing this here instead of in a Go helper
// spares a process start (a few milliseconds) per container start. The
// open does not block, so an init that died first cannot hang us; a pidfd
// tells such an init from a slow one. The byte may still be there after
// the init exited (true can run and exit before we read). Removing the
// fifo is what the runtime reads as "started" (Container.Status). res
// gets the answer for the daemon.
static int start_init(char *res, size_t n) {
	int fd = open(H.fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(res, n, "{\"error\":\"start container %s: open exec fifo: %s\"}", H.id, strerror(errno));
		return -1;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, H.initpid, 0);
	int ok = 0;
	for (;;) {
		struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
		int r = poll(pf, pidfd >= 0 ? 2 : 1, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		char b;
		if (pf[0].revents & POLLIN) {
			ssize_t got = read(fd, &b, 1);
			if (got == 1) {
				ok = 1;
				break;
			}
			if (got == 0 || (errno != EAGAIN && errno != EINTR))
				break; // the init closed the fifo without the byte
		} else if (pf[0].revents & (POLLHUP | POLLERR))
			break;
		if (pidfd >= 0 && pf[1].revents) {
			ok = read(fd, &b, 1) == 1;
			break;
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	close(fd);
	if (!ok) {
		snprintf(res, n, "{\"error\":\"start container %s: init exited before start\"}", H.id);
		return -1;
	}
	unlink(H.fifo);
	snprintf(res, n, "{\"running\":true}");
	return 0;
}

// ---- the exit ----

static int oom_killed(void) {
	if (!H.oomfile || !*H.oomfile)
		return 0;
	FILE *f = fopen(H.oomfile, "re");
	if (!f)
		return 0;
	char line[256];
	int oom = 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "oom_kill ", 9) && strtoull(line + 9, NULL, 10) > 0)
			oom = 1;
	fclose(f);
	return oom;
}

static void write_exit(void) {
	int code, sig = 0;
	if (WIFSIGNALED(H.status)) {
		sig = WTERMSIG(H.status);
		code = 128 + sig;
	} else
		code = WEXITSTATUS(H.status);
	char t[64], sigs[64] = "";
	fmt_time(t, sizeof t, &H.at);
	if (sig) {
		const char *ab = sigabbrev_np(sig);
		if (ab)
			snprintf(sigs, sizeof sigs, ",\"signal\":\"SIG%s\"", ab);
		else
			snprintf(sigs, sizeof sigs, ",\"signal\":\"signal %d\"", sig);
	}
	char body[400];
	snprintf(body, sizeof body, "{\"code\":%d%s%s,\"at\":\"%s\"}", code, sigs, oom_killed() ? ",\"oomKilled\":true" : "", t);
	snprintf(H.exitjson, sizeof H.exitjson, "{\"exit\":%s}\n", body);

	char path[4200], tmp[4300];
	snprintf(path, sizeof path, "%s/exit.json", H.state);
	snprintf(tmp, sizeof tmp, "%s/.tmp-exit.json.%d", H.state, getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	// No fsync: run-time state, see writeFileAtomic in proto.go.
	if (fd < 0 || writeall(fd, body, strlen(body)) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		logerr("write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

static void reap(void) {
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p <= 0)
			return;
		if (p == H.initpid && !H.exited) {
			H.exited = 1;
			H.status = st;
			clock_gettime(CLOCK_REALTIME, &H.at);
		}
	}
}

static void sync_send(const char *s) {
	if (H.sync >= 0)
		(void)send(H.sync, s, strlen(s), MSG_NOSIGNAL);
}

// drain_requests takes the connections and request lines that arrived
// but were not served when the loop ended, without waiting for more.
static void drain_requests(void) {
	fcntl(H.listen, F_SETFL, fcntl(H.listen, F_GETFL) | O_NONBLOCK);
	while (accept_conn() == 0)
		;
	for (int i = 0; i < MAXCONN; i++) {
		struct conn *c = &H.c[i];
		if (c->state != C_REQ)
			continue;
		ssize_t n = recv(c->fd, c->req + c->reqlen, sizeof c->req - 1 - c->reqlen, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		c->reqlen += (size_t)n;
		c->req[c->reqlen] = 0;
		char *nl = strchr(c->req, '\n');
		if (nl) {
			*nl = 0;
			handle_request(c);
		}
	}
}

// ---- the loop ----

static void holder_main(void) {
	H.state = getenv("_BH_STATE");
	H.id = getenv("_BH_ID");
	H.logpath = getenv("_BH_LOG");
	if (H.logpath && !*H.logpath)
		H.logpath = NULL;
	H.oomfile = getenv("_BH_OOM");
	H.fifo = getenv("_BH_FIFO");
	if (H.fifo && !*H.fifo)
		H.fifo = NULL;
	H.initpid = envint("_BH_PID", -1);
	H.sync = envint("_BH_SYNC", -1);
	H.listen = envint("_BH_LISTEN", -1);
	H.outfd = envint("_BH_OUT", -1);
	H.errfd = envint("_BH_ERR", -1);
	H.infd = envint("_BH_IN", -1);
	H.master = envint("_BH_MASTER", -1);
	H.tty = envint("_BH_TTY", 0);
	H.once = envint("_BH_ONCE", 0);
	H.logmax = atoll(getenv("_BH_LOGMAX") ? getenv("_BH_LOGMAX") : "0");
	H.logfiles = envint("_BH_LOGFILES", 1);
	H.logfd = -1;
	if (!H.state || !H.id || H.initpid <= 0 || H.listen < 0) {
		logerr("bad environment");
		_exit(1);
	}
	for (int fd = 3; fd < 1024; fd++) {
		if (fd == H.sync || fd == H.listen || fd == H.outfd || fd == H.errfd || fd == H.infd || fd == H.master)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	// Stdin is written without blocking (see to_stdin); output is read
	// only when poll says so, and a pty read may block otherwise.
	if (H.infd >= 0)
		fcntl(H.infd, F_SETFL, fcntl(H.infd, F_GETFL) | O_NONBLOCK);
	if (H.master >= 0)
		fcntl(H.master, F_SETFL, fcntl(H.master, F_GETFL) | O_NONBLOCK);
	if (H.logpath)
		log_open();
	signal(SIGPIPE, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

	char pidmsg[64];
	snprintf(pidmsg, sizeof pidmsg, "{\"pid\":%d}", H.initpid);
	sync_send(pidmsg);

	int running = 0, outs_open = (H.outfd >= 0) + (H.errfd >= 0) + (H.master >= 0);
	struct timespec deadline = {0};
	reap();
	for (;;) {
		struct pollfd pf[MAXCONN + 8];
		int idx[MAXCONN + 8];
		int n = 0;
		pf[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
		idx[n++] = -1;
		pf[n] = (struct pollfd){.fd = H.listen, .events = POLLIN};
		idx[n++] = -2;
		if (!running && H.sync >= 0) {
			pf[n] = (struct pollfd){.fd = H.sync, .events = POLLIN};
			idx[n++] = -3;
		}
		int srcs[3] = {H.outfd, H.errfd, H.master};
		for (int s = 0; s < 3; s++)
			if (srcs[s] >= 0 && running) {
				pf[n] = (struct pollfd){.fd = srcs[s], .events = POLLIN};
				idx[n++] = -10 - s;
			}
		if (H.pend && stdin_fd() >= 0) {
			pf[n] = (struct pollfd){.fd = stdin_fd(), .events = POLLOUT};
			idx[n++] = -4;
		}
		for (int i = 0; i < MAXCONN; i++)
			if (H.c[i].state != C_FREE && H.c[i].in != -1 && !(H.pend && H.c[i].state == C_ATTACH)) {
				pf[n] = (struct pollfd){.fd = H.c[i].fd, .events = POLLIN};
				idx[n++] = i;
			}
		int timeout = -1;
		if (H.exited) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (!deadline.tv_sec) {
				deadline = now;
				deadline.tv_sec += 2;
			}
			long ms = (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
			if (outs_open == 0 || ms <= 0)
				break;
			timeout = (int)ms;
		}
		int r = poll(pf, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR) {
			logerr("poll: %s", strerror(errno));
			break;
		}
		for (int k = 0; k < n && r > 0; k++) {
			if (!pf[k].revents)
				continue;
			int id = idx[k];
			if (id == -1) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) > 0)
					;
				reap();
			} else if (id == -2) {
				accept_conn();
			} else if (id == -3) {
				char m[512];
				ssize_t got = recv(H.sync, m, sizeof m - 1, 0);
				if (got <= 0 || !strstr((m[got] = 0, m), "\"start\":true")) {
					// The daemon went before the start: remove the container.
					helper("delete", NULL, 0);
					_exit(1);
				}
				char res[4096];
				// Without the fifo's path (poststart hooks to run), the
				// runtime's Start in a Go helper.
				int st = H.fifo ? start_init(res, sizeof res) : helper("start", res, sizeof res);
				if (st != 0 || !strstr(res, "\"running\":true")) {
					if (!strstr(res, "\"error\""))
						snprintf(res, sizeof res, "{\"error\":\"start helper exited %d\"}", st);
					sync_send(res);
					helper("delete", NULL, 0);
					_exit(1);
				}
				sync_send(res);
				close(H.sync);
				H.sync = -1;
				running = 1;
			} else if (id == -4) {
				flush_stdin();
			} else if (id <= -10) {
				int s = -10 - id;
				char buf[READBUF];
				ssize_t got = read(srcs[s], buf, sizeof buf);
				if (got > 0) {
					struct timespec ts;
					clock_gettime(CLOCK_REALTIME, &ts);
					int stream = s == 1 ? 1 : 0;
					broadcast(stream, buf, (size_t)got);
					log_chunk(stream, buf, (size_t)got, &ts);
				} else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
					// EOF, or EIO from a pty whose last slave closed.
					close(srcs[s]);
					if (s == 0)
						H.outfd = -1;
					else if (s == 1)
						H.errfd = -1;
					else
						H.master = -1;
					outs_open--;
				}
			} else if (H.c[id].state != C_FREE) {
				// (a slot closed earlier in this round is skipped)
				conn_readable(&H.c[id]);
			}
			r--;
		}
	}

	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	log_flush(&now);
	write_exit();
	// A wait that came while the output drained is answered, not dropped.
	drain_requests();
	// The attaches end with the output.
	int owned = 0;
	for (int i = 0; i < MAXCONN; i++) {
		if (H.c[i].state == C_ATTACH || H.c[i].state == C_REQ)
			conn_close(&H.c[i]);
		if (H.c[i].state == C_WAIT && H.c[i].owner)
			owned = 1;
	}
	close_stdin();
	// Leftovers killed, cgroup and runtime state removed, unless a waiter
	// took that over (the daemon does it in-process, and hears of the
	// exit a process start sooner). Then the socket goes and the waiters
	// hear, so the id is free for a new run when Wait returns.
	if (!owned) {
		helper("delete", NULL, 0);
		reap();
	}
	close(H.listen);
	char sock[4200];
	snprintf(sock, sizeof sock, "%s/m.sock", H.state);
	unlink(sock);
	H.answered = 1;
	for (int i = 0; i < MAXCONN; i++)
		if (H.c[i].state == C_WAIT) {
			reply(&H.c[i], H.exitjson);
			conn_close(&H.c[i]);
		}
	_exit(0);
}

__attribute__((constructor)) static void berth_monitor_holder(void) {
	const char *v = getenv(HENV);
	if (!v || !*v)
		return;
	holder_main();
}
