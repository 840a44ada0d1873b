"""Offers and the coupons issued from them: catalog, issue, redemption, reports and wallet hooks."""
