/* exec: another process in a running container. The process whose pid
 * goes into --pid-file is a small relay on the host: it hands its stdio
 * (or a terminal) to the supervisor, forwards the signals it gets, and
 * exits with the exec'd process's status, which is what containerd's shim
 * waits for. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "rt.h"

struct exec_opts {
	const char *process, *console_socket, *pid_file, *cwd, *user;
	bool detach, tty;
	const char *env[256];
	int nenv;
};

static json_object *strv_json(char **v)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

/* The request from --process or from the command line's flags. */
static json_object *build_request(const struct exec_opts *o, int argc,
                                  char **argv, struct husk_error *err)
{
	struct rt_process p = {0};
	if (o->process) {
		if (rt_process_load(o->process, &p, err) < 0)
			return NULL;
	} else {
		if (argc < 1) {
			husk_err(err, EINVAL, "exec: no command given");
			return NULL;
		}
		p.args = calloc((size_t)argc + 1, sizeof(char *));
		for (int i = 0; i < argc; i++)
			p.args[i] = strdup(argv[i]);
		p.env = calloc((size_t)o->nenv + 2, sizeof(char *));
		p.env[0] = strdup("PATH=/usr/local/sbin:/usr/local/bin:"
		                  "/usr/sbin:/usr/bin:/sbin:/bin");
		for (int i = 0; i < o->nenv; i++)
			p.env[i + 1] = strdup(o->env[i]);
		p.terminal = o->tty;
		if (o->cwd)
			p.cwd = strdup(o->cwd);
		if (o->user) {
			char *end;
			unsigned long u = strtoul(o->user, &end, 10);
			unsigned long g = 0;
			if (*end == ':')
				g = strtoul(end + 1, &end, 10);
			if (*end || end == o->user) {
				rt_process_free(&p);
				husk_err(err, EINVAL,
				         "--user '%s': use UID[:GID]", o->user);
				return NULL;
			}
			p.uid = (uint32_t)u;
			p.gid = (uint32_t)g;
		}
	}
	json_object *r = json_object_new_object();
	json_object_object_add(r, "op", json_object_new_string("exec"));
	json_object_object_add(r, "args", strv_json(p.args));
	json_object_object_add(r, "env", strv_json(p.env));
	if (p.cwd)
		json_object_object_add(r, "cwd", json_object_new_string(p.cwd));
	json_object_object_add(r, "uid", json_object_new_int64(p.uid));
	json_object_object_add(r, "gid", json_object_new_int64(p.gid));
	json_object_object_add(r, "terminal",
	                       json_object_new_int(p.terminal ? 1 : 0));
	json_object_object_add(r, "rows", json_object_new_int((int)p.rows));
	json_object_object_add(r, "cols", json_object_new_int((int)p.cols));
	rt_process_free(&p);
	return r;
}

static int get_int(json_object *o, const char *k, int dflt)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int(v)
	                                                : dflt;
}

/* Sends the request with our stdio (or a terminal) and returns the
 * connection once the process runs; ready (or -1) learns the outcome. */
