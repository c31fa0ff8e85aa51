// The constructor half of package nsenter; see doc.go for why it exists.
//
// It runs in every process started from a binary that links the package,
// before the Go runtime, while the process has exactly one thread. With no
// _BERTH_NSENTER_FD in the environment it returns at once. Otherwise it
// reads a config from that fd (one end of a socketpair), joins and creates
// namespaces, forks once when a pid or time namespace only applies to
// children, reports the pid of the process that will run Go inside all of
// them, closes the fd, and returns. Failures go back over the socket as a
// message; the container's stdio is never written.
//
// The wire format is defined next to the Go encoder in nsenter.go; keep the
// two in step.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define BERTH_ENV_FD "_BERTH_NSENTER_FD"
#define BERTH_MAGIC 0x424e5331u /* "BNS1" */
#define BERTH_MAX_CONFIG (64 * 1024)
#define BERTH_MAX_JOIN 16

enum { REC_JOIN = 1, REC_UNSHARE = 2, REC_TIMENS_OFFSETS = 3 };
enum { MSG_USERMAP = 1, MSG_PID = 2, MSG_ERROR = 3 };

struct berth_msg {
	uint32_t type;
	int32_t value;
	uint32_t len;
};

struct berth_join {
	uint32_t type;
	int fd;
	const char *path;
};

static int berth_sock = -1;

static int berth_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int berth_read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void berth_send(uint32_t type, int32_t value, const char *text)
{
	struct berth_msg m = { .type = type, .value = value, .len = text ? (uint32_t)strlen(text) : 0 };
	// One buffer, one write: the parent reads header and text together.
	char buf[sizeof(m) + 1024];
	if (m.len > sizeof(buf) - sizeof(m))
		m.len = sizeof(buf) - sizeof(m);
	memcpy(buf, &m, sizeof(m));
	if (m.len)
		memcpy(buf + sizeof(m), text, m.len);
	if (berth_write_all(berth_sock, buf, sizeof(m) + m.len) < 0)
		_exit(1);
}

