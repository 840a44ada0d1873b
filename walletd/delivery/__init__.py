"""Delivery health: which version of each card every device and Google object has."""
