/* What the agent does for each request. A request that cannot be done is
 * answered with an ERROR naming it and the session goes on; only a frame
 * that breaks the protocol (negative return) ends the session. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cgroup.h"
#include "rootfs.h"
#include "session_int.h"
#include "share.h"
#include "volume.h"

#define DEFAULT_SHUTDOWN_MS 10000
#define EXEC_REPORT_MS      30000

/* ---- reading a CREATE or EXEC ---- */

static void free_strv(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* Copies a repeated string tag into a NULL-terminated vector. */
static int get_strv(const struct husk_frame *f, unsigned tag, char ***out,
                    struct husk_error *err)
{
	struct husk_str *vals = calloc(HUSK_PROTO_MAX_STRINGS, sizeof(*vals));
	if (!vals)
		return husk_err(err, ENOMEM, "out of memory");
	int n = husk_frame_strv(f, tag, vals, HUSK_PROTO_MAX_STRINGS, err);
	char **v = n >= 0 ? calloc((size_t)n + 1, sizeof(char *)) : NULL;
	if (n >= 0 && !v)
		n = husk_err(err, ENOMEM, "out of memory");
	for (int i = 0; v && i < n; i++) {
		v[i] = strndup(vals[i].ptr, vals[i].len);
		if (!v[i]) {
			free_strv(v);
			v = NULL;
			n = husk_err(err, ENOMEM, "out of memory");
		}
	}
	free(vals);
	if (n < 0)
		return n;
	*out = v;
	return n;
}

static bool valid_id(const char *id)
{
	if (!id[0] || !strcmp(id, ".") || !strcmp(id, ".."))
		return false;
	for (const char *p = id; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' ||
		      *p == '-'))
			return false;
	}
	return true;
}

struct request {
	struct agent_proc_cfg proc;
	bool open_stdin;
	struct agent_container_cfg ct;
	struct agent_mount *mounts; /* what ct.mounts points at */
};

static void request_free(struct request *r)
{
	free_strv(r->proc.argv);
	free_strv(r->proc.env);
	free(r->mounts);
}

/* The tags CREATE and EXEC share: the process. */
static int read_proc(const struct husk_frame *f, struct request *r,
                     struct husk_error *err)
{
	struct agent_proc_cfg *p = &r->proc;
	int rc = get_strv(f, HUSK_TAG_ARGV, &p->argv, err);
	if (rc == 0)
		return husk_err(err, EINVAL, "no command given");
	if (rc >= 0)
		rc = get_strv(f, HUSK_TAG_ENV, &p->env, err);
	if (rc >= 0)
		rc = husk_frame_str_buf(f, HUSK_TAG_CWD, p->cwd, sizeof(p->cwd),
		                        err);
	if (rc >= 0 && p->cwd[0] && p->cwd[0] != '/')
		return husk_err(err, EINVAL,
		                "the working directory '%s' is not absolute",
		                p->cwd);
	struct agent_user_cfg *u = &p->user;
	uint32_t v;
	if (rc >= 0 && (rc = husk_frame_u32(f, HUSK_TAG_UID, &v, err)) == 1) {
		u->has_uid = true;
		u->uid = v;
		u->gid = 0;
		if ((rc = husk_frame_u32(f, HUSK_TAG_GID, &v, err)) == 1)
			u->gid = v;
		uint32_t groups[AGENT_MAX_GROUPS];
		int ng = rc >= 0 ? husk_frame_u32v(f, HUSK_TAG_GROUP, groups,
		                                   AGENT_MAX_GROUPS, err)
		                 : rc;
		for (int i = 0; i < ng; i++)
			u->groups[i] = groups[i];
		u->ngroups = ng > 0 ? (size_t)ng : 0;
		rc = ng;
	}
	if (rc >= 0)
		rc = husk_frame_str_buf(f, HUSK_TAG_USER, u->user,
		                        sizeof(u->user), err);
	bool b = false;
	if (rc >= 0 && (rc = husk_frame_bool(f, HUSK_TAG_TTY, &b, err)) == 1)
		p->tty = b;
	b = false;
	if (rc >= 0 && (rc = husk_frame_bool(f, HUSK_TAG_STDIN, &b, err)) == 1)
		r->open_stdin = b;
	if (rc >= 0 && (rc = husk_frame_u32(f, HUSK_TAG_ROWS, &v, err)) == 1)
		p->rows = v;
	if (rc >= 0 && (rc = husk_frame_u32(f, HUSK_TAG_COLS, &v, err)) == 1)
		p->cols = v;
	return rc < 0 ? rc : 0;
}

