"""Facts read from the local kernel over AF_NETLINK.

`host_genl_families` dumps the generic netlink controller (CTRL_CMD_GETFAMILY
with NLM_F_DUMP; no privileges needed) and decodes the replies with our own
nlctrl spec, so a capture recorded on this machine since its last boot can
have its generic netlink family ids named (``nlshark --genl-from-host``).
"""

from __future__ import annotations

import os
import struct

from ..core.netlink import Session
from .nlsocket import NLM_F_DUMP, NetlinkSocketError, RawNetlinkSocket, error_of

NETLINK_GENERIC = 16
GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3


class HostQueryError(Exception):
    """The local kernel could not be asked; the message says why."""


def host_genl_families(session: Session | None = None, timeout: float = 2.0) -> dict[int, str]:
    """Generic netlink family id -> name on this machine's running kernel."""
    s = session or Session()
    learned = Session(s.registry)
    try:
        with RawNetlinkSocket(NETLINK_GENERIC, ext_ack=False) as sock:
            sock.settimeout(timeout)
            getfamily = struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0)
            for data in sock.transact(GENL_ID_CTRL, NLM_F_DUMP, getfamily):
                err = error_of(data)
                if err:
                    raise HostQueryError(f"the kernel refused the family dump: {os.strerror(err)}")
                learned.decode(sock.as_frame(data))
    except NetlinkSocketError as exc:
        raise HostQueryError(str(exc)) from None
    except OSError as exc:
        raise HostQueryError(f"generic netlink family dump failed: {exc}") from None
    fixed = s.registry.fixed_genl_ids()
    return {k: v for k, v in learned.genl_names.items() if k not in fixed}
