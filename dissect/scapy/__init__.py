"""Scapy layers for all of netlink, generated from nlshark's schemas.

    from dissect.scapy import Netlink, family

    rt = family("rt-link")
    msg = Netlink(nlmsg_flags="REQUEST|ACK|CREATE|EXCL", nlmsg_seq=1) / rt.newlink(
        ifname="vlan10", link=2, linkinfo={"kind": "vlan", "data": {"id": 10}}
    )
    bytes(msg)                      # lengths, padding and RTM_NEWLINK computed

Importing this package imports Scapy and registers LINKTYPE_NETLINK (253)
and Linux cooked captures with ARPHRD_NETLINK (113, 276) in
``conf.l2types``, so Scapy's own ``rdpcap`` gives these layers.
`rdpcap` here also learns generic netlink family ids from the whole file
first.  Layer classes are made on first use (see `dissect.scapy.layers`);
the dissector (`dissect`) never imports Scapy.  See docs/scapy.md.
"""

from __future__ import annotations

import os
from typing import Any

from .layers import _ACTIVE as _ACTIVE_CONTEXTS
from .layers import (
    HOST_BO,
    Family,
    GenlIdError,
    Netlink,
    NetlinkBatch,
    NetlinkContext,
    NetlinkCooked,
    NlAttr,
    NlAttrTail,
    NlBody,
    NlMsgDone,
    NlMsgErr,
    NlRecord,
    NlStruct,
    NlTrailer,
    attr_class,
    body_class,
    current_context,
    default_context,
    families,
    family,
    iter_layers,
    netlink_class,
    parse_attrs,
    split_messages,
    unknown_attr,
)
from .socket import NetlinkError, NetlinkSocket


def cooked(msg: Any, protocol: int | None = None, pkttype: int = 4) -> NetlinkCooked:
    """`msg` (a `Netlink` layer, or a list of them for one frame) behind a
    LINKTYPE_NETLINK header, ready for ``wrpcap``."""
    if isinstance(msg, list):
        msg = NetlinkBatch(msgs=msg)
    return NetlinkCooked(pkttype=pkttype, protocol=protocol) / msg


def rdpcap(
    path: str | os.PathLike[str],
    count: int = -1,
    *,
    genl: dict[Any, Any] | None = None,
    context: NetlinkContext | None = None,
) -> Any:
    """Scapy's ``rdpcap`` through a fresh `NetlinkContext` that first
    learns the capture's generic netlink ids (a first pass, like nlshark's),
    so messages before the family lookup are named too."""
    from scapy.utils import rdpcap as scapy_rdpcap

    from ..api import prescan_genl

    ctx = context or NetlinkContext(host=False)
    ctx.names.update(prescan_genl(path, ctx.registry))
    if genl:
        ctx.set_genl(genl)
    _ACTIVE_CONTEXTS.append(ctx)
    try:
        return scapy_rdpcap(str(path), count)
    finally:
        _ACTIVE_CONTEXTS.remove(ctx)


__all__ = [
    "HOST_BO",
    "Family",
    "GenlIdError",
    "Netlink",
    "NetlinkBatch",
    "NetlinkContext",
    "NetlinkCooked",
    "NetlinkError",
    "NetlinkSocket",
    "NlAttr",
    "NlAttrTail",
    "NlBody",
    "NlMsgDone",
    "NlMsgErr",
    "NlRecord",
    "NlStruct",
    "NlTrailer",
    "attr_class",
    "body_class",
    "cooked",
    "current_context",
    "default_context",
    "families",
    "family",
    "iter_layers",
    "netlink_class",
    "parse_attrs",
    "rdpcap",
    "split_messages",
    "unknown_attr",
]