/* ROOT_DEVICE: a disk, found now; a share's directory, checked now and
 * mounted by rootfs_prepare; or in host mode a directory. */
static int read_root_device(const char *spec, bool host_mode,
                            struct agent_container_cfg *c,
                            struct husk_error *err)
{
	if (!agent_share_is_spec(spec))
		return rootfs_find_device(spec, c->root_device,
		                          sizeof(c->root_device), err);
	if (host_mode)
		return husk_err(err, EINVAL,
		                "root device '%s': 9p shares exist only in a "
		                "VM; the agent on the host takes a directory",
		                spec);
	char tag[AGENT_SHARE_TAG_MAX + 1], subdir[AGENT_SHARE_SPEC_MAX + 1];
	const char *why = agent_share_split(spec + 3, tag, subdir);
	if (why)
		return husk_err(err, EINVAL, "root device '%s': %s", spec, why);
	return agent_pathf(c->root_device, sizeof(c->root_device), err, "%s",
	                   spec);
}

static int read_container(const struct husk_frame *f, struct request *r,
                          bool host_mode, struct husk_error *err)
{
	struct agent_container_cfg *c = &r->ct;
	int rc = husk_frame_str_buf(f, HUSK_TAG_CONTAINER_ID, c->id,
	                            sizeof(c->id), err);
	if (rc >= 0 && !valid_id(c->id))
		return husk_err(err, EINVAL,
		                "container id '%s': use letters, digits, _ . -",
		                c->id);
	char spec[256];
	if (rc >= 0)
		rc = husk_frame_str_buf(f, HUSK_TAG_ROOT_DEVICE, spec,
		                        sizeof(spec), err);
	if (rc >= 0)
		rc = read_root_device(spec, host_mode, c, err);
	if (rc >= 0)
		rc = husk_frame_str_buf(f, HUSK_TAG_PID_NS_OF, c->pid_ns_of,
		                        sizeof(c->pid_ns_of), err);
	bool b = false;
	if (rc >= 0 &&
	    (rc = husk_frame_bool(f, HUSK_TAG_READONLY_ROOT, &b, err)) == 1)
		c->readonly_root = b;
	if (rc >= 0)
		rc = husk_frame_str_buf(f, HUSK_TAG_HOSTNAME, c->hostname,
		                        sizeof(c->hostname), err);
	if (rc >= 0)
		rc = husk_frame_u64(f, HUSK_TAG_MEMORY_LIMIT, &c->memory_limit,
		                    err);
	if (rc >= 0)
		rc =
		    husk_frame_u32(f, HUSK_TAG_CPU_MILLIS, &c->cpu_millis, err);
	if (rc >= 0)
		rc =
		    husk_frame_u64(f, HUSK_TAG_PIDS_LIMIT, &c->pids_limit, err);
	return rc < 0 ? rc : 0;
}

/* CREATE's volumes, checked here so that a malformed one is refused
 * before anything is mounted. */
static int read_mounts(const struct husk_frame *f, struct request *r,
                       bool host_mode, struct husk_error *err)
{
	struct husk_str vals[HUSK_PROTO_MAX_MOUNTS];
	int n = husk_frame_strv(f, HUSK_TAG_MOUNT, vals, HUSK_PROTO_MAX_MOUNTS,
	                        err);
	if (n <= 0)
		return n;
	r->mounts = calloc((size_t)n, sizeof(*r->mounts));
	if (!r->mounts)
		return husk_err(err, ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		int rc = agent_mount_parse(vals[i].ptr, vals[i].len, host_mode,
		                           &r->mounts[i], err);
		if (rc)
			return rc;
	}
	r->ct.mounts = r->mounts;
	r->ct.nmounts = (size_t)n;
	return 0;
}

