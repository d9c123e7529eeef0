"""TP-Link's private CA certificates (PEM), package data the V2 client trusts (tpcloud.cloud.v2)."""
