#include "share_options.h"

#include <errno.h>
#include <string.h>

#include "virtio/p9.h"

int vmm_parse_share(char *arg, struct vmm_share *s,
                    const struct vmm_share *given, unsigned n,
                    struct husk_error *err)
{
	memset(s, 0, sizeof(*s));
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1])
		return husk_err(err, EINVAL,
		                "--share wants TAG=DIR[,ro], not '%s'", arg);
	*eq = '\0';
	s->tag = arg;
	if (!virtio_p9_tag_ok(s->tag))
		return husk_err(err, EINVAL,
		                "--share tag '%s': 1..%d of letters, digits, "
		                "_ -",
		                s->tag, VIRTIO_9P_MAX_TAG);
	s->path = eq + 1;
	/* The only option is the last: a directory name may hold commas
	 * elsewhere, but not a trailing ",ro" or ",rw". */
	char *comma = strrchr(s->path, ',');
	if (comma) {
		if (!strcmp(comma + 1, "ro"))
			s->read_only = true;
		else if (strcmp(comma + 1, "rw"))
			return husk_err(err, EINVAL,
			                "--share %s: unknown option '%s'",
			                s->tag, comma + 1);
		*comma = '\0';
	}
	if (!s->path[0])
		return husk_err(err, EINVAL, "--share %s: no directory",
		                s->tag);
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(given[i].tag, s->tag))
			return husk_err(err, EINVAL, "--share %s given twice",
			                s->tag);
	return 0;
}
