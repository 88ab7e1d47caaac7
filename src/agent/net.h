/* The guest's network, as the host asked for it on the kernel command
 * line: husk.net=ADDR/PREFIX,GATEWAY,DNS (e.g.
 * husk.net=10.0.2.15/24,10.0.2.2,10.0.2.3). Containers share the VM's
 * network namespace (a pod is one VM), so this is their network too. */
#ifndef HUSK_AGENT_NET_H
#define HUSK_AGENT_NET_H

#include <netinet/in.h>
#include <stdbool.h>

#include "husk/error.h"

struct agent_net_cfg {
	bool present; /* husk.net= was given */
	/* gateway, dns: 0.0.0.0 when their field is empty (a tap network:
	 * then no default route, no nameserver). */
	struct in_addr addr, netmask, gateway, dns;
};

/* Finds husk.net= in a kernel command line. 0 (cfg->present false when
 * absent), or -EINVAL with a message when it is there but malformed. */
int agent_net_parse_cmdline(const char *cmdline, struct agent_net_cfg *cfg,
                            struct husk_error *err);

/* Guest mode, once: brings lo up and, when /proc/cmdline has husk.net=,
 * configures the first Ethernet interface (address, netmask, up, default
 * route) and remembers the DNS server for agent_net_resolv_conf(). A
 * failure is reported and leaves the VM without a network, not without
 * containers. */
void agent_net_setup(void);

/* What a container's /etc/resolv.conf says: "nameserver X\n" after a
 * configured network, else "" (no network, or host mode). */
const char *agent_net_resolv_conf(void);

#endif
