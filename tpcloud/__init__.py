"""tpcloud: control TP-Link Kasa and Tapo devices through the TP-Link cloud or on the LAN."""

__version__ = "0.1.0"
