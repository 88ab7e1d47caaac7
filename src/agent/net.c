/* The guest's network; see net.h. Plain ioctls on an AF_INET socket, not
 * rtnetlink: four requests are all one address and a default route need,
 * and the static agent carries no netlink library. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static char resolv_conf[64];

const char *agent_net_resolv_conf(void)
{
	return resolv_conf;
}

static int parse_ip(const char *s, size_t len, struct in_addr *out)
{
	char buf[INET_ADDRSTRLEN];
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, out) == 1 ? 0 : -1;
}

/* An empty field: none (0.0.0.0); a tap network may have no gateway and
 * no DNS server. */
static int parse_opt_ip(const char *s, size_t len, struct in_addr *out)
{
	if (len == 0) {
		out->s_addr = 0;
		return 0;
	}
	return parse_ip(s, len, out);
}

int agent_net_parse_cmdline(const char *cmdline, struct agent_net_cfg *cfg,
                            struct husk_error *err)
{
	memset(cfg, 0, sizeof(*cfg));
	const char *p = cmdline;
	/* A whole word: "xhusk.net=" is someone else's parameter. */
	while ((p = strstr(p, "husk.net=")) && !(p == cmdline || p[-1] == ' '))
		p++;
	if (!p)
		return 0;
	p += strlen("husk.net=");
	size_t len = strcspn(p, " \n");
	const char *end = p + len;
	const char *slash = memchr(p, '/', len);
	const char *c1 =
	    slash ? memchr(slash, ',', (size_t)(end - slash)) : NULL;
	const char *c2 =
	    c1 ? memchr(c1 + 1, ',', (size_t)(end - c1 - 1)) : NULL;
	unsigned prefix = 0;
	int n = 0;
	if (!c2 || parse_ip(p, (size_t)(slash - p), &cfg->addr) < 0 ||
	    sscanf(slash + 1, "%2u%n", &prefix, &n) != 1 ||
	    slash + 1 + n != c1 || prefix < 1 || prefix > 30 ||
	    parse_opt_ip(c1 + 1, (size_t)(c2 - c1 - 1), &cfg->gateway) < 0 ||
	    parse_opt_ip(c2 + 1, (size_t)(end - c2 - 1), &cfg->dns) < 0)
		return husk_err(
		    err, EINVAL,
		    "bad husk.net=%.*s (want ADDR/PREFIX,GATEWAY,DNS)",
		    (int)len, p);
	cfg->netmask.s_addr = htonl(~0u << (32 - prefix));
	cfg->present = true;
	return 0;
}

static int set_addr(int fd, const char *ifname, unsigned long req,
                    struct in_addr a)
{
	struct ifreq ifr = {0};
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr = a};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	memcpy(&ifr.ifr_addr, &sin, sizeof(sin));
	return ioctl(fd, req, &ifr);
}

static int set_up(int fd, const char *ifname)
{
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	return ioctl(fd, SIOCSIFFLAGS, &ifr);
}

static int default_route(int fd, const char *ifname, struct in_addr gw)
{
	struct rtentry rt = {0};
	struct sockaddr_in any = {.sin_family = AF_INET};
	struct sockaddr_in via = {.sin_family = AF_INET, .sin_addr = gw};
	memcpy(&rt.rt_dst, &any, sizeof(any));
	memcpy(&rt.rt_genmask, &any, sizeof(any));
	memcpy(&rt.rt_gateway, &via, sizeof(via));
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = (char *)ifname;
	return ioctl(fd, SIOCADDRT, &rt);
}

/* The first interface that is not loopback: virtio-net's, named eth0 by
 * the kernel unless something renamed it. */
static int find_ethernet(char *name, size_t cap)
{
	struct if_nameindex *ifs = if_nameindex();
	int rc = -1;
	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		if (strcmp(i->if_name, "lo")) {
			snprintf(name, cap, "%s", i->if_name);
			rc = 0;
			break;
		}
	}
	if (ifs)
		if_freenameindex(ifs);
	return rc;
}

static void say(const char *what, const char *ifname)
{
	fprintf(stderr, "husk-agent: network: %s %s: %s\n", what, ifname,
	        strerror(errno));
}

void agent_net_setup(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		say("socket for", "lo");
		return;
	}
	/* Loopback always, as Docker's --network none still has it. */
	if (set_up(fd, "lo") < 0)
		say("bring up", "lo");
	char cmdline[4096] = "";
	int cfd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (cfd >= 0) {
		ssize_t n = read(cfd, cmdline, sizeof(cmdline) - 1);
		cmdline[n > 0 ? n : 0] = '\0';
		close(cfd);
	}
	struct agent_net_cfg cfg;
	struct husk_error e = {0};
	char ifname[IF_NAMESIZE] = "";
	if (agent_net_parse_cmdline(cmdline, &cfg, &e) < 0) {
		fprintf(stderr, "husk-agent: %s\n", e.msg);
	} else if (cfg.present && find_ethernet(ifname, sizeof(ifname)) < 0) {
		fprintf(stderr, "husk-agent: network: no network interface\n");
	} else if (cfg.present) {
		if (set_addr(fd, ifname, SIOCSIFADDR, cfg.addr) < 0)
			say("address for", ifname);
		else if (set_addr(fd, ifname, SIOCSIFNETMASK, cfg.netmask) < 0)
			say("netmask for", ifname);
		else if (set_up(fd, ifname) < 0)
			say("bring up", ifname);
		else if (cfg.gateway.s_addr &&
		         default_route(fd, ifname, cfg.gateway) < 0)
			say("default route via", ifname);
		else if (cfg.dns.s_addr)
			snprintf(resolv_conf, sizeof(resolv_conf),
			         "nameserver %s\n", inet_ntoa(cfg.dns));
	}
	close(fd);
}
