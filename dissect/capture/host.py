"""Facts read from the local kernel over AF_NETLINK.

`host_genl_families` dumps the generic netlink controller (CTRL_CMD_GETFAMILY
with NLM_F_DUMP; no privileges needed) and decodes the replies with our own
nlctrl spec, so a capture recorded on this machine since its last boot can
have its generic netlink family ids named (``nlshark --genl-from-host``).
"""

from __future__ import annotations

from ..core.netlink import Session
from .mcast import GroupError, genl_families


class HostQueryError(Exception):
    """The local kernel could not be asked; the message says why."""


def host_genl_families(session: Session | None = None, timeout: float = 2.0) -> dict[int, str]:
    """Generic netlink family id -> name on this machine's running kernel
    (the ids every kernel fixes, like nlctrl's, are left to the registry)."""
    s = session or Session()
    try:
        families = genl_families(timeout=timeout)
    except GroupError as exc:
        raise HostQueryError(str(exc)) from None
    fixed = s.registry.fixed_genl_ids()
    return {f.id: f.name for f in families.values() if f.id not in fixed}
