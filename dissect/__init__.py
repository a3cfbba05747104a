"""nlshark: a dissector and capture analyzer for Linux netlink.

import dissect
for frame in dissect.read_capture("captures/quickstart.pcap"):
    for msg in frame.messages:
        print(frame.number, msg.direction, msg.type_name, msg.info)
"""

__version__ = "0.1.0"

from .api import decode_frame, read_capture  # noqa: E402

__all__ = ["__version__", "decode_frame", "read_capture"]
