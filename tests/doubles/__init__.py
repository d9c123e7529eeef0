"""Test doubles for tpcloud, named by the layer they stand in for. None of them imports tpcloud.

- ``devices/``: device state seeded from recorded fixtures (tests/fixtures/): the IOT and SMART
  dialects as a device answers them, no transport
- ``wires/``: the device emulators, one per LAN wire (XOR, KLAP, AES, UDP discovery), in front
  of a device double over real loopback sockets, with their own independent crypto
- ``cloud/``: the fake V1 and V2 TP-Link clouds over real HTTP on loopback (holding the
  account and its device doubles), a hostile HTTP peer, and their pytest fixtures
- ``home.py``: the emulated home, every layer at once, as pytest fixtures (``home``, ``user``)
- ``termux_job_scheduler.py``: a host tool the README's Termux recipe calls
"""
