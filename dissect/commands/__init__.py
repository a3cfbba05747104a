"""``nlshark COMMAND``: commands beyond reading a capture file.

Each module here has ``main(argv: list[str]) -> int`` and owns its argument
parser; `dissect.cli` dispatches on the first word.  Commands produce raw
frames from their source (a traced program, a multicast socket, the kernel's
socket table) and hand them to the same decoder and `FrameOutput` as
``nlshark -r``.
"""
