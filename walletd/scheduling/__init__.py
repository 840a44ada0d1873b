"""Coordination between several `walletd worker` processes: job claims and heartbeats."""