/* ---- processes ---- */

static struct proc *new_proc(struct session *s, uint32_t stream,
                             struct husk_error *err)
{
	if (stream == 0)
		return husk_err(err, EINVAL, "stream 0 names no process"), NULL;
	if (session_proc(s, stream))
		return husk_err(err, EEXIST, "stream %u is in use", stream),
		       NULL;
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		if (!s->procs[i].used)
			return &s->procs[i];
	}
	husk_err(err, EAGAIN, "too many processes (%d)", SESSION_MAX_PROCS);
	return NULL;
}

static void nonblock(int fd)
{
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void adopt(struct proc *p, uint32_t stream, struct agent_spawn *sp,
                  bool tty, bool open_stdin)
{
	*p = (struct proc){
	    .used = true, .stream = stream, .pid = sp->pid, .tty = tty};
	p->start_fd = sp->start_fd;
	p->report_fd = sp->report_fd;
	p->stdin_fd = sp->stdin_fd;
	p->out[0].fd = -1;
	p->out[1] = (struct out_stream){sp->stdout_fd,
	                                HUSK_PROTO_INITIAL_CREDIT, false};
	p->out[2] = (struct out_stream){
	    sp->stderr_fd, HUSK_PROTO_INITIAL_CREDIT, sp->stderr_fd < 0};
	p->in_credit = HUSK_PROTO_INITIAL_CREDIT;
	nonblock(p->stdin_fd);
	nonblock(p->out[1].fd);
	nonblock(p->out[2].fd);
	if (!open_stdin && !p->tty && p->stdin_fd >= 0) {
		/* Without -i the process reads end-of-file at once. */
		close(p->stdin_fd);
		p->stdin_fd = -1;
	}
	sp->start_fd = sp->report_fd = sp->stdin_fd = -1;
	sp->stdout_fd = sp->stderr_fd = -1;
}

static int reply_pid(struct session *s, unsigned type, struct proc *p)
{
	struct husk_error e = {0};
	husk_proto_enc_begin(&s->out, type, HUSK_FRAME_REPLY, p->stream, &e);
	husk_proto_enc_u32(&s->out, HUSK_TAG_PID, (uint32_t)p->pid, &e);
	return husk_proto_enc_end(&s->out, &e);
}

static struct container *free_container(struct session *s)
{
	for (size_t i = 0; i < SESSION_MAX_CONTAINERS; i++) {
		if (!s->containers[i].used)
			return &s->containers[i];
	}
	return NULL;
}

/* PID_NS_OF: the first process of the container named must be alive
 * (created or started): its PID namespace is the one to join. An init
 * that has exited but is not reaped yet counts as gone; waitid's WNOWAIT
 * leaves it for session_reap. Returns its pid. */
static pid_t pidns_owner(struct session *s, const char *id,
                         struct husk_error *err)
{
	struct container *owner = session_container(s, id);
	if (!owner)
		return husk_err(err, ENOENT, "container %s does not exist", id);
	struct proc *init = owner->init;
	siginfo_t si = {0};
	if (!init || init->exited || init->pid <= 0 ||
	    (waitid(P_PID, (id_t)init->pid, &si, WEXITED | WNOHANG | WNOWAIT) ==
	         0 &&
	     si.si_pid != 0))
		return husk_err(err, ESRCH, "container %s is not running", id);
	return init->pid;
}

static int do_create(struct session *s, const struct husk_frame *f,
                     struct husk_error *err)
{
	struct request r = {0};
	struct container *ct = NULL;
	struct proc *p = NULL;
	bool prepared = false, cgroup = false;
	pid_t pidns_of = 0;
	int rc = read_proc(f, &r, err);
	if (rc >= 0)
		rc = read_container(f, &r, s->env->host_mode, err);
	if (rc >= 0)
		rc = read_mounts(f, &r, s->env->host_mode, err);
	if (rc >= 0 && session_container(s, r.ct.id))
		rc = husk_err(err, EEXIST, "container %s exists", r.ct.id);
	if (rc >= 0 && r.ct.pid_ns_of[0] &&
	    (pidns_of = pidns_owner(s, r.ct.pid_ns_of, err)) < 0)
		rc = pidns_of;
	if (rc >= 0 && !(ct = free_container(s)))
		rc = husk_err(err, EAGAIN, "too many containers");
	if (rc >= 0 && !(p = new_proc(s, f->stream, err)))
		rc = -err->code;
	if (rc >= 0) {
		ct->cfg = r.ct;
		rc = rootfs_prepare(s->env, &ct->cfg, ct->root,
		                    sizeof(ct->root), err);
		prepared = rc >= 0;
	}
	if (rc >= 0)
		rc = agent_mount_shares(s->env, &ct->cfg, err);
	if (rc >= 0) {
		rc = cgroup_create(s->env, &ct->cfg, err);
		cgroup = rc >= 0;
	}
	struct agent_spawn sp;
	if (rc >= 0)
		rc = agent_spawn_init(s->env, &ct->cfg, ct->root, pidns_of,
		                      &r.proc, &sp, err);
	if (ct) {
		/* The volumes are mounted (or not) by now; r owns them. */
		ct->cfg.mounts = NULL;
		ct->cfg.nmounts = 0;
	}
	if (rc < 0) {
		struct husk_error ignored;
		if (cgroup)
			cgroup_remove(s->env, r.ct.id, &ignored);
		if (prepared)
			rootfs_release(s->env, r.ct.id, &ignored);
		request_free(&r);
		return session_send_error(s, f->stream, HUSK_FRAME_CREATE, -rc,
		                          err->msg);
	}
	ct->used = true;
	adopt(p, f->stream, &sp, r.proc.tty, r.open_stdin);
	p->ct = ct;
	p->is_init = true;
	ct->init = p;
	request_free(&r);
	return session_send_empty(s, HUSK_FRAME_CREATE, HUSK_FRAME_REPLY,
	                          f->stream);
}

static int exec_failed(struct session *s, struct proc *p, unsigned type,
                       struct husk_error *e)
{
	/* The child exits 126 or 127 on its own; its EXIT follows, and the
	 * ERROR says so (a host must not wait for EXIT after other START
	 * or EXEC errors). */
	p->started = true;
	return session_send_error_exit_follows(s, p->stream, type, e->code,
	                                       e->msg);
}

static int do_start(struct session *s, const struct husk_frame *f,
                    struct husk_error *err)
{
	(void)err;
	struct proc *p = session_proc(s, f->stream);
	if (!p || !p->is_init)
		return session_send_error(
		    s, f->stream, HUSK_FRAME_START, ESRCH,
		    "no container was created on this stream");
	if (p->started || p->start_fd < 0)
		return session_send_error(s, f->stream, HUSK_FRAME_START,
		                          EALREADY,
		                          "the container was already started");
	ssize_t n = write(p->start_fd, "g", 1);
	close(p->start_fd);
	p->start_fd = -1;
	p->started = true;
	struct agent_spawn wait = {.report_fd = p->report_fd};
	p->report_fd = -1;
	struct husk_error e = {0};
	if (n != 1) {
		close(wait.report_fd);
		return session_send_error(s, f->stream, HUSK_FRAME_START, EIO,
		                          "the container process is gone");
	}
	if (agent_spawn_wait_exec(&wait, EXEC_REPORT_MS, &e) < 0)
		return exec_failed(s, p, HUSK_FRAME_START, &e);
	return reply_pid(s, HUSK_FRAME_START, p);
}

static int do_exec(struct session *s, const struct husk_frame *f,
                   struct husk_error *err)
{
	struct request r = {0};
	struct proc *p = NULL;
	struct container *ct = NULL;
	char id[129] = "";
	int rc = read_proc(f, &r, err);
	if (rc >= 0)
		rc = husk_frame_str_buf(f, HUSK_TAG_CONTAINER_ID, id,
		                        sizeof(id), err);
	if (rc >= 0 && !(ct = session_container(s, id)))
		rc = husk_err(err, ENOENT, "container %s does not exist", id);
	if (rc >= 0 && (!ct->init || !ct->init->started || ct->init->exited))
		rc = husk_err(err, ESRCH, "container %s is not running", id);
	if (rc >= 0 && !(p = new_proc(s, f->stream, err)))
		rc = -err->code;
	struct agent_spawn sp;
	if (rc >= 0)
		rc = agent_spawn_exec(s->env, id, ct->init->pid, &r.proc, &sp,
		                      err);
	if (rc < 0) {
		request_free(&r);
		return session_send_error(s, f->stream, HUSK_FRAME_EXEC, -rc,
		                          err->msg);
	}
	adopt(p, f->stream, &sp, r.proc.tty, r.open_stdin);
	p->ct = ct;
	request_free(&r);
	struct agent_spawn wait = {.report_fd = p->report_fd};
	p->report_fd = -1;
	struct husk_error e = {0};
	if (agent_spawn_wait_exec(&wait, EXEC_REPORT_MS, &e) < 0)
		return exec_failed(s, p, HUSK_FRAME_EXEC, &e);
	p->started = true;
	return reply_pid(s, HUSK_FRAME_EXEC, p);
}

static int do_signal(struct session *s, const struct husk_frame *f,
                     struct husk_error *err)
{
	uint32_t sig;
	if (husk_frame_u32(f, HUSK_TAG_SIGNAL, &sig, err) < 0)
		return -err->code;
	struct proc *p = session_proc(s, f->stream);
	if (!p || p->exited || p->pid <= 0)
		return session_send_error(s, f->stream, HUSK_FRAME_SIGNAL,
		                          ESRCH, "the process is not running");
	if (kill(p->pid, (int)sig) < 0)
		return session_send_error(s, f->stream, HUSK_FRAME_SIGNAL,
		                          errno, "kill failed");
	return session_send_empty(s, HUSK_FRAME_SIGNAL, HUSK_FRAME_REPLY,
	                          f->stream);
}

static int do_resize(struct session *s, const struct husk_frame *f,
                     struct husk_error *err)
{
	uint32_t rows = 0, cols = 0;
	if (husk_frame_u32(f, HUSK_TAG_ROWS, &rows, err) < 0 ||
	    husk_frame_u32(f, HUSK_TAG_COLS, &cols, err) < 0)
		return -err->code;
	struct proc *p = session_proc(s, f->stream);
	if (!p || !p->tty || p->out[1].fd < 0)
		return session_send_error(s, f->stream, HUSK_FRAME_RESIZE,
		                          ENOTTY,
		                          "the process has no terminal");
	struct winsize ws = {.ws_row = (unsigned short)rows,
	                     .ws_col = (unsigned short)cols};
	if (ioctl(p->out[1].fd, TIOCSWINSZ, &ws) < 0)
		return session_send_error(s, f->stream, HUSK_FRAME_RESIZE,
		                          errno, "resize failed");
	return session_send_empty(s, HUSK_FRAME_RESIZE, HUSK_FRAME_REPLY,
	                          f->stream);
}

static int do_wait(struct session *s, const struct husk_frame *f)
{
	struct proc *p = session_proc(s, f->stream);
	if (!p)
		return session_send_error(s, f->stream, HUSK_FRAME_WAIT, ESRCH,
		                          "no process on this stream");
	p->wait_requested = true;
	return session_maybe_exit(s, p);
}

/* STATS for the whole VM: /proc/meminfo and the process count. */
static void vm_stats(struct cgroup_stats *st)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long total = 0, avail = 0, v;
	char key[64];
	while (f && fscanf(f, "%63s %llu kB\n", key, &v) == 2) {
		if (!strcmp(key, "MemTotal:"))
			total = v;
		else if (!strcmp(key, "MemAvailable:"))
			avail = v;
	}
	if (f)
		fclose(f);
	st->memory_limit = total * 1024;
	st->memory_usage = (total - (avail < total ? avail : total)) * 1024;
}

