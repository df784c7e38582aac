"""Talking to Binance: signing, the special-key endpoints, and typed errors."""
