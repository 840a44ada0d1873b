"""Apple rewards enrollment: personalizable passes, the personalize exchange and NFC settings."""