static int do_stats(struct session *s, const struct husk_frame *f,
                    struct husk_error *err)
{
	struct cgroup_stats st = {0};
	if (f->stream) {
		struct proc *p = session_proc(s, f->stream);
		if (!p || !p->is_init || !p->ct)
			return session_send_error(
			    s, f->stream, HUSK_FRAME_STATS, ESRCH,
			    "no container on this stream");
		if (cgroup_stats(s->env, p->ct->cfg.id, &st, err) < 0)
			return session_send_error(s, f->stream,
			                          HUSK_FRAME_STATS, err->code,
			                          err->msg);
	} else {
		vm_stats(&st);
	}
	struct husk_error e = {0};
	husk_proto_enc_begin(&s->out, HUSK_FRAME_STATS, HUSK_FRAME_REPLY,
	                     f->stream, &e);
	husk_proto_enc_u64(&s->out, HUSK_TAG_MEMORY_USAGE, st.memory_usage, &e);
	husk_proto_enc_u64(&s->out, HUSK_TAG_MEMORY_LIMIT, st.memory_limit, &e);
	husk_proto_enc_u64(&s->out, HUSK_TAG_CPU_USAGE_NS, st.cpu_usage_ns, &e);
	husk_proto_enc_u64(&s->out, HUSK_TAG_PIDS_CURRENT, st.pids_current, &e);
	return husk_proto_enc_end(&s->out, &e);
}

