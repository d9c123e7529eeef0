"""Local-network wires to Kasa and Tapo devices: legacy XOR, KLAP and AES securePassthrough.

Each module pairs a sans-io codec (bytes in, bytes out, checked against recorded vectors) with a
transport that carries one request of the device's own JSON dialect and returns its raw reply.
"""
