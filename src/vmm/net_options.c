#include "net_options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A port: decimal 1..65535, nothing else. */
static int parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned v = 0;
	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* An IPv4 address in dotted quad, or the default when empty. */
static int parse_addr(const char *s, size_t len, const char *dflt,
                      struct in_addr *out)
{
	char buf[INET_ADDRSTRLEN];
	if (len == 0)
		return inet_pton(AF_INET, dflt, out) == 1 ? 0 : -1;
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, out) == 1 ? 0 : -1;
}

/* [ADDR]:PORT ending at end; the address part may be empty. */
static int parse_endpoint(const char *s, const char *end, const char *dflt,
                          struct in_addr *addr, uint16_t *port)
{
	const char *colon = memrchr(s, ':', (size_t)(end - s));
	if (!colon)
		return -1;
	if (parse_addr(s, (size_t)(colon - s), dflt, addr) < 0)
		return -1;
	return parse_port(colon + 1, (size_t)(end - colon - 1), port);
}

static int parse_hostfwd(const char *spec, struct vmm_hostfwd *f,
                         struct husk_error *err)
{
	memset(f, 0, sizeof(*f));
	const char *p = spec;
	if (!strncmp(p, "tcp:", 4)) {
		p += 4;
	} else if (!strncmp(p, "udp:", 4)) {
		f->udp = true;
		p += 4;
	} else {
		goto bad;
	}
	const char *dash = strchr(p, '-');
	if (!dash ||
	    parse_endpoint(p, dash, "0.0.0.0", &f->host_addr, &f->host_port) <
	        0 ||
	    parse_endpoint(dash + 1, dash + 1 + strlen(dash + 1), VMM_NET_GUEST,
	                   &f->guest_addr, &f->guest_port) < 0)
		goto bad;
	return 0;
bad:
	return husk_err(err, EINVAL,
	                "--net: bad hostfwd '%s' (want tcp|udp:[HOSTIP]:"
	                "HOSTPORT-[GUESTIP]:GUESTPORT)",
	                spec);
}

/* "52:54:0a:58:00:02": six hex bytes, a unicast address. */
static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	int end = 0;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &b[0], &b[1], &b[2], &b[3],
	           &b[4], &b[5], &end) != 6 ||
	    s[end] || strlen(s) != 17 || (b[0] & 1))
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

/* An interface name for the kernel: 1..15 bytes, no '/', ':' or space. */
static int copy_ifname(const char *s, char out[IF_NAMESIZE])
{
	size_t len = strlen(s);
	if (len == 0 || len >= IF_NAMESIZE || strpbrk(s, "/: \t\n"))
		return -1;
	memcpy(out, s, len + 1);
	return 0;
}

static int parse_tap_option(const char *tok, struct vmm_net *n,
                            struct husk_error *err)
{
	if (!strncmp(tok, "ifname=", 7) && copy_ifname(tok + 7, n->ifname) == 0)
		return 0;
	if (!strncmp(tok, "bridge=", 7) && copy_ifname(tok + 7, n->bridge) == 0)
		return 0;
	if (!strncmp(tok, "mac=", 4) && parse_mac(tok + 4, n->mac) == 0) {
		n->has_mac = true;
		return 0;
	}
	if (!strncmp(tok, "fd=", 3)) {
		char *end;
		long v = strtol(tok + 3, &end, 10);
		if (tok[3] >= '0' && tok[3] <= '9' && !*end && v <= 65535) {
			n->tap_fd = (int)v;
			return 0;
		}
	}
	return husk_err(err, EINVAL,
	                "--net tap: bad option '%s' (want ifname=NAME, "
	                "bridge=BR, mac=52:54:..., fd=N)",
	                tok);
}

static int parse_tap(const char *opts, struct vmm_net *n,
                     struct husk_error *err)
{
	n->tap = true;
	n->tap_fd = -1;
	char *copy = strdup(opts);
	if (!copy)
		return husk_err(err, ENOMEM, "--net");
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save))
		rc = parse_tap_option(tok, n, err);
	free(copy);
	/* An inherited tap is already named and attached by its maker. */
	if (rc == 0 && n->tap_fd >= 0 && (n->ifname[0] || n->bridge[0]))
		rc = husk_err(err, EINVAL,
		              "--net tap: fd= excludes ifname= and bridge=");
	return rc;
}

int vmm_parse_net(const char *arg, struct vmm_net *n, struct husk_error *err)
{
	memset(n, 0, sizeof(*n));
	n->tap_fd = -1;
	if (!strcmp(arg, "none"))
		return 0;
	if (!strncmp(arg, "tap", 3) && (!arg[3] || arg[3] == ','))
		return parse_tap(arg + 3, n, err);
	if (strncmp(arg, "user", 4) || (arg[4] && arg[4] != ','))
		return husk_err(err, EINVAL,
		                "--net '%s': want none, user[,hostfwd=...] or "
		                "tap[,ifname=NAME][,bridge=BR]",
		                arg);
	n->user = true;
	char *copy = strdup(arg + 4);
	if (!copy)
		return husk_err(err, ENOMEM, "--net");
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "hostfwd=", 8)) {
			rc = husk_err(err, EINVAL, "--net: unknown option '%s'",
			              tok);
		} else if (n->nfwd == VMM_MAX_HOSTFWD) {
			rc = husk_err(err, E2BIG, "--net: at most %d hostfwd",
			              VMM_MAX_HOSTFWD);
		} else {
			rc = parse_hostfwd(tok + 8, &n->fwd[n->nfwd], err);
			if (rc == 0)
				n->nfwd++;
		}
	}
	/* The same host port twice could never both be bound. */
	for (unsigned i = 0; rc == 0 && i < n->nfwd; i++)
		for (unsigned j = 0; rc == 0 && j < i; j++)
			if (n->fwd[i].udp == n->fwd[j].udp &&
			    n->fwd[i].host_port == n->fwd[j].host_port &&
			    n->fwd[i].host_addr.s_addr ==
			        n->fwd[j].host_addr.s_addr)
				rc = husk_err(err, EINVAL,
				              "--net: host port %u forwarded "
				              "twice",
				              n->fwd[i].host_port);
	free(copy);
	return rc;
}