static void signal_all(struct session *s, int sig)
{
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		struct proc *p = &s->procs[i];
		if (p->used && !p->exited && p->pid > 0)
			kill(p->pid, sig);
	}
}

static int do_shutdown(struct session *s, const struct husk_frame *f,
                       struct husk_error *err)
{
	uint32_t ms = DEFAULT_SHUTDOWN_MS;
	if (f->stream)
		return husk_err(err, EPROTO, "SHUTDOWN on stream %u",
		                f->stream);
	if (husk_frame_u32(f, HUSK_TAG_TIMEOUT_MS, &ms, err) < 0)
		return -err->code;
	if (s->shutting_down)
		return 0;
	s->shutting_down = true;
	s->shutdown_deadline_ms = session_now_ms() + ms;
	signal_all(s, SIGTERM);
	return session_shutdown_step(s);
}

int session_shutdown_step(struct session *s)
{
	bool alive = false;
	for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
		struct proc *p = &s->procs[i];
		if (p->used && !p->exited && p->pid > 0)
			alive = true;
	}
	if (alive && session_now_ms() < s->shutdown_deadline_ms)
		return 0;
	if (alive && !s->shutdown_killed) {
		signal_all(s, SIGKILL);
		s->shutdown_killed = true;
		/* reaped on the next SIGCHLD; give them a moment */
		s->shutdown_deadline_ms = session_now_ms() + 2000;
		return 0;
	}
	for (size_t i = 0; i < SESSION_MAX_CONTAINERS; i++) {
		if (s->containers[i].used)
			session_release_container(s, &s->containers[i]);
	}
	sync();
	s->done = true;
	return session_send_empty(s, HUSK_FRAME_SHUTDOWN, HUSK_FRAME_REPLY, 0);
}

