/* The tap network's pure pieces: husk_tap_error's messages for each
 * failed step, --ip parsing, the MAC derived from the address, and the
 * agent's reading of husk.net= with an empty gateway and DNS. Creating a
 * real tap needs CAP_NET_ADMIN and a bridge: that is in
 * tests/tap/net_checks.bash, inside the test machine. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "husk/tap.h"
#include "../../src/agent/net.h"

static void error_messages(void **state)
{
	(void)state;
	static const struct {
		enum husk_tap_step step;
		int e;
		const char *ifname;
		const char *want;
	} cases[] = {
	    {HUSK_TAP_OPEN_TUN, EACCES, NULL,
	     "creating a tap needs CAP_NET_ADMIN"},
	    {HUSK_TAP_SETIFF, EPERM, "t0",
	     "creating a tap needs CAP_NET_ADMIN"},
	    {HUSK_TAP_UP, EPERM, "t0", "creating a tap needs CAP_NET_ADMIN"},
	    {HUSK_TAP_ADDIF, EPERM, "t0",
	     "attaching tap t0 to bridge br-x needs CAP_NET_ADMIN"},
	    {HUSK_TAP_OPEN_TUN, ENOENT, NULL, "/dev/net/tun is missing"},
	    {HUSK_TAP_BRIDGE, ENODEV, NULL, "bridge br-x does not exist"},
	    {HUSK_TAP_NOT_BRIDGE, EINVAL, NULL, "br-x is not a bridge"},
	    {HUSK_TAP_ADDIF, EOPNOTSUPP, "t0", "br-x is not a bridge"},
	    {HUSK_TAP_SETIFF, EBUSY, "t0", "interface t0 is in use"},
	    {HUSK_TAP_SETIFF, EINVAL, "eth0", "interface eth0 is in use"},
	    {HUSK_TAP_SETIFF, EBUSY, NULL, "interface husk%d is in use"},
	    {HUSK_TAP_ADDIF, EBUSY, "t0", "already on another bridge"},
	    {HUSK_TAP_SETIFF, ENOMEM, "t0", "create tap t0: "},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct husk_error err = {0};
		int rc = husk_tap_error(cases[i].step, cases[i].e,
		                        cases[i].ifname, "br-x", &err);
		assert_int_equal(rc, -cases[i].e);
		assert_int_equal(err.code, cases[i].e);
		if (!strstr(err.msg, cases[i].want))
			fail_msg("case %zu: '%s' lacks '%s'", i, err.msg,
			         cases[i].want);
	}
	/* The exact text the CLI and the tests look for. */
	struct husk_error err = {0};
	husk_tap_error(HUSK_TAP_BRIDGE, ENODEV, NULL, "br-x", &err);
	assert_string_equal(err.msg, "bridge br-x does not exist");
}

static void open_refuses_a_missing_bridge_first(void **state)
{
	(void)state;
	char name[IF_NAMESIZE] = "x";
	struct husk_error err = {0};
	struct husk_tap_request r = {"husk-t9", "br-husk-nx", false};
	assert_int_equal(husk_tap_open(&r, name, &err), -ENODEV);
	assert_string_equal(err.msg, "bridge br-husk-nx does not exist");
	assert_string_equal(name, "");
	r.ifname = "a/b";
	assert_int_equal(husk_tap_open(&r, name, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "bad interface name"));
	r.ifname = "husk-t9";
	r.bridge = "br:0";
	assert_int_equal(husk_tap_open(&r, name, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "bad bridge name"));
}

static void cidr(void **state)
{
	(void)state;
	struct in_addr a;
	unsigned p = 0;
	struct husk_error err = {0};
	assert_int_equal(husk_parse_cidr("--ip", "10.88.0.2/24", &a, &p, &err),
	                 0);
	assert_int_equal(p, 24);
	assert_int_equal(ntohl(a.s_addr), 0x0a580002);
	assert_int_equal(
	    husk_parse_cidr("--ip", "192.168.7.11/30", &a, &p, &err),
	    -EINVAL); /* .11 is .8/30's broadcast */
	static const char *const bad[] = {
	    "10.88.0.2",     "10.88.0.2/",     "10.88.0.2/0", "10.88.0.2/31",
	    "10.88.0.2/24x", "10.88.0.2/+24",  "10.88.0/24",  "/24",
	    "10.88.0.0/24",  "10.88.0.255/24", "::1/64",      "10.88.0.2/024",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (husk_parse_cidr("--ip", bad[i], &a, &p, &err) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_non_null(strstr(err.msg, "--ip"));
	}
}

static void mac_from_address(void **state)
{
	(void)state;
	struct in_addr a;
	uint8_t m[6];
	inet_pton(AF_INET, "10.88.0.3", &a);
	husk_tap_mac_for(a, m);
	static const uint8_t want[6] = {0x52, 0x54, 0x0a, 0x58, 0x00, 0x03};
	assert_memory_equal(m, want, 6);
	assert_int_equal(m[0] & 1, 0); /* unicast */
	assert_int_equal(m[0] & 2, 2); /* locally administered */
}

static void agent_reads_tap_cmdline(void **state)
{
	(void)state;
	struct agent_net_cfg c;
	struct husk_error err = {0};
	assert_int_equal(agent_net_parse_cmdline(
	                     "quiet husk.net=10.88.0.2/24,, x=1", &c, &err),
	                 0);
	assert_true(c.present);
	assert_int_equal(ntohl(c.addr.s_addr), 0x0a580002);
	assert_int_equal(ntohl(c.netmask.s_addr), 0xffffff00);
	assert_int_equal(c.gateway.s_addr, 0);
	assert_int_equal(c.dns.s_addr, 0);
	assert_int_equal(agent_net_parse_cmdline(
	                     "husk.net=10.88.0.2/24,10.88.0.1,", &c, &err),
	                 0);
	assert_int_equal(ntohl(c.gateway.s_addr), 0x0a580001);
	assert_int_equal(c.dns.s_addr, 0);
	assert_int_equal(
	    agent_net_parse_cmdline("husk.net=10.0.2.15/24,10.0.2.2,10.0.2.3",
	                            &c, &err),
	    0);
	assert_int_equal(ntohl(c.dns.s_addr), 0x0a000203);
	assert_int_equal(
	    agent_net_parse_cmdline("husk.net=10.88.0.2/24,", &c, &err),
	    -EINVAL);
	assert_int_equal(
	    agent_net_parse_cmdline("husk.net=10.88.0.2/24,x,", &c, &err),
	    -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(error_messages),
	    cmocka_unit_test(open_refuses_a_missing_bridge_first),
	    cmocka_unit_test(cidr),
	    cmocka_unit_test(mac_from_address),
	    cmocka_unit_test(agent_reads_tap_cmdline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
