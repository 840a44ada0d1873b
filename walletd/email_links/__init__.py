"""E-mailed one-time links: lost-card recovery for members, invitations and resets for staff.

The e-mails are written here (both languages) and queued with walletd.email's outbox; the
worker sends them. Tokens are 256-bit random, kept only as SHA-256 hashes, used once.
"""
