/* husk run's command line: Docker's spelling, and clear errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "husk/run_options.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static void parses_docker_flags(void **state)
{
	char *argv[] = {"run",      "-it",    "--rm",      "-e",
	                "A=1",      "--env",  "B=x=y",     "-w",
	                "/srv",     "-u",     "1000:1000", "--hostname",
	                "h1",       "-m",     "64m",       "--cpus",
	                "1.5",      "--name", "c1",        "--read-only",
	                "--rootfs", "/r",     "sh",        "-c",
	                "echo -e",  NULL};
	struct husk_run_options o;
	struct husk_error e = {0};
	assert_int_equal(husk_run_parse(ARGC(argv), argv, &o, &e), 0);
	assert_true(o.interactive && o.tty && o.rm && o.read_only);
	assert_int_equal(o.nenv, 2);
	assert_string_equal(o.env[0], "A=1");
	assert_string_equal(o.env[1], "B=x=y");
	assert_string_equal(o.workdir, "/srv");
	assert_string_equal(o.user, "1000:1000");
	assert_string_equal(o.hostname, "h1");
	assert_int_equal(o.memory, 64ull << 20);
	assert_int_equal(o.cpu_millis, 1500);
	assert_string_equal(o.name, "c1");
	assert_string_equal(o.rootfs, "/r");
	assert_null(o.image);
	/* options end at the command: its own -c is not ours */
	assert_int_equal(o.ncmd, 3);
	assert_string_equal(o.cmd[0], "sh");
	assert_string_equal(o.cmd[2], "echo -e");
	husk_run_options_free(&o);
}

static void image_form_and_missing_command(void **state)
{
	char *a1[] = {"run", "busybox", "true", NULL};
	struct husk_run_options o;
	struct husk_error e = {0};
	assert_int_equal(husk_run_parse(ARGC(a1), a1, &o, &e), 0);
	assert_string_equal(o.image, "busybox");
	assert_int_equal(o.ncmd, 1);
	husk_run_options_free(&o);
	char *a2[] = {"run", "--rootfs", "/r", NULL};
	assert_int_equal(husk_run_parse(ARGC(a2), a2, &o, &e), -EINVAL);
	assert_string_equal(e.msg, "no command given");
	husk_run_options_free(&o);
	char *a3[] = {"run", NULL};
	assert_int_equal(husk_run_parse(ARGC(a3), a3, &o, &e), -EINVAL);
	husk_run_options_free(&o);
	char *a4[] = {"run",          "--rootfs",  "/r",
	              "--entrypoint", "/bin/echo", NULL};
	assert_int_equal(husk_run_parse(ARGC(a4), a4, &o, &e), 0);
	husk_run_options_free(&o);
}

static void bad_values_are_refused(void **state)
{
	struct husk_run_options o;
	struct husk_error e = {0};
	char *a1[] = {"run", "-m", "12x", "--rootfs", "/r", "true", NULL};
	assert_int_equal(husk_run_parse(ARGC(a1), a1, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "12x"));
	husk_run_options_free(&o);
	char *a2[] = {"run", "-m", "1m", "--rootfs", "/r", "true", NULL};
	assert_int_equal(husk_run_parse(ARGC(a2), a2, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "6MB"));
	husk_run_options_free(&o);
	char *a3[] = {"run", "--cpus", "0", "--rootfs", "/r", "true", NULL};
	assert_int_equal(husk_run_parse(ARGC(a3), a3, &o, &e), -EINVAL);
	husk_run_options_free(&o);
	char *a4[] = {"run", "-w", "relative", "--rootfs", "/r", "true", NULL};
	assert_int_equal(husk_run_parse(ARGC(a4), a4, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "absolute"));
	husk_run_options_free(&o);
	char *a5[] = {"run", "--bogus", "--rootfs", "/r", "true", NULL};
	assert_int_equal(husk_run_parse(ARGC(a5), a5, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "--bogus"));
	husk_run_options_free(&o);
	char *a6[] = {"run", "-e", "=x", "--rootfs", "/r", "true", NULL};
	assert_int_equal(husk_run_parse(ARGC(a6), a6, &o, &e), -EINVAL);
	husk_run_options_free(&o);
	char *a7[] = {"run", "--rootfs", NULL};
	assert_int_equal(husk_run_parse(ARGC(a7), a7, &o, &e), -EINVAL);
	husk_run_options_free(&o);
}

