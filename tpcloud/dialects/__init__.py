"""The JSON dialects devices speak: IOT (legacy Kasa) and, later, SMART (Tapo and newer Kasa)."""