// berth_fail reports "what: strerror(err)" to the parent and exits. _exit,
// not exit: atexit handlers and stdio buffers belong to the program this
// process would have become.
static void berth_fail(int err, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void berth_fail(int err, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (berth_sock >= 0)
		berth_send(MSG_ERROR, err, text);
	_exit(1);
}

static const char *berth_ns_name(uint32_t type)
{
	switch (type) {
	case CLONE_NEWUSER: return "user";
	case CLONE_NEWNS: return "mount";
	case CLONE_NEWNET: return "network";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWCGROUP: return "cgroup";
	case CLONE_NEWTIME: return "time";
	}
	return NULL;
}

static void berth_join_one(const struct berth_join *j)
{
	if (setns(j->fd, (int)j->type) < 0)
		berth_fail(errno, "join %s namespace %s", berth_ns_name(j->type), j->path);
	close(j->fd);
}

__attribute__((constructor)) static void berth_nsenter(void)
{
	const char *env = getenv(BERTH_ENV_FD);
	if (env == NULL)
		return;

	char *end = NULL;
	errno = 0;
	long fd = strtol(env, &end, 10);
	// Remove the variable before anything else, so neither the Go code nor
	// a program it execs inherits it. glibc edits environ in place, which
	// is the array the Go runtime reads its environment from.
	unsetenv(BERTH_ENV_FD);
	if (errno != 0 || end == env || *end != '\0' || fd < 3 || fd > INT_MAX)
		_exit(1); // no socket to report on; the parent sees EOF
	berth_sock = (int)fd;

	struct { uint32_t magic, len; } hdr;
	if (berth_read_all(berth_sock, &hdr, sizeof(hdr)) < 0)
		berth_fail(errno, "read config header");
	if (hdr.magic != BERTH_MAGIC || hdr.len > BERTH_MAX_CONFIG)
		berth_fail(EINVAL, "read config: bad header");
	char *cfg = malloc(hdr.len ? hdr.len : 1);
	if (cfg == NULL)
		berth_fail(ENOMEM, "read config");
	if (berth_read_all(berth_sock, cfg, hdr.len) < 0)
		berth_fail(errno, "read config");

	struct berth_join joins[BERTH_MAX_JOIN];
	int njoin = 0;
	uint32_t unshare_flags = 0, joined = 0;
	const char *offsets = NULL;
	size_t offsets_len = 0;

	// Open every path before joining anything: a path such as
	// /proc/123/ns/net must be resolved in the mount namespace it was
	// written for, not in one joined a moment earlier.
	for (size_t off = 0; off < hdr.len;) {
		struct { uint16_t type, pad; uint32_t len; } rec;
		if (hdr.len - off < sizeof(rec))
			berth_fail(EINVAL, "read config: truncated record");
		memcpy(&rec, cfg + off, sizeof(rec));
		off += sizeof(rec);
		if (rec.len > hdr.len - off)
			berth_fail(EINVAL, "read config: truncated record");
		char *data = cfg + off;
		off += rec.len;
		switch (rec.type) {
		case REC_JOIN: {
			if (rec.len < 5 || njoin == BERTH_MAX_JOIN)
				berth_fail(EINVAL, "read config: bad join record");
			uint32_t type;
			memcpy(&type, data, 4);
			if (berth_ns_name(type) == NULL)
				berth_fail(EINVAL, "read config: unknown namespace type %#x", type);
			// The path is not NUL-terminated on the wire; moving it back
			// over the type field frees room for the NUL inside the record.
			memmove(data, data + 4, rec.len - 4);
			data[rec.len - 4] = '\0';
			int nfd = open(data, O_RDONLY | O_CLOEXEC);
			if (nfd < 0)
				berth_fail(errno, "open %s namespace %s", berth_ns_name(type), data);
			joins[njoin++] = (struct berth_join){ .type = type, .fd = nfd, .path = data };
			joined |= type;
			break;
		}
		case REC_UNSHARE:
			if (rec.len != 4)
				berth_fail(EINVAL, "read config: bad unshare record");
			memcpy(&unshare_flags, data, 4);
			break;
		case REC_TIMENS_OFFSETS:
			offsets = data;
			offsets_len = rec.len;
			break;
		default:
			berth_fail(EINVAL, "read config: unknown record type %u", rec.type);
		}
	}

	// The user namespace comes first: joining it grants the capabilities
	// that setns(2) checks against the owner of every other namespace it
	// owns. The mount namespace comes last so nothing after it depends on
	// the old root or cwd.
	for (int i = 0; i < njoin; i++)
		if (joins[i].type == CLONE_NEWUSER)
			berth_join_one(&joins[i]);
	for (int i = 0; i < njoin; i++)
		if (joins[i].type != CLONE_NEWUSER && joins[i].type != CLONE_NEWNS)
			berth_join_one(&joins[i]);
	for (int i = 0; i < njoin; i++)
		if (joins[i].type == CLONE_NEWNS)
			berth_join_one(&joins[i]);

	if (unshare_flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			berth_fail(errno, "create user namespace");
		// A process in a new user namespace may map only its own uid
		// (user_namespaces(7)); the parent, privileged in the namespace
		// above, writes the real maps and answers with one byte.
		berth_send(MSG_USERMAP, (int32_t)getpid(), NULL);
		char ack;
		if (berth_read_all(berth_sock, &ack, 1) < 0 || ack != 0)
			_exit(1); // the parent has the error already
	}
	// The other new namespaces are created after the user namespace so it
	// owns them.
	uint32_t rest = unshare_flags & ~(uint32_t)CLONE_NEWUSER;
	if (rest != 0 && unshare((int)rest) < 0)
		berth_fail(errno, "create namespaces (flags %#x)", rest);
	if (offsets != NULL) {
		// Offsets can be written only until the first process enters the
		// new time namespace, which is the child forked below.
		int ofd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (ofd < 0 || berth_write_all(ofd, offsets, offsets_len) < 0)
			berth_fail(errno, "write time namespace offsets");
		close(ofd);
	}

	if ((joined | unshare_flags) & CLONE_NEWUSER) {
		// Become root of the user namespace, so the Go code starts with a
		// mapped identity and can switch to the container user itself.
		if (setresgid(0, 0, 0) < 0)
			berth_fail(errno, "become gid 0 in the user namespace");
		// Supplementary groups of the host's root must not follow into the
		// container. setgroups(2) is refused (EPERM) where the namespace's
		// /proc/<pid>/setgroups says deny; then there is nothing to drop
		// that the kernel would honour anyway.
		if (setgroups(0, NULL) < 0 && errno != EPERM)
			berth_fail(errno, "drop supplementary groups");
		if (setresuid(0, 0, 0) < 0)
			berth_fail(errno, "become uid 0 in the user namespace");
	}

	// setns(2) and unshare(2) of a pid or time namespace change only the
	// namespace of children (pid_namespaces(7), time_namespaces(7)), so
	// fork once; the child is the process that runs Go, and this one
	// reports it and exits.
	if ((joined | unshare_flags) & (CLONE_NEWPID | CLONE_NEWTIME)) {
		pid_t child = fork();
		if (child < 0)
			berth_fail(errno, "fork into the pid namespace");
		if (child > 0) {
			berth_send(MSG_PID, (int32_t)child, NULL);
			_exit(0);
		}
	} else {
		berth_send(MSG_PID, (int32_t)getpid(), NULL);
	}

	// Closing the socket is the parent's signal that this process left the
	// constructor; it also keeps the fd out of the container.
	close(berth_sock);
	berth_sock = -1;
	free(cfg);
}
