/* Tap interfaces on a host bridge; see husk/tap.h. Plain ioctls
 * (TUNSETIFF, SIOCSIFFLAGS, SIOCBRADDIF), as `ip` and `brctl` use them:
 * four requests do not justify a netlink library. */
#include "husk/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* An interface name the kernel would take (a %d pattern included). */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

int husk_tap_error(enum husk_tap_step step, int e, const char *ifname,
                   const char *bridge, struct husk_error *err)
{
	const char *br = bridge ? bridge : "";
	const char *ifn = ifname && ifname[0] ? ifname : HUSK_TAP_DEFAULT_NAME;
	if (e == EPERM || e == EACCES) {
		if (step == HUSK_TAP_ADDIF)
			return husk_err(err, e,
			                "attaching tap %s to bridge %s needs "
			                "CAP_NET_ADMIN (run as root)",
			                ifn, br);
		return husk_err(err, e,
		                "creating a tap needs CAP_NET_ADMIN (run as "
		                "root, or create %s beforehand with `ip tuntap "
		                "add %s mode tap user $USER`)",
		                ifn, ifn);
	}
	switch (step) {
	case HUSK_TAP_OPEN_TUN:
		if (e == ENOENT || e == ENODEV || e == ENXIO)
			return husk_err(err, e,
			                "/dev/net/tun is missing: this kernel "
			                "has no tun driver (modprobe tun)");
		return husk_err_errno(err, e, "open /dev/net/tun");
	case HUSK_TAP_SETIFF:
		/* EBUSY: a tap of that name another process holds;
		 * EINVAL: a device of that name that is not a tap. */
		if (e == EBUSY || e == EINVAL || e == EEXIST)
			return husk_err(err, e,
			                "interface %s is in use (another VM's "
			                "tap, or a device that is not a tap)",
			                ifn);
		return husk_err_errno(err, e, "create tap %s", ifn);
	case HUSK_TAP_BRIDGE:
		if (e == ENODEV || e == ENOENT || e == ENXIO)
			return husk_err(err, e, "bridge %s does not exist", br);
		return husk_err_errno(err, e, "bridge %s", br);
	case HUSK_TAP_NOT_BRIDGE:
		return husk_err(err, e, "%s is not a bridge", br);
	case HUSK_TAP_UP: return husk_err_errno(err, e, "bring tap %s up", ifn);
	case HUSK_TAP_ADDIF:
		if (e == EBUSY)
			return husk_err(err, e,
			                "tap %s is already on another bridge "
			                "than %s",
			                ifn, br);
		if (e == EOPNOTSUPP || e == EINVAL)
			return husk_err(err, e, "%s is not a bridge", br);
		return husk_err_errno(err, e, "attach tap %s to bridge %s", ifn,
		                      br);
	}
	return husk_err_errno(err, e, "tap %s", ifn);
}

int husk_parse_cidr(const char *what, const char *s, struct in_addr *addr,
                    unsigned *prefix, struct husk_error *err)
{
	char buf[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	unsigned p = 0;
	int n = 0;
	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		goto bad;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	if (inet_pton(AF_INET, buf, addr) != 1 ||
	    sscanf(slash + 1, "%2u%n", &p, &n) != 1 || slash[1 + n] ||
	    slash[1] < '0' || slash[1] > '9' || p < 1 || p > 30)
		goto bad;
	uint32_t host = ntohl(addr->s_addr) & ~(~0u << (32 - p));
	if (host == 0 || host == ~(~0u << (32 - p)))
		return husk_err(err, EINVAL,
		                "%s %s: that is the subnet's network or "
		                "broadcast address",
		                what, s);
	*prefix = p;
	return 0;
bad:
	return husk_err(err, EINVAL,
	                "%s %s: want an IPv4 address with a prefix, like "
	                "10.88.0.2/24 (prefix 1 to 30)",
	                what, s);
}

int husk_tap_bridge_addr(const char *bridge, struct in_addr *out)
{
	struct ifreq ifr = {0};
	if (!name_ok(bridge))
		return -EINVAL;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bridge);
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	int rc = ioctl(sock, SIOCGIFADDR, &ifr) < 0 ? -errno : 0;
	close(sock);
	if (rc == 0)
		*out = ((struct sockaddr_in *)(void *)&ifr.ifr_addr)->sin_addr;
	return rc;
}