static void sizes_and_cpus(void **state)
{
	uint64_t v;
	uint32_t m;
	struct husk_error e = {0};
	assert_int_equal(husk_parse_size("1g", &v, &e), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(husk_parse_size("512K", &v, &e), 0);
	assert_int_equal(v, 512ull << 10);
	assert_int_equal(husk_parse_size("64mb", &v, &e), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(husk_parse_size("100", &v, &e), 0);
	assert_int_equal(v, 100);
	assert_int_equal(husk_parse_size("", &v, &e), -EINVAL);
	assert_int_equal(husk_parse_size("-1m", &v, &e), -EINVAL);
	assert_int_equal(husk_parse_size("99999999999999999999g", &v, &e),
	                 -EINVAL);
	assert_int_equal(husk_parse_size("1mx", &v, &e), -EINVAL);
	assert_int_equal(husk_parse_cpus("0.25", &m, &e), 0);
	assert_int_equal(m, 250);
	assert_int_equal(husk_parse_cpus("nan", &m, &e), -EINVAL);
	assert_int_equal(husk_parse_cpus("2cpus", &m, &e), -EINVAL);
}

static void env_file_and_host_values(void **state)
{
	char path[] = "/tmp/husk-envfile-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text =
	    "# comment\n\n  FOO=bar baz\r\nFROM_HOST\nUNSET_HERE\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("FROM_HOST", "hv", 1);
	unsetenv("UNSET_HERE");
	char *argv[] = {"run",      "--env-file", path,   "-e", "FOO=override",
	                "--rootfs", "/r",         "true", NULL};
	struct husk_run_options o;
	struct husk_error e = {0};
	assert_int_equal(husk_run_parse(ARGC(argv), argv, &o, &e), 0);
	assert_int_equal(o.nenv, 3);
	assert_string_equal(o.env[0], "FOO=bar baz");
	assert_string_equal(o.env[1], "FROM_HOST=hv");
	assert_string_equal(o.env[2], "FOO=override");
	husk_run_options_free(&o);
	FILE *f = fopen(path, "w");
	fputs("OK=1\nBAD NAME\n", f);
	fclose(f);
	assert_int_equal(husk_run_parse(ARGC(argv), argv, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "line 2"));
	husk_run_options_free(&o);
	unlink(path);
	char *missing[] = {"run",      "--env-file", "/nonexistent/env",
	                   "--rootfs", "/r",         "true",
	                   NULL};
	assert_int_equal(husk_run_parse(ARGC(missing), missing, &o, &e),
	                 -ENOENT);
	husk_run_options_free(&o);
}

static void publish_and_network(void **state)
{
	(void)state;
	struct husk_run_options o;
	struct husk_error e = {0};
	char *a[] = {"run",
	             "-p",
	             "18080:80",
	             "--publish",
	             "127.0.0.1:5353:53/udp",
	             "-p",
	             "0.0.0.0:8443:443/tcp",
	             "--rootfs",
	             "/r",
	             "true",
	             NULL};
	assert_int_equal(husk_run_parse(ARGC(a), a, &o, &e), 0);
	assert_false(o.network_none);
	assert_int_equal(o.nports, 3);
	assert_string_equal(o.ports[0].host_ip, "");
	assert_int_equal(o.ports[0].host_port, 18080);
	assert_int_equal(o.ports[0].container_port, 80);
	assert_false(o.ports[0].udp);
	assert_string_equal(o.ports[1].host_ip, "127.0.0.1");
	assert_int_equal(o.ports[1].host_port, 5353);
	assert_int_equal(o.ports[1].container_port, 53);
	assert_true(o.ports[1].udp);
	assert_string_equal(o.ports[2].host_ip, ""); /* 0.0.0.0 */
	assert_false(o.ports[2].udp);
	husk_run_options_free(&o);
	assert_null(o.ports);

	char *none[] = {"run", "--network", "none", "--rootfs",
	                "/r",  "true",      NULL};
	assert_int_equal(husk_run_parse(ARGC(none), none, &o, &e), 0);
	assert_true(o.network_none);
	husk_run_options_free(&o);
	char *bridge[] = {"run", "--network=bridge", "--rootfs", "/r", "true",
	                  NULL};
	assert_int_equal(husk_run_parse(ARGC(bridge), bridge, &o, &e), 0);
	assert_false(o.network_none);
	husk_run_options_free(&o);

	/* Each bad -p value, and the words its message must have. */
	static const char *const bad[][2] = {
	    {"8080", "host port"},
	    {"127.0.0.1::80", "host port"},
	    {"8080-8090:80-90", "ranges"},
	    {"1000-1001:80", "ranges"},
	    {"0:80", "1 to 65535"},
	    {"65536:80", "1 to 65535"},
	    {"80:70000", "1 to 65535"},
	    {"x:80", "1 to 65535"},
	    {"80:", "1 to 65535"},
	    {"1.2.3:80:80", "not an IPv4 address"},
	    {"256.1.1.1:80:80", "not an IPv4 address"},
	    {"localhost:80:80", "not an IPv4 address"},
	    {"::1:80:80", "IPv6"},
	    {"[::1]:80:80", "IPv6"},
	    {"80:80/sctp", "tcp or udp"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *b[] = {"run",  "-p", (char *)bad[i][0], "--rootfs", "/r",
		             "true", NULL};
		e.msg[0] = '\0';
		if (husk_run_parse(ARGC(b), b, &o, &e) != -EINVAL)
			fail_msg("-p %s was accepted", bad[i][0]);
		if (!strstr(e.msg, bad[i][1]) || !strstr(e.msg, bad[i][0]))
			fail_msg("-p %s: message '%s'", bad[i][0], e.msg);
		husk_run_options_free(&o);
	}
	char *twice[] = {"run",      "-p", "80:80", "-p", "80:81",
	                 "--rootfs", "/r", "true",  NULL};
	assert_int_equal(husk_run_parse(ARGC(twice), twice, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "twice"));
	husk_run_options_free(&o);
	char *conflict[] = {"run",      "--network", "none", "-p", "80:80",
	                    "--rootfs", "/r",        "true", NULL};
	assert_int_equal(husk_run_parse(ARGC(conflict), conflict, &o, &e),
	                 -EINVAL);
	assert_non_null(strstr(e.msg, "--network none"));
	husk_run_options_free(&o);
	char *host[] = {"run", "--network", "host", "--rootfs",
	                "/r",  "true",      NULL};
	assert_int_equal(husk_run_parse(ARGC(host), host, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "none"));
	husk_run_options_free(&o);
}

/* --network tap:BRIDGE with --ip (and --gateway, --dns): each refused
 * combination names what is wrong. */
static void tap_network(void **state)
{
	(void)state;
	struct husk_run_options o;
	struct husk_error e = {0};
	char *a1[] = {"run",  "--network",    "tap:br-husk",
	              "--ip", "10.88.0.2/24", "--rootfs",
	              "/r",   "true",         NULL};
	assert_int_equal(husk_run_parse(ARGC(a1), a1, &o, &e), 0);
	assert_true(o.network_tap);
	assert_false(o.network_none);
	assert_string_equal(o.tap_bridge, "br-husk");
	assert_string_equal(o.tap_ifname, "");
	assert_string_equal(o.ip, "10.88.0.2/24");
	assert_null(o.gateway);
	assert_null(o.dns);
	husk_run_options_free(&o);

	char *a2[] = {"run",       "--network=tap:br0,ifname=vm7",
	              "--ip",      "192.168.5.20/16",
	              "--gateway", "192.168.0.1",
	              "--dns",     "192.168.0.53",
	              "--rootfs",  "/r",
	              "true",      NULL};
	assert_int_equal(husk_run_parse(ARGC(a2), a2, &o, &e), 0);
	assert_string_equal(o.tap_bridge, "br0");
	assert_string_equal(o.tap_ifname, "vm7");
	assert_string_equal(o.gateway, "192.168.0.1");
	assert_string_equal(o.dns, "192.168.0.53");
	husk_run_options_free(&o);

	/* A later --network wins, as any repeated option. */
	char *a3[] = {"run",      "--network", "tap:br0", "--network", "none",
	              "--rootfs", "/r",        "true",    NULL};
	assert_int_equal(husk_run_parse(ARGC(a3), a3, &o, &e), 0);
	assert_false(o.network_tap);
	assert_true(o.network_none);
	husk_run_options_free(&o);

	static const struct {
		const char *net, *ip, *gw, *dns, *port, *msg;
	} bad[] = {
	    {"tap:br0", NULL, NULL, NULL, NULL, "needs --ip"},
	    {"tap:", "10.88.0.2/24", NULL, NULL, NULL, "tap:BRIDGE"},
	    {"tap:a-bridge-name-too-long", "10.88.0.2/24", NULL, NULL, NULL,
	     "1 to 15"},
	    {"tap:br/0", "10.88.0.2/24", NULL, NULL, NULL, "tap:BRIDGE"},
	    {"tap:br0,name=x", "10.88.0.2/24", NULL, NULL, NULL, "ifname="},
	    {"tap:br0,ifname=", "10.88.0.2/24", NULL, NULL, NULL, "ifname="},
	    {"tap:br0", "10.88.0.2", NULL, NULL, NULL, "--ip 10.88.0.2"},
	    {"tap:br0", "10.88.0.0/24", NULL, NULL, NULL, "network or broad"},
	    {"tap:br0", "10.88.0.2/24", "10.99.0.1", NULL, NULL, "subnet"},
	    {"tap:br0", "10.88.0.2/24", "gw", NULL, NULL, "--gateway gw"},
	    {"tap:br0", "10.88.0.2/24", NULL, "dns", NULL, "--dns dns"},
	    {"tap:br0", "10.88.0.2/24", NULL, NULL, "80:80", "-p publishes"},
	    {"user", "10.88.0.2/24", NULL, NULL, NULL, "--ip needs --network"},
	    {"user", NULL, "10.0.2.1", NULL, NULL, "--gateway needs"},
	    {"none", NULL, NULL, "1.1.1.1", NULL, "--dns needs"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[16];
		int n = 0;
		argv[n++] = "run";
		argv[n++] = "--network";
		argv[n++] = (char *)bad[i].net;
		if (bad[i].ip) {
			argv[n++] = "--ip";
			argv[n++] = (char *)bad[i].ip;
		}
		if (bad[i].gw) {
			argv[n++] = "--gateway";
			argv[n++] = (char *)bad[i].gw;
		}
		if (bad[i].dns) {
			argv[n++] = "--dns";
			argv[n++] = (char *)bad[i].dns;
		}
		if (bad[i].port) {
			argv[n++] = "-p";
			argv[n++] = (char *)bad[i].port;
		}
		argv[n++] = "--rootfs";
		argv[n++] = "/r";
		argv[n++] = "true";
		argv[n] = NULL;
		e.msg[0] = '\0';
		if (husk_run_parse(n, argv, &o, &e) != -EINVAL ||
		    !strstr(e.msg, bad[i].msg))
			fail_msg("case %zu (%s): '%s'", i, bad[i].net, e.msg);
		husk_run_options_free(&o);
	}
}

static void detach_and_volumes(void **state)
{
	(void)state;
	char *a1[] = {"run",        "-d",       "-v", "/h:/c", "--volume",
	              "/x/y:/z:ro", "--rootfs", "/r", "sh",    NULL};
	struct husk_run_options o;
	struct husk_error e = {0};
	assert_int_equal(husk_run_parse(ARGC(a1), a1, &o, &e), 0);
	assert_true(o.detach);
	assert_int_equal(o.nvolumes, 2);
	assert_string_equal(o.volumes[0].host, "/h");
	assert_string_equal(o.volumes[0].container, "/c");
	assert_false(o.volumes[0].readonly);
	assert_string_equal(o.volumes[1].host, "/x/y");
	assert_string_equal(o.volumes[1].container, "/z");
	assert_true(o.volumes[1].readonly);
	husk_run_options_free(&o);
	assert_int_equal(o.nvolumes, 0);
	static const struct {
		const char *v, *msg;
	} bad[] = {
	    {"data:/c", "named volumes are not supported"},
	    {"/h", "named volumes are not supported"},
	    {"/h:c", "must be absolute"},
	    {"/h:", "must be absolute"},
	    {"/h:/c:rx", "the mode is ro or rw, not 'rx'"},
	    {"/h:/c:", "the mode is ro or rw"},
	    {"/a,b:/c", "cannot be shared"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *a[] = {"run", "-v", (char *)bad[i].v, "--rootfs", "/r",
		             "sh",  NULL};
		assert_int_equal(husk_run_parse(ARGC(a), a, &o, &e), -EINVAL);
		if (!strstr(e.msg, bad[i].msg))
			fail_msg("-v %s: %s", bad[i].v, e.msg);
		husk_run_options_free(&o);
	}
	char *a2[] = {"run", "-dt", "--rootfs", "/r", "sh", NULL};
	assert_int_equal(husk_run_parse(ARGC(a2), a2, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "-t with -d"));
	husk_run_options_free(&o);
	char *a3[] = {"run", "-d", "--rm", "--rootfs", "/r", "sh", NULL};
	assert_int_equal(husk_run_parse(ARGC(a3), a3, &o, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "--rm with -d"));
	husk_run_options_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_docker_flags),
	    cmocka_unit_test(image_form_and_missing_command),
	    cmocka_unit_test(bad_values_are_refused),
	    cmocka_unit_test(sizes_and_cpus),
	    cmocka_unit_test(env_file_and_host_values),
	    cmocka_unit_test(publish_and_network),
	    cmocka_unit_test(tap_network),
	    cmocka_unit_test(detach_and_volumes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
