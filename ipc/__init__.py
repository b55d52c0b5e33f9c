"""Inter-process communication: the wire contract, its codec, the ZeroMQ buses and shared-memory rings."""