void husk_tap_mac_for(struct in_addr a, uint8_t mac[6])
{
	mac[0] = 0x52;
	mac[1] = 0x54;
	memcpy(mac + 2, &a.s_addr, 4); /* network order: 10.88.0.2 -> 0a:58.. */
}

/* The bridge exists and is one; 0 or a step's error. With no sysfs (a
 * bare test root) only the existence is checked and SIOCBRADDIF tells. */
static int check_bridge(const char *br, struct husk_error *err)
{
	if (!name_ok(br))
		return husk_err(err, EINVAL, "bad bridge name '%s'", br);
	if (if_nametoindex(br) == 0)
		return husk_tap_error(HUSK_TAP_BRIDGE, errno, NULL, br, err);
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/sys/class/net/%s", br);
	if (stat(path, &st) < 0)
		return 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", br);
	if (stat(path, &st) < 0)
		return husk_tap_error(HUSK_TAP_NOT_BRIDGE, EINVAL, NULL, br,
		                      err);
	return 0;
}

/* Whether the tap is already a port of br (a persistent tap made and
 * attached beforehand: no privilege needed to use it again). */
static bool on_bridge(const char *ifname, const char *br)
{
	char path[64], target[256];
	snprintf(path, sizeof(path), "/sys/class/net/%s/brport/bridge", ifname);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	const char *base = strrchr(target, '/');
	return !strcmp(base ? base + 1 : target, br);
}

static int bring_up_and_attach(int sock, const char *name, const char *br,
                               struct husk_error *err)
{
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return husk_tap_error(HUSK_TAP_UP, errno, name, br, err);
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
			return husk_tap_error(HUSK_TAP_UP, errno, name, br,
			                      err);
	}
	if (!br || !br[0] || on_bridge(name, br))
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", br);
	ifr.ifr_ifindex = (int)if_nametoindex(name);
	if (ifr.ifr_ifindex == 0 || ioctl(sock, SIOCBRADDIF, &ifr) < 0)
		return husk_tap_error(HUSK_TAP_ADDIF, errno, name, br, err);
	return 0;
}

int husk_tap_open(const struct husk_tap_request *r, char name[IF_NAMESIZE],
                  struct husk_error *err)
{
	const char *want =
	    r->ifname && r->ifname[0] ? r->ifname : HUSK_TAP_DEFAULT_NAME;
	const char *br = r->bridge && r->bridge[0] ? r->bridge : NULL;
	name[0] = '\0';
	if (!name_ok(want))
		return husk_err(err, EINVAL, "bad interface name '%s'", want);
	/* The bridge first: a typo should not leave a tap behind, even for
	 * the moment until its descriptor closes. */
	int rc = br ? check_bridge(br, err) : 0;
	if (rc < 0)
		return rc;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return husk_tap_error(HUSK_TAP_OPEN_TUN, errno, want, br, err);
	/* IFF_NO_PI: plain Ethernet frames, no 4-byte packet information
	 * in front. No TUNSETPERSIST: the tap goes with the descriptor. */
	struct ifreq ifr = {0};
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (r->vnet_hdr ? IFF_VNET_HDR : 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", want);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = husk_tap_error(HUSK_TAP_SETIFF, errno, want, br, err);
		close(fd);
		return rc;
	}
	snprintf(name, IF_NAMESIZE, "%s", ifr.ifr_name);
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		rc = husk_err_errno(err, errno, "socket");
	else
		rc = bring_up_and_attach(sock, name, br, err);
	if (sock >= 0)
		close(sock);
	if (rc < 0) {
		close(fd); /* a tap we created disappears with it */
		name[0] = '\0';
		return rc;
	}
	return fd;
}