/* ---- exits ---- */

int session_maybe_exit(struct session *s, struct proc *p)
{
	if (!p->wait_requested || !p->exited || !p->out[1].eof ||
	    !p->out[2].eof)
		return 0;
	int st = p->status, code, sig = 0;
	if (WIFSIGNALED(st)) {
		sig = WTERMSIG(st);
		code = 128 + sig;
	} else {
		code = WEXITSTATUS(st);
	}
	uint64_t ooms = 0;
	struct husk_error e = {0};
	if (p->ct && sig == SIGKILL)
		cgroup_oom_kills(s->env, p->ct->cfg.id, &ooms, &e);
	/* A shell whose child was OOM-killed exits 137 itself. */
	if (p->ct && code == 137 && !ooms)
		cgroup_oom_kills(s->env, p->ct->cfg.id, &ooms, &e);
	husk_proto_enc_begin(&s->out, HUSK_FRAME_EXIT, 0, p->stream, &e);
	husk_proto_enc_u32(&s->out, HUSK_TAG_EXIT_CODE, (uint32_t)code & 255,
	                   &e);
	if (sig)
		husk_proto_enc_u32(&s->out, HUSK_TAG_EXIT_SIGNAL, (uint32_t)sig,
		                   &e);
	if (ooms)
		husk_proto_enc_bool(&s->out, HUSK_TAG_OOM_KILLED, true, &e);
	int rc = husk_proto_enc_end(&s->out, &e);
	struct container *ct = p->is_init ? p->ct : NULL;
	session_proc_free(s, p);
	if (ct)
		session_release_container(s, ct);
	return rc;
}

