"""Local-network wires to Kasa and Tapo devices: legacy XOR, KLAP and AES securePassthrough.

Each wire module pairs a sans-io codec (bytes in, bytes out, checked against recorded vectors)
with a :class:`~tpcloud.lan.transport.Transport`; ``links.py`` picks the wire for a device from
a table, ``sessions.py`` keeps their sessions between commands, ``discovery.py`` finds devices.
"""
