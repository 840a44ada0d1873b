"""Earning rules, tiers, redemption, expiry and referrals."""
