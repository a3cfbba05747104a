"""nlshark: a dissector and capture analyzer for Linux netlink."""

__version__ = "0.1.0"
