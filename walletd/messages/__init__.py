"""Messages on members' cards: several at once, with expiry, withdrawal and clearing."""
