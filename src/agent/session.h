/* One host session of husk-agent: reads requests from the channel
 * (virtio-console port or unix socket), runs containers and their
 * processes, relays their stdio with flow control, and reports exits.
 * The host is not trusted: the first malformed frame ends the session
 * with an ERROR, and no frame can make the agent crash or grow without
 * bound. */
#ifndef HUSK_AGENT_SESSION_H
#define HUSK_AGENT_SESSION_H

#include "agent.h"

/* Serves the host on chan (a connected stream). Returns 0 after a
 * SHUTDOWN was answered, or a negative errno when the channel ended or
 * broke the protocol; either way every container is gone on return. */
int agent_serve(const struct agent_env *env, int chan, struct husk_error *err);

#endif
