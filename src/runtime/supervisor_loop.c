/* The supervisor's event loop: the agent channel, the container's stdin,
 * the control socket and our signals. It ends when the container's first
 * process has exited (or its VM is gone), and the supervisor then exits
 * with that process's status. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sup.h"

#define MAX_POLL (2 + SUP_MAX_CLIENTS + HUSK_MUX_MAX_STREAMS + 1)

static void reply(int fd, json_object *o)
{
	rt_ctl_send(
	    fd,
	    json_object_to_json_string_ext(
	        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    NULL, 0);
	json_object_put(o);
}

static void reply_ok(int fd)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	reply(fd, o);
}

static void reply_error(int fd, int code, const char *msg)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "errno", json_object_new_int(code));
	reply(fd, o);
}

static void set_status(struct sup *s, enum rt_status st)
{
	struct husk_error e = {0};
	s->st.status = st;
	if (rt_state_write(&s->st, &e) < 0)
		rt_debug("%s", e.msg);
}

static void finish(struct sup *s, int code)
{
	if (s->done)
		return;
	s->done = true;
	s->exit_code = code;
}

static void drop_client(struct sup *s, struct sup_client *c)
{
	struct husk_error e = {0};
	struct husk_mux_stream *st = husk_mux_stream(&s->mux, c->stream);
	/* The exec's waiter (the pid containerd watches) went away: the
	 * process goes with it, as a runc exec's would with its pid. */
	if (st && !st->exited)
		husk_mux_signal(&s->mux, c->stream, SIGKILL, &e);
	close(c->fd);
	c->fd = -1;
	c->stream = 0;
}

static int get_int(json_object *o, const char *k, int dflt)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int(v)
	                                           : dflt;
}