void session_reap(struct session *s)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return;
		for (size_t i = 0; i < SESSION_MAX_PROCS; i++) {
			struct proc *p = &s->procs[i];
			if (p->used && p->pid == pid && !p->exited) {
				p->exited = true;
				p->status = st;
				p->started = true; /* drain what it wrote */
				session_maybe_exit(s, p);
				break;
			}
		}
	}
}

/* ---- dispatch ---- */

static int stdio_frame(struct session *s, const struct husk_frame *f,
                       struct husk_error *err)
{
	struct proc *p = session_proc(s, f->stream);
	/* A frame for a stream that just ended may cross its EXIT. */
	if (!p)
		return 0;
	uint32_t fd = 0, credit = 0;
	switch (f->type) {
	case HUSK_FRAME_STDIN:
		return session_stdin_data(s, p, f->payload, f->len, err);
	case HUSK_FRAME_CLOSE:
		if (husk_frame_u32(f, HUSK_TAG_FD, &fd, err) < 0)
			return -err->code;
		if (fd != HUSK_FD_STDIN)
			return husk_err(err, EPROTO, "the host closed fd %u",
			                fd);
		return session_stdin_close(s, p);
	case HUSK_FRAME_CREDIT:
		if (husk_frame_u32(f, HUSK_TAG_FD, &fd, err) < 0 ||
		    husk_frame_u32(f, HUSK_TAG_CREDIT, &credit, err) < 0)
			return -err->code;
		return session_credit(s, p, fd, credit, err);
	}
	return 0;
}

int session_dispatch(struct session *s, const struct husk_frame *f,
                     struct husk_error *err)
{
	if (f->type != HUSK_FRAME_HELLO && s->shutting_down &&
	    f->type != HUSK_FRAME_STDIN && f->type != HUSK_FRAME_CREDIT &&
	    f->type != HUSK_FRAME_CLOSE)
		return session_send_error(s, f->stream, f->type, ESHUTDOWN,
		                          "the agent is shutting down");
	switch (f->type) {
	case HUSK_FRAME_HELLO: return 0;
	case HUSK_FRAME_ERROR:
		return husk_err(err, ECONNABORTED, "the host gave up");
	case HUSK_FRAME_CREATE: return do_create(s, f, err);
	case HUSK_FRAME_START: return do_start(s, f, err);
	case HUSK_FRAME_EXEC: return do_exec(s, f, err);
	case HUSK_FRAME_SIGNAL: return do_signal(s, f, err);
	case HUSK_FRAME_RESIZE: return do_resize(s, f, err);
	case HUSK_FRAME_WAIT: return do_wait(s, f);
	case HUSK_FRAME_STATS: return do_stats(s, f, err);
	case HUSK_FRAME_SHUTDOWN: return do_shutdown(s, f, err);
	case HUSK_FRAME_STDIN:
	case HUSK_FRAME_CLOSE:
	case HUSK_FRAME_CREDIT: return stdio_frame(s, f, err);
	}
	return husk_err(err, EPROTO, "unexpected %s frame",
	                husk_proto_type_name(f->type));
}
