/* The 9P2000.L subset husk-vmm's file server speaks: message numbers,
 * limits and wire constants. Numbers and layouts follow the protocol as
 * Linux's v9fs client (net/9p) uses it; errno values in Rlerror are
 * Linux's, which is also the host's.
 *
 * Every message starts with size[4] type[1] tag[2], little-endian, size
 * counting the whole message.
 */
#ifndef HUSK_VMM_P9_PROTO_H
#define HUSK_VMM_P9_PROTO_H

#include <stdint.h>

#define P9_HDR_SIZE 7 /* size[4] type[1] tag[2] */
#define P9_NOTAG    0xffff
#define P9_NOFID    0xffffffffu

#define P9_VERSION_L "9P2000.L"

/* Limits. The guest is hostile: each bounds host memory or host work. */
#define P9_MAX_MSIZE    (512u * 1024) /* largest message either way */
#define P9_MIN_MSIZE    4096          /* Linux never asks for less */
#define P9_MAX_FIDS     4096          /* per device (each holds fds) */
#define P9_MAX_WALK     16            /* names per Twalk, as 9P says */
#define P9_MAX_NAME     255           /* one path component (NAME_MAX) */
#define P9_MAX_SYMLINK  4095          /* a symlink's target (PATH_MAX-1) */
#define P9_MAX_UNAME    255           /* Tattach uname and aname */
#define P9_IOHDR_SIZE   11            /* size type tag count: Rread/Rreaddir */
#define P9_WRITE_HDR_SZ 23            /* Twrite before its data */

enum p9_type {
	P9_TLERROR = 6,
	P9_RLERROR = 7,
	P9_TSTATFS = 8,
	P9_TLOPEN = 12,
	P9_TLCREATE = 14,
	P9_TSYMLINK = 16,
	P9_TMKNOD = 18,
	P9_TRENAME = 20,
	P9_TREADLINK = 22,
	P9_TGETATTR = 24,
	P9_TSETATTR = 26,
	P9_TXATTRWALK = 30,
	P9_TXATTRCREATE = 32,
	P9_TREADDIR = 40,
	P9_TFSYNC = 50,
	P9_TLOCK = 52,
	P9_TGETLOCK = 54,
	P9_TLINK = 70,
	P9_TMKDIR = 72,
	P9_TRENAMEAT = 74,
	P9_TUNLINKAT = 76,
	P9_TVERSION = 100,
	P9_TAUTH = 102,
	P9_TATTACH = 104,
	P9_TFLUSH = 108,
	P9_TWALK = 110,
	P9_TREAD = 116,
	P9_TWRITE = 118,
	P9_TCLUNK = 120,
	P9_TREMOVE = 122,
};
/* Each reply is its request's type plus one. */

/* qid.type */
#define P9_QTDIR     0x80
#define P9_QTSYMLINK 0x02
#define P9_QTFILE    0x00
#define P9_QID_SIZE  13 /* type[1] version[4] path[8] */

struct p9_qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

/* Tgetattr request_mask / Rgetattr valid. */
#define P9_GETATTR_BASIC 0x000007ffULL /* mode..blocks, the three times */

/* Tsetattr valid. */
#define P9_SETATTR_MODE      0x001
#define P9_SETATTR_UID       0x002
#define P9_SETATTR_GID       0x004
#define P9_SETATTR_SIZE      0x008
#define P9_SETATTR_ATIME     0x010
#define P9_SETATTR_MTIME     0x020
#define P9_SETATTR_CTIME     0x040
#define P9_SETATTR_ATIME_SET 0x080
#define P9_SETATTR_MTIME_SET 0x100

/* Tlock status and Tgetlock type. */
#define P9_LOCK_SUCCESS    0
#define P9_LOCK_TYPE_UNLCK 2

/* Tunlinkat flags: Linux's AT_REMOVEDIR. */
#define P9_AT_REMOVEDIR 0x200

#endif
