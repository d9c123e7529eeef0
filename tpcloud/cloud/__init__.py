"""The TP-Link cloud: the V1 wire API (client.py) and the account session on top of it (session.py)."""