static char **get_strv(json_object *o, const char *k)
{
	json_object *a;
	if (!json_object_object_get_ex(o, k, &a) ||
	    !json_object_is_type(a, json_type_array))
		return NULL;
	size_t n = json_object_array_length(a);
	if (n > RT_MAX_ARGS)
		return NULL;
	char **v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		v[i] = strdup(
		    json_object_get_string(json_object_array_get_idx(a, i)));
	return v;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void op_exec(struct sup *s, struct sup_client *c, json_object *o,
                    int *fds, int nfds)
{
	struct husk_error e = {0};
	if (s->st.status != RT_RUNNING || nfds != 3) {
		reply_error(c->fd, ESRCH,
		            nfds != 3 ? "exec needs three descriptors"
		                      : "cannot exec in a stopped container");
		goto close_fds;
	}
	char **args = get_strv(o, "args"), **env = get_strv(o, "env");
	json_object *v;
	const char *cwd = json_object_object_get_ex(o, "cwd", &v)
	                      ? json_object_get_string(v)
	                      : NULL;
	char user[32];
	snprintf(user, sizeof(user), "%u:%u", (unsigned)get_int(o, "uid", 0),
	         (unsigned)get_int(o, "gid", 0));
	struct husk_run_request req = {
	    .container_id = s->c->id,
	    .argv = (const char *const *)args,
	    .env = (const char *const *)env,
	    .cwd = cwd,
	    .user = user,
	    .tty = get_int(o, "terminal", 0) != 0,
	    .open_stdin = true,
	    .rows = (unsigned)get_int(o, "rows", 0),
	    .cols = (unsigned)get_int(o, "cols", 0),
	};
	uint32_t pid = 0;
	int id = args && args[0] ? husk_mux_exec(&s->mux, &req, fds[0], fds[1],
	                                         fds[2], &pid, &e)
	                         : husk_err(&e, EINVAL, "exec: no args");
	free_strv(args);
	free_strv(env);
	if (id < 0) {
		reply_error(c->fd, e.code, e.msg);
		goto close_fds;
	}
	c->stream = (uint32_t)id;
	json_object *r = json_object_new_object();
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "pid", json_object_new_int((int)pid));
	reply(c->fd, r);
	return;
close_fds:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void op_kill(struct sup *s, int fd, int sig)
{
	struct husk_error e = {0};
	if (sig < 1 || sig > 64) {
		reply_error(fd, EINVAL, "invalid signal");
		return;
	}
	if (s->st.status == RT_CREATED) {
		/* Nothing runs yet; the signal ends the container as it
		 * would end runc's init waiting in its exec FIFO. */
		reply_ok(fd);
		finish(s, 128 + sig);
		return;
	}
	if (s->st.status == RT_PAUSED && s->vm.pid > 0)
		kill(s->vm.pid, SIGCONT); /* a frozen VM can't take it */
	if (husk_mux_signal(&s->mux, s->init_stream, sig, &e) < 0) {
		reply_error(fd, e.code, e.msg);
		return;
	}
	if (sig == SIGKILL && !s->kill_deadline)
		s->kill_deadline = sup_now_ms() + SUP_KILL_GRACE_MS;
	reply_ok(fd);
}

static void op_ps(struct sup *s, int fd)
{
	json_object *r = json_object_new_object(), *a = json_object_new_array();
	if (s->init_pid)
		json_object_array_add(a, json_object_new_int((int)s->init_pid));
	json_object_object_add(r, "ok", json_object_new_boolean(1));
	json_object_object_add(r, "pids", a);
	json_object_object_add(r, "vmm_pid", json_object_new_int(s->vm.pid));
	reply(fd, r);
}

static void on_request(struct sup *s, struct sup_client *c)
{
	char buf[256 * 1024];
	int fds[3], nfds = 3;
	ssize_t n = rt_ctl_recv(c->fd, buf, sizeof(buf), fds, &nfds);
	if (n <= 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		drop_client(s, c);
		return;
	}
	json_object *o = json_tokener_parse(buf);
	json_object *opv;
	const char *op = o && json_object_object_get_ex(o, "op", &opv)
	                     ? json_object_get_string(opv)
	                     : "";
	struct husk_error e = {0};
	if (strcmp(op, "exec") != 0)
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	if (!strcmp(op, "start")) {
		if (s->st.status != RT_CREATED) {
			reply_error(c->fd, EINVAL,
			            s->st.status == RT_STOPPED
			                ? "cannot start a container that has "
			                  "stopped"
			                : "cannot start an already running "
			                  "container");
		} else if (husk_mux_start(&s->mux, s->init_stream, &s->init_pid,
		                          &e) < 0) {
			reply_error(c->fd, e.code, e.msg);
		} else {
			set_status(s, RT_RUNNING);
			reply_ok(c->fd);
		}
	} else if (!strcmp(op, "kill")) {
		op_kill(s, c->fd, get_int(o, "signal", SIGTERM));
	} else if (!strcmp(op, "exec")) {
		op_exec(s, c, o, fds, nfds);
	} else if (!strcmp(op, "signal") && c->stream) {
		husk_mux_signal(&s->mux, c->stream, get_int(o, "signal", 15),
		                &e);
		reply_ok(c->fd);
	} else if (!strcmp(op, "resize")) {
		uint32_t id = c->stream ? c->stream : s->init_stream;
		husk_mux_resize(&s->mux, id, (unsigned)get_int(o, "rows", 24),
		                (unsigned)get_int(o, "cols", 80), &e);
		reply_ok(c->fd);
	} else if (!strcmp(op, "ps")) {
		op_ps(s, c->fd);
	} else if (!strcmp(op, "pause") || !strcmp(op, "resume")) {
		bool pause = !strcmp(op, "pause");
		if (s->st.status != (pause ? RT_RUNNING : RT_PAUSED)) {
			reply_error(c->fd, EINVAL,
			            pause ? "container not running"
			                  : "container not paused");
		} else if (s->pod[0]) {
			/* the VM is the pod's; its other members run on */
			reply_error(c->fd, ENOTSUP,
			            "pause of a container in a pod is not "
			            "supported");
		} else {
			/* The whole VM stops: vCPUs, devices and agent. */
			kill(s->vm.pid, pause ? SIGSTOP : SIGCONT);
			set_status(s, pause ? RT_PAUSED : RT_RUNNING);
			reply_ok(c->fd);
		}
	} else if (!strcmp(op, "delete")) {
		if (s->st.status == RT_PAUSED && s->vm.pid > 0)
			kill(s->vm.pid, SIGCONT);
		reply_ok(c->fd);
		finish(s, 137);
	} else {
		reply_error(c->fd, EINVAL, "unknown request");
	}
	json_object_put(o);
}

static void on_accept(struct sup *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < SUP_MAX_CLIENTS; i++) {
		if (s->clients[i].fd < 0) {
			s->clients[i].fd = fd;
			s->clients[i].stream = 0;
			return;
		}
	}
	reply_error(fd, EBUSY, "too many clients");
	close(fd);
}