static int begin(const char *id, json_object *req, const char *console,
                 int *tty_fd, struct husk_error *err)
{
	int fds[3] = {0, 1, 2};
	if (get_int(req, "terminal", 0)) {
		if (!console)
			return husk_err(err, EINVAL,
			                "exec with a terminal needs "
			                "--console-socket");
		int slave;
		if (rt_open_console(console, (unsigned)get_int(req, "rows", 0),
		                    (unsigned)get_int(req, "cols", 0), true,
		                    &slave, err) < 0)
			return -err->code;
		*tty_fd = slave;
		fds[0] = fds[1] = fds[2] = slave;
	}
	int fd = rt_ctl_connect(id, err);
	if (fd < 0)
		return fd;
	int rc = rt_ctl_send(
	    fd,
	    json_object_to_json_string_ext(
	        req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    fds, 3);
	char buf[4096];
	ssize_t n = rc < 0 ? rc : rt_ctl_recv(fd, buf, sizeof(buf), NULL, NULL);
	if (n <= 0) {
		close(fd);
		return husk_err(err, ESRCH, "container %s is not running", id);
	}
	json_object *o = json_tokener_parse(buf), *e;
	if (o && json_object_object_get_ex(o, "error", &e)) {
		rc = husk_err(err, get_int(o, "errno", EINVAL), "%s",
		              json_object_get_string(e));
		json_object_put(o);
		close(fd);
		return rc;
	}
	json_object_put(o);
	return fd;
}

/* Until the process ends: forward signals, then exit with its status. */
static int relay(int fd, int tty_fd)
{
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
	              SIGUSR1, SIGUSR2, SIGWINCH};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	for (;;) {
		struct pollfd p[2] = {{fd, POLLIN, 0}, {sfd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 255;
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			char req[96];
			struct winsize ws;
			if (si.ssi_signo == SIGWINCH && tty_fd >= 0 &&
			    ioctl(tty_fd, TIOCGWINSZ, &ws) == 0)
				snprintf(req, sizeof(req),
				         "{\"op\":\"resize\",\"rows\":%u,"
				         "\"cols\":%u}",
				         ws.ws_row, ws.ws_col);
			else if (si.ssi_signo == SIGWINCH)
				continue;
			else
				snprintf(req, sizeof(req),
				         "{\"op\":\"signal\",\"signal\":%u}",
				         si.ssi_signo);
			rt_ctl_send(fd, req, NULL, 0);
		}
		if (p[0].revents) {
			char buf[4096];
			ssize_t n =
			    rt_ctl_recv(fd, buf, sizeof(buf), NULL, NULL);
			if (n <= 0)
				return 137; /* the supervisor is gone */
			json_object *o = json_tokener_parse(buf);
			int code = get_int(o, "exit", -1);
			json_object *se;
			if (code >= 0 && o &&
			    json_object_object_get_ex(o, "start_error", &se) &&
			    json_object_get_string_len(se))
				rt_error("exec failed: %s",
				         json_object_get_string(se));
			json_object_put(o);
			if (code >= 0)
				return code;
		}
	}
}

static int run_exec(const char *id, json_object *req, const struct exec_opts *o)
{
	struct husk_error err = {0};
	int tty_fd = -1;
	if (!o->detach) {
		int fd = begin(id, req, o->console_socket, &tty_fd, &err);
		if (fd < 0) {
			rt_error("%s", err.msg);
			return 255;
		}
		if (o->pid_file &&
		    rt_write_pid_file(o->pid_file, getpid(), &err) < 0)
			rt_error("%s", err.msg);
		return relay(fd, tty_fd);
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		rt_error("pipe: %s", strerror(errno));
		return 255;
	}
	pid_t pid = fork();
	if (pid < 0) {
		rt_error("fork: %s", strerror(errno));
		return 255;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		int fd = begin(id, req, o->console_socket, &tty_fd, &err);
		rt_report_ready(p[1], fd < 0 ? &err : NULL);
		if (fd < 0)
			_exit(255);
		/* the process's stdio is the supervisor's to hold now */
		int nul = open("/dev/null", O_RDWR);
		for (int i = 0; i < 3; i++)
			dup2(nul, i);
		_exit(relay(fd, tty_fd));
	}
	close(p[1]);
	char msg[600];
	bool ready = rt_read_ready(p[0], msg, sizeof(msg));
	close(p[0]);
	if (!ready) {
		waitpid(pid, NULL, 0);
		rt_error("%s", msg[0] ? msg : "exec failed");
		return 255;
	}
	if (o->pid_file && rt_write_pid_file(o->pid_file, pid, &err) < 0) {
		rt_error("%s", err.msg);
		kill(pid, SIGKILL);
		return 255;
	}
	return 0;
}

int rt_cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"process", required_argument, NULL, 'p'},
	    {"console-socket", required_argument, NULL, 'c'},
	    {"pid-file", required_argument, NULL, 'P'},
	    {"detach", no_argument, NULL, 'd'},
	    {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},
	    {"cwd", required_argument, NULL, 'w'},
	    {"user", required_argument, NULL, 'u'},
	    {"cap", required_argument, NULL, 'C'},
	    {"no-new-privs", no_argument, NULL, 'n'},
	    {"apparmor", required_argument, NULL, 'a'},
	    {"process-label", required_argument, NULL, 'l'},
	    {"preserve-fds", required_argument, NULL, 'f'},
	    {"ignore-paused", no_argument, NULL, 'i'},
	    {"cgroup", required_argument, NULL, 'g'},
	    {0, 0, 0, 0}};
	struct exec_opts o = {0};
	int c;
	while ((c = getopt_long(argc, argv, "+p:dte:u:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': o.process = optarg; break;
		case 'c': o.console_socket = optarg; break;
		case 'P': o.pid_file = optarg; break;
		case 'd': o.detach = true; break;
		case 't': o.tty = true; break;
		case 'w': o.cwd = optarg; break;
		case 'u': o.user = optarg; break;
		case 'e':
			if (o.nenv == 256) {
				rt_error("exec: too many --env");
				return 255;
			}
			o.env[o.nenv++] = optarg;
			break;
		case 'C':
		case 'n':
		case 'a':
		case 'l':
		case 'f':
		case 'i':
		case 'g': break; /* the agent applies the container's own */
		default: rt_error("exec: bad option"); return 255;
		}
	}
	if (optind >= argc) {
		rt_error("exec: requires a container id");
		return 255;
	}
	const char *id = argv[optind++];
	struct husk_error err = {0};
	struct rt_state st;
	if (rt_state_get(id, &st, false) < 0)
		return 255;
	if (st.status != RT_RUNNING) {
		rt_error("cannot exec in a %s container",
		         rt_status_name(st.status));
		return 255;
	}
	json_object *req =
	    build_request(&o, argc - optind, argv + optind, &err);
	if (!req) {
		rt_error("%s", err.msg);
		return 255;
	}
	int rc = run_exec(id, req, &o);
	json_object_put(req);
	return rc;
}
