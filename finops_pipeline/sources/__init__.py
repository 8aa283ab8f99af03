"""Billing sources: each yields FOCUS line items for a window of charge days."""