static void on_signal(struct sup *s)
{
	struct signalfd_siginfo si;
	struct husk_error e = {0};
	while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD) {
			int status;
			if (s->vm.pid > 0 &&
			    waitpid(s->vm.pid, &status, WNOHANG) == s->vm.pid) {
				s->vm.pid = -1;
				s->vm_started = false;
				finish(s, 137); /* the VM ended under us */
			}
			continue;
		}
		if (sig == SIGWINCH) {
			struct winsize ws;
			if (s->tty_fd >= 0 &&
			    ioctl(s->tty_fd, TIOCGWINSZ, &ws) == 0)
				husk_mux_resize(&s->mux, s->init_stream,
				                ws.ws_row, ws.ws_col, &e);
			continue;
		}
		/* a signal to the pid containerd knows is for the container */
		if (s->st.status == RT_RUNNING)
			husk_mux_signal(&s->mux, s->init_stream, sig, &e);
		else if (s->st.status == RT_CREATED)
			finish(s, 128 + sig);
	}
}

/* Exec'd processes that ended: tell their waiters. */
static void reap_streams(struct sup *s)
{
	for (int i = 0; i < SUP_MAX_CLIENTS; i++) {
		struct sup_client *c = &s->clients[i];
		struct husk_mux_stream *st =
		    husk_mux_stream(&s->mux, c->stream);
		if (c->fd < 0 || !st || !st->exited)
			continue;
		json_object *r = json_object_new_object();
		json_object_object_add(r, "exit",
		                       json_object_new_int(st->exit.exit_code));
		json_object_object_add(
		    r, "start_error",
		    json_object_new_string(st->exit.start_error));
		reply(c->fd, r);
		husk_mux_release(&s->mux, c->stream);
		c->stream = 0;
	}
	struct husk_mux_stream *init = husk_mux_stream(&s->mux, s->init_stream);
	if (init && init->exited)
		finish(s, init->exit.exit_code);
}

static void end_clients(struct sup *s)
{
	for (int i = 0; i < SUP_MAX_CLIENTS; i++) {
		struct sup_client *c = &s->clients[i];
		if (c->fd < 0)
			continue;
		if (c->stream) {
			json_object *r = json_object_new_object();
			json_object_object_add(r, "exit",
			                       json_object_new_int(137));
			reply(c->fd, r);
		}
		close(c->fd);
		c->fd = -1;
	}
}

int sup_loop(struct sup *s)
{
	while (!s->done) {
		struct pollfd p[MAX_POLL];
		int n = 0;
		p[n++] = (struct pollfd){s->sig_fd, POLLIN, 0};
		p[n++] = (struct pollfd){s->listen_fd, POLLIN, 0};
		int first_client = n;
		for (int i = 0; i < SUP_MAX_CLIENTS; i++)
			p[n++] = (struct pollfd){s->clients[i].fd, POLLIN, 0};
		int mux_at = n;
		int nm = husk_mux_pollfds(&s->mux, p + n, MAX_POLL - n);
		n += nm;
		int timeout = -1;
		if (s->kill_deadline) {
			int64_t left = s->kill_deadline - sup_now_ms();
			if (left <= 0) {
				/* SIGKILL was not answered: the VM is stuck,
				 * and it goes as a whole */
				if (s->vm.pid > 0)
					kill(s->vm.pid, SIGKILL);
				finish(s, 137);
				break;
			}
			timeout = (int)left;
		}
		int r = poll(p, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		struct husk_error e = {0};
		if (nm && husk_mux_dispatch(&s->mux, p + mux_at, nm, &e) < 0) {
			rt_debug("agent session: %s", e.msg);
			reap_streams(s);
			finish(s, 137);
		}
		reap_streams(s);
		if (p[0].revents)
			on_signal(s);
		if (p[1].revents)
			on_accept(s);
		for (int i = 0; i < SUP_MAX_CLIENTS && !s->done; i++)
			if (p[first_client + i].revents &&
			    s->clients[i].fd >= 0)
				on_request(s, &s->clients[i]);
	}
	/* Nobody may reach a supervisor on its way out. */
	unlink(RT_CTL_SOCKET);
	close(s->listen_fd);
	s->st.exit_code = s->exit_code;
	sup_stop_vm(s);
	set_status(s, RT_STOPPED);
	end_clients(s);
	husk_mux_free(&s->mux);
	return s->exit_code;
}
