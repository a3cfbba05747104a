"""Facts read from the local kernel over AF_NETLINK.

`host_genl_families` dumps the generic netlink controller (CTRL_CMD_GETFAMILY
with NLM_F_DUMP; no privileges needed) and decodes the replies with our own
nlctrl spec, so a capture recorded on this machine since its last boot can
have its generic netlink family ids named (``nlshark --genl-from-host``).
"""

from __future__ import annotations

import os
import socket
import struct

from ..core.netlink import Session
from .linktypes import netlink_pseudo_header

NETLINK_GENERIC = 16
GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3


class HostQueryError(Exception):
    """The local kernel could not be asked; the message says why."""


def host_genl_families(session: Session | None = None, timeout: float = 2.0) -> dict[int, str]:
    """Generic netlink family id -> name on this machine's running kernel."""
    s = session or Session()
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    except (OSError, AttributeError) as exc:
        raise HostQueryError(f"cannot open a generic netlink socket: {exc}") from None
    with sock:
        sock.settimeout(timeout)
        seq = int.from_bytes(os.urandom(3), "little") or 1
        req = struct.pack("=IHHII", 20, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        req += struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0)
        learned = Session(s.registry)
        try:
            sock.send(req)
            while True:
                data = sock.recv(1 << 16)
                frame = learned.decode(netlink_pseudo_header(NETLINK_GENERIC) + data)
                done = False
                for m in frame.messages:
                    if m.type == NLMSG_ERROR and m.error:
                        raise HostQueryError(f"the kernel refused the family dump: {m.info}")
                    if m.type in (NLMSG_DONE, NLMSG_ERROR):
                        done = True
                if done or not frame.messages:
                    break
        except OSError as exc:
            raise HostQueryError(f"generic netlink family dump failed: {exc}") from None
    fixed = s.registry.fixed_genl_ids()
    return {k: v for k, v in learned.genl_names.items() if k not in fixed}
