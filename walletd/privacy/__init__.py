"""Members' data rights: export everything walletd holds, erase the person, record consent."""
